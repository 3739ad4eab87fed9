#!/usr/bin/env python
"""P-tuning v2's table, one row per command: ``run_glue.py`` / ``run_ner.py`` / ``examples/run_qa.py`` with the
reference's per-task hyper-parameters, our best-epoch dev score printed beside the reference's.

    python benchmarks/paper.py --list                                    # rows, settings, reference scores
    python benchmarks/paper.py --models_dir M --data_dir D               # the whole table (a GPU: many hours)
    python benchmarks/paper.py --rows roberta-large/rte roberta-large/wsc --models_dir M --data_dir D
    python benchmarks/paper.py --epochs_scale 0.25 ...                   # a quarter of each row's epochs
    python benchmarks/paper.py --dry_run ...                             # print the commands only

Settings and reference scores are the P-tuning v2 repository's (THUDM/P-tuning-v2 at 2873f47:
``run_script/run_<task>_<model>.sh`` for batch size, learning rate, prefix length, dropout, epochs,
sequence length and seed; its README's "released results" for the scores). The reference reports
the dev score of the best epoch; so does this (``best_eval_accuracy`` / ``best_eval_f1`` from
``BestMetricCallback``). NER is scored as conlleval counts (``run_ner.py``'s ``f1``); SQuAD by F1 (the
official scripts' ``f1``), with exact match at the same epoch beside it (the reference reports EM / F1).
The SQuAD rows' reference settings (``run_script/run_squad_roberta.sh``, ``run_squad_v2_roberta.sh``,
``tasks/qa/dataset.py``): batch 8, learning rate 5e-3, dropout 0.2, P=16 for 1.1 and 8 for 2.0, 30 and 10
epochs, seed 11, 384-token windows with a 128-token stride, 20-best, answers of at most 30 tokens, null
threshold 0.

Everything is read offline. ``--models_dir`` holds the checkpoints as folders named like the rows'
models (``roberta-large/``, ``bert-large-cased/``, ``bert-large-uncased/``); ``--data_dir`` holds the
SuperGLUE official downloads (``BoolQ/``, ``COPA/``, ``RTE/``, ``WiC/``, ``WSC/``: train/val jsonl),
CoNLL column files in ``conll2003/``, ``conll2004/``, ``ontonotes/`` (train, dev, test) and the official
SQuAD files in ``squad/`` (``train-v1.1.json``, ``dev-v1.1.json``) and ``squad_v2/`` (``train-v2.0.json``,
``dev-v2.0.json``). A row whose
model or data is missing is reported as skipped. Each run's output stays in ``--output_dir/<row>``;
a finished row (``result.json``) is not run again. The table goes to ``--output`` (JSON) and is printed.

At the reference's epochs the whole table is far more than two hours on one GPU (OntoNotes alone
trains 60 epochs over 60k sentences); ``benchmarks/gpu.sh`` runs the rows that fit, and
``--epochs_scale`` trades epochs for time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _common import write_json

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Row:
    model: str
    task: str  # run_glue's --task_name, or the NER data folder
    reference: float  # the reference's best-epoch dev score, in percent
    batch_size: int
    learning_rate: float
    pre_seq_len: int
    epochs: int
    seed: int
    dropout: float = 0.1
    max_seq_length: int = 128
    projection: bool = False
    reference_exact: float | None = None  # SQuAD: the reference's exact match beside its F1 (``reference``)

    @property
    def name(self) -> str:
        return f"{self.model}/{self.task}"

    @property
    def ner(self) -> bool:
        return self.task in NER_TASKS

    @property
    def qa(self) -> bool:
        return self.task in QA_TASKS


NER_TASKS = ("conll2003", "conll2004", "ontonotes")
QA_TASKS = ("squad", "squad_v2")  # the --data_dir folders: the official SQuAD 1.1 and 2.0 files
ROWS = [
    Row("roberta-large", "boolq", 84.0, 32, 7e-3, 8, 100, 11),
    Row("roberta-large", "copa", 92.0, 16, 9e-3, 8, 120, 11),
    Row("roberta-large", "rte", 86.6, 32, 5e-3, 128, 100, 11),
    Row("roberta-large", "wic", 73.7, 32, 1e-2, 8, 50, 11),
    Row("roberta-large", "wsc", 64.4, 16, 1e-2, 8, 10, 44),
    Row("roberta-large", "conll2003", 91.8, 16, 3e-2, 11, 30, 11, max_seq_length=152),
    Row("roberta-large", "conll2004", 88.4, 32, 6e-2, 144, 80, 11),
    Row("roberta-large", "ontonotes", 90.1, 16, 7e-3, 48, 60, 14),
    Row("roberta-large", "squad", 94.2, 8, 5e-3, 16, 30, 11, 0.2, 384, reference_exact=88.1),
    Row("roberta-large", "squad_v2", 84.7, 8, 5e-3, 8, 10, 11, 0.2, 384, reference_exact=81.3),
    Row("bert-large-cased", "boolq", 74.3, 32, 5e-3, 40, 100, 11),
    Row("bert-large-cased", "copa", 77.0, 16, 1e-2, 16, 80, 44),
    Row("bert-large-cased", "rte", 80.1, 32, 1e-2, 20, 60, 11),
    Row("bert-large-cased", "wic", 75.1, 16, 1e-4, 20, 80, 44, projection=True),
    Row("bert-large-cased", "wsc", 68.3, 16, 5e-3, 20, 80, 44),
    Row("bert-large-uncased", "conll2004", 84.5, 32, 2e-2, 128, 40, 11, dropout=0.2),
    Row("bert-large-uncased", "ontonotes", 86.4, 16, 1e-2, 16, 30, 11),
]
ROWS_BY_NAME = {row.name: row for row in ROWS}


def command(
    row: Row, model: Path, data_dir: Path, output_dir: Path, epochs_scale: float, extra: list[str]
) -> list[str]:
    """The script and flags that run ``row``."""
    epochs = max(1, round(row.epochs * epochs_scale))
    script = "run_ner.py" if row.ner else "examples/run_qa.py" if row.qa else "run_glue.py"
    if row.ner or row.qa:
        data = ["--data_dir", str(data_dir / row.task)]
        if row.task == "squad_v2":
            data.append("--version_2_with_negative")
    else:
        data = ["--task_name", row.task, "--data_dir", str(data_dir)]
    return [
        sys.executable,
        str(ROOT / script),
        "--model_name_or_path",
        str(model),
        *data,
        "--prefix",
        "--pre_seq_len",
        str(row.pre_seq_len),
        # the reference starts every prefix (table or MLP) at random: so do these rows, whatever our defaults pick
        *(["--prefix_projection"] if row.projection else ["--prefix_init", "random"]),
        "--hidden_dropout_prob",
        str(row.dropout),
        "--learning_rate",
        str(row.learning_rate),
        "--per_device_train_batch_size",
        str(row.batch_size),
        "--per_device_eval_batch_size",
        "64",
        "--num_train_epochs",
        str(epochs),
        "--max_seq_length",
        str(row.max_seq_length),
        "--seed",
        str(row.seed),
        "--do_train",
        "--do_eval",
        "--eval_strategy",
        "epoch",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--output_dir",
        str(output_dir),
        "--overwrite_output_dir",
        *extra,
    ]


def missing_inputs(row: Row, model: Path, data_dir: Path) -> str | None:
    if not model.is_dir():
        return f"no model folder {model}"
    data = data_dir / row.task if row.ner or row.qa else data_dir
    if not data.is_dir():
        return f"no data folder {data}"
    return None


def best_score(output_dir: Path, ner: bool, qa: bool = False) -> tuple[float | None, float | None]:
    """(best dev score in percent, its epoch) from the run's results (run_qa.py's are in percent already)."""
    results_file = output_dir / "all_results.json"
    if not results_file.is_file():
        return None, None
    results = json.loads(results_file.read_text())
    key = "best_eval_f1" if ner or qa else "best_eval_accuracy"
    value = results.get(key, results.get(key.removeprefix("best_")))
    scale = 1 if qa else 100
    return (None if value is None else scale * value), results.get("best_epoch")


def exact_at_best(output_dir: Path) -> float | None:
    """A SQuAD row's exact match at its best-F1 evaluation, from the run's ``trainer_state.json``."""
    try:
        state = json.loads((output_dir / "trainer_state.json").read_text())
        best = json.loads((output_dir / "all_results.json").read_text())
    except (OSError, ValueError):
        return None
    for entry in state.get("log_history", []):
        if entry.get("step") == best.get("best_step") and "eval_f1" in entry:
            return entry.get("eval_exact_match", entry.get("eval_exact"))
    return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=list(ROWS_BY_NAME),
        default=list(ROWS_BY_NAME),
        metavar="MODEL/TASK",
        help=f"rows (default: all): {', '.join(ROWS_BY_NAME)}",
    )
    parser.add_argument("--models_dir", type=Path, help="folder holding roberta-large/, bert-large-cased/, ...")
    parser.add_argument("--data_dir", type=Path, help="folder holding BoolQ/ ... WSC/ and conll2003/ ... ontonotes/")
    parser.add_argument("--output_dir", type=Path, default=ROOT / "benchmarks" / "results" / "paper")
    parser.add_argument(
        "--output", type=Path, default=None, help="the table as JSON (default: <output_dir>/table.json)"
    )
    parser.add_argument("--epochs_scale", type=float, default=1.0, help="train round(epochs x this) epochs per row")
    parser.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="further flags for every run (e.g. --bf16), placed last"
    )
    parser.add_argument("--list", action="store_true", help="print the rows and their settings, run nothing")
    parser.add_argument("--dry_run", action="store_true", help="print each row's command, run nothing")
    parser.add_argument("--rerun", action="store_true", help="run rows again even if they finished")
    args = parser.parse_args(argv)
    if args.list:
        print(f"{'row':32s} {'ref':>5s} {'bs':>3s} {'lr':>7s} {'P':>4s} {'epochs':>6s} {'seed':>4s}  other")
        for row in ROWS:
            other = ", ".join(
                x
                for x in (
                    f"dropout {row.dropout}" if row.dropout != 0.1 else "",
                    f"max_seq_length {row.max_seq_length}" if row.max_seq_length != 128 else "",
                    "prefix MLP" if row.projection else "",
                    f"reference EM {row.reference_exact} / F1 {row.reference}" if row.qa else "",
                )
                if x
            )
            print(
                f"{row.name:32s} {row.reference:5.1f} {row.batch_size:3d} {row.learning_rate:7.0e} "
                f"{row.pre_seq_len:4d} {row.epochs:6d} {row.seed:4d}  {other}"
            )
        return {}
    if args.models_dir is None or args.data_dir is None:
        parser.error("--models_dir and --data_dir are needed (or --list)")
    if args.epochs_scale <= 0:
        parser.error(f"--epochs_scale must be positive, got {args.epochs_scale}")

    table = {"epochs_scale": args.epochs_scale, "rows": {}}
    for name in args.rows:
        row = ROWS_BY_NAME[name]
        model = args.models_dir / row.model
        output_dir = args.output_dir / row.model / row.task
        cmd = command(row, model, args.data_dir, output_dir, args.epochs_scale, args.extra)
        entry = {"reference": row.reference, "command": cmd[1:]}
        if row.reference_exact is not None:
            entry["reference_exact"] = row.reference_exact
        problem = missing_inputs(row, model, args.data_dir)
        if args.dry_run:
            print(" ".join(cmd) + (f"    # would skip: {problem}" if problem else ""))
            continue
        result_file = output_dir / "result.json"
        if problem:
            entry["skipped"] = problem
        elif result_file.is_file() and not args.rerun:
            entry = json.loads(result_file.read_text())
        else:
            start = time.time()
            completed = subprocess.run(cmd, cwd=ROOT)
            score, epoch = best_score(output_dir, row.ner, row.qa)
            entry.update(
                ours=score, best_epoch=epoch, minutes=(time.time() - start) / 60, returncode=completed.returncode
            )
            if row.qa:
                entry["ours_exact"] = exact_at_best(output_dir)
            if completed.returncode == 0 and score is not None:
                result_file.write_text(json.dumps(entry, indent=2))
        table["rows"][name] = entry
    if args.dry_run:
        return table

    print(f"\n{'row':32s} {'ours':>6s} {'ref':>6s} {'diff':>6s} {'best ep':>7s} {'min':>6s}")
    for name, entry in table["rows"].items():
        if "skipped" in entry or entry.get("ours") is None:
            print(f"{name:32s} {'—':>6s} {entry['reference']:6.1f}    not run: {entry.get('skipped', 'failed')}")
            continue
        print(
            f"{name:32s} {entry['ours']:6.1f} {entry['reference']:6.1f} {entry['ours'] - entry['reference']:+6.1f} "
            f"{entry['best_epoch'] or 0:7.0f} {entry['minutes']:6.1f}"
            + (  # SQuAD: the score above is F1; exact match beside it, as the reference reports EM / F1
                f"   EM {entry['ours_exact']:.1f} (ref {entry['reference_exact']:.1f})"
                if entry.get("ours_exact") is not None
                else ""
            )
        )
    output = args.output or args.output_dir / "table.json"
    write_json(output, table)
    print(f"wrote {output}")
    return table


if __name__ == "__main__":
    main()
