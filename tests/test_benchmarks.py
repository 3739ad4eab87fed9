"""The benchmarks' --quick smoke runs (the full runs are not part of the tests)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
from script_runs import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


def test_clm_vs_peft_quick(tmp_path):
    output = tmp_path / "result.json"
    report = load_benchmark("clm_vs_peft").main(["--quick", "--work_dir", str(tmp_path), "--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    ours = report["arms"]["prefix-models"]
    assert ours["step_s_median"] > 0 and ours["trainable_parameters"] == 16 * 2 * 2 * 2 * 16
    peft = report["arms"]["peft PrefixTuning"]  # measured where peft is installed, else its failure is the result
    assert ("step_s_median" in peft) != ("error" in peft)


def test_cost_quick(tmp_path):
    output = tmp_path / "cost.json"
    report = load_benchmark("cost").main(
        [
            "--quick",
            "--work_dir",
            str(tmp_path),
            "--output",
            str(output),
            "--arms",
            "full",
            "prefix16",
            "prompt16",
            "prefix16_top_half",
        ]
    )
    assert json.loads(output.read_text())["results"].keys() == {"bert-base"}
    train = report["results"]["bert-base"]["train"]
    assert train["full"]["step_time_vs_full"] == 1.0
    # Only the prefix (and head) train and are saved: far fewer parameters and bytes than full fine-tuning.
    assert train["prefix16"]["trainable_parameters"] < train["full"]["trainable_parameters"] / 50
    assert train["prefix16"]["checkpoint_bytes"] < train["full"]["checkpoint_bytes"] / 50
    assert train["prompt16"]["peak_memory_mb"] > 0
    # The top half of the layers (1 of the quick BERT's 2): half the prefix, the same head.
    head = 2 * 32 + 2
    assert (
        train["prefix16_top_half"]["trainable_parameters"] - head
        == (train["prefix16"]["trainable_parameters"] - head) / 2
    )
    inference = report["results"]["bert-base"]["inference"]
    assert inference["plain"]["latency_vs_plain"] == 1.0 and inference["prefix16_mlp_folded"]["step_s_median"] > 0


def test_quality_quick_and_plots(tmp_path):
    arms = ["--arms", "head_only", "prefix16"]
    report = load_benchmark("quality").main(["sentiment", "--quick", "--work_dir", str(tmp_path), *arms])
    prefix = report["runs"]["prefix16"][0]
    # MiniLM: 16 virtual tokens x 2 (key, value) x 6 layers x 384, plus the 384x2 head.
    assert prefix["trainable_parameters"] == 16 * 2 * 6 * 384 + 384 * 2 + 2
    assert prefix["test_samples"] == 64 and 0 <= prefix["test"] <= 1
    assert [epoch for epoch, _ in prefix["dev_curve"]] == [1.0] and prefix["best_dev"] == prefix["dev_curve"][0][1]
    assert report["summary"]["head_only"]["trainable_parameters"] == 384 * 2 + 2
    # Finished runs are not run again: a second call only collects them, and a call for a subset of the
    # arms still reports the others' finished runs.
    again = load_benchmark("quality").main(
        ["sentiment", "--quick", "--work_dir", str(tmp_path), *arms, "--collect_only"]
    )
    assert again["runs"] == json.loads(json.dumps(report["runs"]))
    subset = load_benchmark("quality").main(
        ["sentiment", "--quick", "--work_dir", str(tmp_path), "--arms", "head_only"]
    )
    assert subset["runs"]["prefix16"] == again["runs"]["prefix16"] and "error" not in subset["summary"]["prefix16"]
    assert subset["summary"]["full"] == {"error": "not run"}

    report["summary"]["full"] = report["summary"]["head_only"]  # the cost plot is relative to a full-FT arm
    (tmp_path / "sentiment.json").write_text(json.dumps(report))
    (tmp_path / "sweep.json").write_text(json.dumps(report))  # its prefix16 arm is one point of a length sweep
    (tmp_path / "budget.json").write_text(json.dumps(report))  # drawn dashed beside the sentiment arms
    written = load_benchmark("plots").main(["--reports", str(tmp_path), "--output_dir", str(tmp_path / "plots")])
    assert {p.name for p in written} == {"learning_curves.png", "cost_vs_quality.png", "prefix_length_sweep.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    # CoNLL-2003 against wall clock: drawn once full fine-tuning's 3 epochs and an arm of the prefix are finished.
    conll = {"runs": {"full_3ep": report["runs"]["head_only"]}, "summary": {}}
    (tmp_path / "conll.json").write_text(json.dumps(conll))
    plots = load_benchmark("plots")
    names = {p.name for p in plots.main(["--reports", str(tmp_path), "--output_dir", str(tmp_path / "plots")])}
    assert "conll_vs_wall_clock.png" not in names
    conll["runs"]["prefix16_lr3e-2_text"] = report["runs"]["prefix16"]
    (tmp_path / "conll.json").write_text(json.dumps(conll))
    names = {p.name for p in plots.main(["--reports", str(tmp_path), "--output_dir", str(tmp_path / "plots")])}
    assert "conll_vs_wall_clock.png" in names


def test_quality_heldout_uses_its_own_data_and_levers_compare_with_sentiment_full(tmp_path):
    quality = load_benchmark("quality")
    report = quality.main(["heldout", "--quick", "--work_dir", str(tmp_path), "--arms", "full", "defaults"])
    held_out = quality.AMAZON_REVIEWS
    for arm in ("full", "defaults"):
        run = report["runs"][arm][0]
        assert str(held_out / "train.csv") in run["command"]
        assert str(quality.MOVIE_REVIEWS) not in " ".join(run["command"])
        assert run["test_samples"] == 64 and run["wall_s"] > 0
    # Test accuracy is scored against the held-out file's own labels (the first 64 rows, predicted in order).
    with open(tmp_path / "quick" / "heldout" / "defaults-seed42" / "predict_results_custom.txt") as handle:
        predicted = [line.rstrip("\n").split("\t")[1] for line in handle.readlines()[1:]]
    with open(held_out / "test.csv", newline="") as handle:
        gold = [row["label"] for row in csv.DictReader(handle)][:64]
    expected = sum(p == g for p, g in zip(predicted, gold, strict=True)) / 64
    assert report["runs"]["defaults"][0]["test"] == expected
    assert report["full"] == report["summary"]["full"]  # the experiment's own full fine-tuning is the baseline

    # The levers have no full arm of their own: they compare with the sentiment experiment's finished one.
    assert (
        load_benchmark("quality").main(["levers", "--quick", "--work_dir", str(tmp_path), "--collect_only"])["full"]
        is None
    )
    (tmp_path / "quick" / "sentiment").mkdir()
    (tmp_path / "quick" / "heldout" / "full-seed42").rename(tmp_path / "quick" / "sentiment" / "full-seed42")
    levers = load_benchmark("quality").main(["levers", "--quick", "--work_dir", str(tmp_path), "--collect_only"])
    assert levers["full"]["seeds"] == [42] and levers["full"]["test"]["values"] == [report["runs"]["full"][0]["test"]]
    # ... or, where no sentiment run is kept, with the depth experiment's (the same arm on the same data)
    (tmp_path / "quick" / "depth").mkdir()
    (tmp_path / "quick" / "sentiment" / "full-seed42").rename(tmp_path / "quick" / "depth" / "full-seed42")
    levers = load_benchmark("quality").main(["levers", "--quick", "--work_dir", str(tmp_path), "--collect_only"])
    assert levers["full"]["test"]["values"] == [report["runs"]["full"][0]["test"]]
    (tmp_path / "quick" / "depth" / "full-seed42").rename(tmp_path / "quick" / "sentiment" / "full-seed42")
    # an arm's batch size reaches the script; the others keep 32
    args = argparse.Namespace(model=None, conll_dir=None, quick=False)
    for arm, batch in (("batch16", "16"), ("lr_2e-2", "32")):
        cmd = quality.command("levers", quality.LEVER_ARMS[arm], 42, tmp_path / "x", args)
        assert cmd[cmd.index("--per_device_train_batch_size") + 1] == batch

    written = load_benchmark("plots").main(
        ["--reports", str(tmp_path / "quick"), "--output_dir", str(tmp_path / "plots")]
    )
    assert [p.name for p in written] == ["quality_vs_wall_clock.png"] and written[0].read_bytes()[:4] == b"\x89PNG"


def test_gpu_engines_dry_run_builds_commands_run_glue_accepts(tmp_path, tiny_model):
    """The GPU check's wiring, on CPU: its configs are valid and run_glue.py's parser takes its flags."""
    import run_glue
    from prefix_models.scripts import parse_arguments

    report = load_benchmark("gpu_engines").main(
        ["--dry_run", "--model", str(tiny_model), "--nproc", "2", "--work_dir", str(tmp_path)]
    )
    assert set(report["commands"]) == {"ddp", "fsdp", "deepspeed"}
    assert json.loads((tmp_path / "fsdp_config.json").read_text())["version"] == 2
    assert json.loads((tmp_path / "ds_zero2.json").read_text())["zero_optimization"]["stage"] == 2
    for engine in ("ddp", "fsdp"):  # DeepSpeed's arguments need the deepspeed package to parse
        cmd = report["commands"][engine]
        script_args = cmd[cmd.index(str(ROOT / "run_glue.py")) + 1 :]
        _, _, training_args = parse_arguments(
            (run_glue.scripts.ModelArguments, run_glue.DataTrainingArguments, run_glue.TrainingArguments),
            [*script_args, "--use_cpu", "--bf16", "false"],
        )
        assert bool(training_args.fsdp) == (engine == "fsdp")


def test_injection_quick(tmp_path):
    output = tmp_path / "injection.json"
    report = load_benchmark("injection").main(["--quick", "--repeats", "1", "--output", str(output)])
    assert json.loads(output.read_text()) == report
    for backbone in ("bert", "smollm2"):
        assert set(report[backbone]) == {"attention", "cache", "plain"}
        assert all(report[backbone][arm]["inference"] > 0 for arm in ("attention", "cache", "plain"))
        assert report[backbone]["attention"]["train"] > 0 and report[backbone]["cache"]["train"] > 0


def test_multitask_quick(tmp_path):
    output, plot = tmp_path / "multitask.json", tmp_path / "multitask.png"
    report = load_benchmark("multitask").main(
        ["--quick", "--repeats", "1", "--output", str(output), "--plot", str(plot)]
    )
    assert json.loads(output.read_text()) == report and plot.stat().st_size > 0
    assert set(report["examples_per_second"]) == {"single", "single, named", "mixed", "mixed, lengths"}
    memory = report["memory_bytes"]
    assert len(memory["per task (prefix + head)"]) == 8
    assert memory["separate fine-tuned models"] > 7 * memory["one backbone + prefixes"] / 2


def test_paper_table_wiring(tmp_path, tiny_roberta_model, capsys):
    """benchmarks/paper.py end to end on a tiny RoBERTa standing in for roberta-large: a SuperGLUE row and a
    NER row run with the reference's settings (one epoch, few examples), a row without its model is
    skipped, and a finished row is not run again."""
    import shutil

    from conftest import FIXTURES

    models, data = tmp_path / "models", tmp_path / "data"
    models.mkdir()
    (models / "roberta-large").symlink_to(tiny_roberta_model, target_is_directory=True)
    shutil.copytree(FIXTURES / "super_glue_data" / "RTE", data / "RTE")
    shutil.copytree(FIXTURES / "ner_data", data / "conll2003", ignore=shutil.ignore_patterns("*.jsonl", "*.py", "*.md"))
    paper = load_benchmark("paper")
    rows = ["roberta-large/rte", "roberta-large/conll2003", "bert-large-cased/rte"]
    flags = [
        "--rows",
        *rows,
        "--models_dir",
        str(models),
        "--data_dir",
        str(data),
        "--output_dir",
        str(tmp_path / "out"),
        "--epochs_scale",
        "0.001",
    ]
    extra = [
        "--extra",
        "--use_cpu",
        "--max_train_samples",
        "16",
        "--max_eval_samples",
        "16",
        "--max_seq_length",
        "32",
        "--disable_tqdm",
        "true",
    ]

    paper.main([*flags, "--dry_run", *extra])
    commands = capsys.readouterr().out.splitlines()
    assert (
        "--learning_rate 0.005 --per_device_train_batch_size 32" in commands[0] and "--pre_seq_len 128" in commands[0]
    )
    assert "run_ner.py" in commands[1] and "--pre_seq_len 11" in commands[1] and "--learning_rate 0.03" in commands[1]
    assert "would skip: no model folder" in commands[2]

    table = paper.main([*flags, *extra])["rows"]
    for name in rows[:2]:
        assert 0 <= table[name]["ours"] <= 100 and table[name]["best_epoch"] == 1, table[name]
    assert table["bert-large-cased/rte"]["skipped"].startswith("no model folder")
    again = paper.main([*flags, *extra])["rows"]  # finished rows are read back, not run again
    assert again["roberta-large/rte"]["minutes"] == table["roberta-large/rte"]["minutes"]


def test_quality_scale_needs_the_larger_model(tmp_path, capsys):
    # The scale point is meaningless on the default MiniLM: without --model it starts nothing.
    with pytest.raises(SystemExit):
        load_benchmark("quality").main(["scale", "--work_dir", str(tmp_path)])
    assert "--model" in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.parametrize("family", ["Bert", "MPNet"])
def test_lora_script_adapts_each_familys_query_value_and_the_head_it_has(family):
    # The LoRA yardstick on a family whose projections are not BERT's "query"/"value" (MPNet's "q"/"v", a
    # classifier with no pooler) must still adapt them: peft silently skips names that match nothing.
    pytest.importorskip("peft")
    import transformers

    from prefix_models.errors import InputError

    config = getattr(transformers, f"{family}Config")(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
    )
    stock = getattr(transformers, f"{family}ForSequenceClassification")(config)
    lora_script = load_benchmark("lora_script")
    build = lora_script.lora_build_model(lambda model_args, task: stock)
    model = build(argparse.Namespace(method=None, head_only=False), "sequence_classification")
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    adapted = {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in trained if ".lora_" in name}
    assert adapted == ({"query", "value"} if family == "Bert" else {"q", "v"})
    assert sum(".lora_A." in name for name in trained) == 2 * config.num_hidden_layers
    heads = {name.split(".modules_to_save.")[0].rsplit(".", 1)[-1] for name in trained if "modules_to_save" in name}
    assert heads == ({"pooler", "classifier"} if family == "Bert" else {"classifier"})
    assert trained == {name for name in trained if ".lora_" in name or "modules_to_save" in name}
    with pytest.raises(InputError, match="model_type 'no-such-family'"):
        lora_script.lora_targets("no-such-family")


def test_import_time_quick(tmp_path):
    output = tmp_path / "import_time.json"
    report = load_benchmark("import_time").main(
        ["--repeats", "1", "--arms", "import", "prefix_models", "--output", str(output)]
    )
    assert json.loads(output.read_text()) == report
    ours = report["this tree"]
    assert set(ours["arms"]) == {"import", "prefix_models"}
    assert all(arm["median_s"] > 0 and len(arm["runs_s"]) == 1 for arm in ours["arms"].values())
    arms = ours["arms"]
    assert ours["prefix_models_adds_s"] == arms["prefix_models"]["median_s"] - arms["import"]["median_s"]


def test_transfer_quick_pretrains_once_and_starts_the_transferred_arms_from_it(tmp_path):
    """benchmarks/transfer.py end to end on all-MiniLM-L6-v2 (as the benchmark runs), with small stand-in files for
    the pre-training tasks and the toy NER fixtures for CoNLL and WNUT (the real data comes through pip)."""
    import shutil

    from conftest import FIXTURES

    data = tmp_path / "quick" / "data"
    words = ["the", "a", "good", "bad", "film", "news", "day", "is", "was", "not"]
    for task, header, labels in (
        ("movies", "sentence", ["negative", "positive"]),
        ("nyt", "sentence", ["negative", "positive"]),
        ("snli", "sentence1,sentence2", ["contradiction", "entailment", "neutral"]),
        ("bbc", "sentence", ["business", "sport", "tech"]),
    ):
        (data / task).mkdir(parents=True)
        for split in ("train", "validation"):
            rows = [f"{header},label"]
            for row in range(8):
                text = " ".join(words[(row * 3 + k) % len(words)] for k in range(4))
                rows.append(",".join([text] * header.count(",") + [text, labels[row % len(labels)]]))
            (data / task / f"{split}.csv").write_text("\n".join(rows) + "\n")
        (data / task / "done").touch()
    for task in ("conll", "wnut"):
        shutil.copytree(FIXTURES / "ner_data", data / task, ignore=shutil.ignore_patterns("*.jsonl", "*.py", "*.md"))
        (data / task / "dev.txt").rename(data / task / "valid.txt")  # as CoNLL-2003 names its dev split
        (data / task / "done").touch()
    (data / "wnut" / "labels.txt").write_text("O\nB-PER\nI-PER\nB-LOC\nI-LOC\nB-MISC\nI-MISC\n")

    transfer = load_benchmark("transfer")
    flags = ["--quick", "--work_dir", str(tmp_path), "--plot", "--plot_dir", str(tmp_path)]
    report = transfer.main(["all", "--arms", "transferred", "default", *flags])
    pretrained = tmp_path / "quick" / "pretrain_sentiment" / "prefixes" / "movies"
    assert report["pretraining"]["sentiment"]["start_from"] == str(pretrained)
    assert {f"eval_{task}_accuracy" for task in transfer.PRETRAIN_TASKS} <= set(
        report["pretraining"]["sentiment"]["eval"]
    )
    for experiment in ("transfer_sentiment", "transfer_ner"):
        runs = report["runs"][experiment]
        transferred, default = runs["transferred"][0], runs["default"][0]
        assert "error" not in transferred and "error" not in default, (transferred, default)
        assert "--prefix_init_from" in transferred["command"] and "--prefix_init_from" not in default["command"]
        assert [epoch for epoch, _ in transferred["dev_curve"]] == [1.0]
    assert report["runs"]["transfer_sentiment"]["full"] == [{"error": "not run", "seed": 42}]
    # The NER arms start from the CoNLL run's folder, the sentiment arms from the shared prefix's movies task.
    ner = report["runs"]["transfer_ner"]["transferred"][0]["command"]
    assert ner[ner.index("--prefix_init_from") + 1] == str(tmp_path / "quick" / "pretrain_ner")
    assert (tmp_path / "transfer_curves.png").read_bytes()[:4] == b"\x89PNG"
    # CoNLL and WNUT on one shared prefix, CoNLL's test split scored from its prefixes/conll folder.
    shared = transfer.main(["ner_shared", *flags])["shared_ner"]
    assert "error" not in shared, shared
    assert 0 <= shared["test"] <= 1 and set(shared["dev"]) == {"conll", "wnut"}
    assert "--shared_prefix" in shared["commands"][0] and "--do_predict" in shared["commands"][1]
    # Finished runs and the pre-training are read back, not run again.
    again = transfer.main(["report", *flags])
    assert again["shared_ner"] == json.loads(json.dumps(shared))
    assert again["runs"] == json.loads(json.dumps(report["runs"]))
    assert again["pretraining"] == json.loads(json.dumps(report["pretraining"]))
