"""End-to-end runs of run_glue.py on tiny models and small files in the official formats."""

from __future__ import annotations

import csv
import json
import logging
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, minilm
from safetensors.torch import load_file
from script_runs import (
    EVERY_PHASE,
    MERGED_MLP_RUN,
    SHARED_FLAGS,
    assert_the_mlp_was_folded,
    help_text,
    learning_options,
    record_training_arguments,
    script_args,
    two_sentences,
)

import run_glue

GLUE = FIXTURES / "glue_data"
SUPER_GLUE = FIXTURES / "super_glue_data"
ONE_EPOCH = {**EVERY_PHASE, "num_train_epochs": 1}


def run(model: Path, output_dir: Path, *args: str, **options: object) -> dict:
    batches = {"per_device_train_batch_size": 4, "per_device_eval_batch_size": 8}
    return run_glue.main(script_args(model, output_dir, *args, **{**batches, **options}))


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def count_rows(path: Path) -> int:
    return len([line for line in lines(path) if line.strip()]) - (0 if path.suffix == ".jsonl" else 1)


GLUE_CASES = {
    # task: (metric keys, submission file, extra flags)
    "cola": (["eval_matthews_correlation"], "CoLA.tsv", ["--prefix"]),
    "sst2": (["eval_accuracy"], "SST-2.tsv", ["--prompt"]),
    "mrpc": (["eval_accuracy", "eval_f1", "eval_combined_score"], "MRPC.tsv", ["--prefix", "--prefix_projection"]),
    "qqp": (["eval_accuracy", "eval_f1"], "QQP.tsv", ["--prefix"]),
    "stsb": (["eval_pearson", "eval_spearmanr"], "STS-B.tsv", ["--prefix"]),
    "mnli": (["eval_accuracy", "eval_mismatched_accuracy"], "MNLI-m.tsv", ["--prefix"]),
    "qnli": (["eval_accuracy"], "QNLI.tsv", ["--head_only"]),
    "rte": (["eval_accuracy"], "RTE.tsv", []),
    "wnli": (["eval_accuracy"], "WNLI.tsv", ["--prompt", "--prompt_init", "vocab"]),
}


@pytest.mark.parametrize("task", GLUE_CASES)
def test_glue_tasks_from_the_official_tsv_files(task, tiny_model, tmp_path):
    metric_keys, submission, flags = GLUE_CASES[task]
    results = run(tiny_model, tmp_path, *flags, task_name=task, data_dir=GLUE, eval_strategy="epoch", **ONE_EPOCH)
    for key in metric_keys:
        assert key in results
    for name in ("all_results.json", "eval_results.json", "train_results.json", "trainer_state.json"):
        assert (tmp_path / name).is_file(), name
    all_results = json.loads((tmp_path / "all_results.json").read_text())
    assert set(metric_keys) <= set(all_results) and "best_epoch" in all_results
    # eval_results.json keeps every dev split's metrics (MNLI: matched and mismatched).
    assert set(metric_keys) <= set(json.loads((tmp_path / "eval_results.json").read_text()))
    folder = GLUE / {"sst2": "SST-2", "stsb": "STS-B", "cola": "CoLA"}.get(task, task.upper())
    test_file = folder / ("test_matched.tsv" if task == "mnli" else "test.tsv")
    assert count_rows(tmp_path / submission) == count_rows(test_file)
    assert count_rows(tmp_path / f"predict_results_{task}.txt") == count_rows(test_file)
    if task == "mnli":
        assert count_rows(tmp_path / "MNLI-mm.tsv") == count_rows(folder / "test_mismatched.tsv")
        predicted = {line.split("\t")[1] for line in lines(tmp_path / "MNLI-m.tsv")[1:]}
        assert predicted <= {"entailment", "neutral", "contradiction"}


SUPER_GLUE_CASES = {
    "boolq": (["eval_accuracy"], ["--prefix"]),
    "cb": (["eval_accuracy", "eval_macro_f1"], ["--prefix"]),
    "copa": (["eval_accuracy"], ["--prefix"]),
    "rte": (["eval_accuracy"], ["--prompt"]),
    "wic": (["eval_accuracy"], ["--prefix"]),
    "wsc": (["eval_accuracy"], ["--prefix"]),
    "multirc": (["eval_f1a", "eval_exact_match"], ["--prefix"]),
    "record": (["eval_f1", "eval_exact_match"], ["--prefix"]),
}


@pytest.mark.parametrize("task", SUPER_GLUE_CASES)
def test_superglue_tasks_from_the_official_jsonl_files(task, tiny_model, tmp_path):
    metric_keys, flags = SUPER_GLUE_CASES[task]
    results = run(tiny_model, tmp_path, *flags, task_name=task, data_dir=SUPER_GLUE, **ONE_EPOCH)
    for key in metric_keys:
        assert 0.0 <= results[key] <= 1.0
    folder = {
        "boolq": "BoolQ",
        "cb": "CB",
        "copa": "COPA",
        "rte": "RTE",
        "wic": "WiC",
        "wsc": "WSC",
        "multirc": "MultiRC",
        "record": "ReCoRD",
    }[task]
    test_records = [json.loads(line) for line in lines(SUPER_GLUE / folder / "test.jsonl")]
    submitted = [json.loads(line) for line in lines(tmp_path / f"{folder}.jsonl")]
    if task == "multirc":
        assert [r["idx"] for r in submitted] == [r["idx"] for r in test_records]
        for ours, theirs in zip(submitted, test_records, strict=True):
            expected = [[a["idx"] for a in q["answers"]] for q in theirs["passage"]["questions"]]
            got = [[a["idx"] for a in q["answers"]] for q in ours["passage"]["questions"]]
            assert got == expected
            assert all(a["label"] in (0, 1) for q in ours["passage"]["questions"] for a in q["answers"])
    elif task == "record":
        queries = {q["idx"]: record for record in test_records for q in record["qas"]}
        assert sorted(r["idx"] for r in submitted) == sorted(queries)
        for answer in submitted:
            assert answer["label"] in queries[answer["idx"]]["passage"]["text"]  # a passage entity
    else:
        assert [r["idx"] for r in submitted] == [r["idx"] for r in test_records]
        allowed = {
            "boolq": {True, False},
            "wic": {True, False},
            "wsc": {True, False},
            "copa": {0, 1},
            "cb": {"entailment", "contradiction", "neutral"},
            "rte": {"entailment", "not_entailment"},
        }[task]
        assert {r["label"] for r in submitted} <= allowed


def write_sentiment_csv(path: Path, n: int, seed: int) -> None:
    """A toy sentiment task a tiny model can learn: the sentiment word starts the sentence."""
    rng = random.Random(seed)
    positive, negative = "good great fun loved brilliant".split(), "bad awful boring dull weak".split()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "sentence", "label"])
        for i in range(n):
            label = rng.choice(["positive", "negative"])
            word = rng.choice(positive if label == "positive" else negative)
            writer.writerow([i, f"{word} {word} movie , the plot was {rng.choice(['long', 'slow', 'fine'])}", label])


@pytest.fixture(scope="module")
def sentiment_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sentiment")
    files = {"train": root / "train.csv", "validation": root / "dev.csv", "test": root / "test.csv"}
    for path, (n, seed) in zip(files.values(), [(96, 0), (48, 1), (16, 2)], strict=True):
        write_sentiment_csv(path, n, seed)
    return files


@pytest.mark.parametrize(
    "method_flags, learning_rate, epochs, pretrained",
    [
        # A frozen *random* backbone gives a prefix little to work with, so the prefix methods
        # are checked on a real pretrained BERT; full fine-tuning learns even from random weights.
        (["--prefix", "--pre_seq_len", "8"], "2e-2", "6", True),
        (
            ["--prompt", "--pre_seq_len", "8", "--prompt_init", "text", "--prompt_init_text", "movie review"],
            "2e-2",
            "6",
            True,
        ),
        ([], "1e-3", "4", False),
    ],
    ids=["prefix", "prompt", "full-fine-tuning"],
)
def test_a_learnable_csv_task_is_learned(
    method_flags, learning_rate, epochs, pretrained, tiny_model, sentiment_files, tmp_path
):
    model = minilm() if pretrained else tiny_model
    files = {f"{split}_file": path for split, path in sentiment_files.items()}
    results = run(model, tmp_path, *method_flags, **files, **learning_options(epochs, learning_rate), max_seq_length=32)
    assert results["eval_accuracy"] >= 0.9
    assert results["best_eval_accuracy"] >= results["eval_accuracy"]
    predictions = lines(tmp_path / "predict_results_custom.txt")
    assert len(predictions) == 17 and {p.split("\t")[1] for p in predictions[1:]} <= {"positive", "negative"}


def test_json_files_named_columns_and_head_only(tiny_model, tmp_path):
    rows = [
        {"review": f"{w} film", "stars": "high" if w in ("good", "great") else "low", "extra": 1}
        for w in ["good", "bad", "great", "awful"] * 4
    ]
    for name in ("train.json", "dev.json"):
        (tmp_path / name).write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "out"
    results = run(
        tiny_model,
        out,
        train_file=tmp_path / "train.json",
        validation_file=tmp_path / "dev.json",
        text_column_names="review",
        label_column_name="stars",
        head_only=True,
        do_train=True,
        do_eval=True,
        num_train_epochs=1,
    )
    assert "eval_accuracy" in results
    saved = load_file(out / "model.safetensors")
    base = load_file(tiny_model / "model.safetensors")
    backbone = {k: v for k, v in saved.items() if k.startswith("bert.")}
    assert backbone and all(torch.equal(v, base[k.removeprefix("bert.")]) for k, v in backbone.items())
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "high", "1": "low"}


def test_merge_prefix_projection_saves_the_table_the_mlp_computes(tiny_model, sentiment_files, tmp_path):
    from prefix_models import AutoPrefixModelForSequenceClassification

    files = {f"{split}_file": path for split, path in sentiment_files.items() if split != "test"}
    run(tiny_model, tmp_path / "out", **MERGED_MLP_RUN, **files, pre_seq_len=4)
    batch = two_sentences(bos=2, eos=3, pad=0)
    assert_the_mlp_was_folded(tmp_path / "out", AutoPrefixModelForSequenceClassification, **batch)


def test_a_single_json_argument_is_the_configuration(tiny_model, sentiment_files, tmp_path):
    config = {
        "model_name_or_path": str(tiny_model),
        "output_dir": str(tmp_path / "out"),
        "use_cpu": True,
        "report_to": "none",
        "train_file": str(sentiment_files["train"]),
        "validation_file": str(sentiment_files["validation"]),
        "do_eval": True,
        "prompt": True,
        "pre_seq_len": 3,
        "max_eval_samples": 10,
    }
    (tmp_path / "args.json").write_text(json.dumps(config))
    results = run_glue.main([str(tmp_path / "args.json")])
    assert results["eval_samples"] == 10


def test_help_documents_every_flag():
    text = help_text("run_glue.py")
    for flag in (*SHARED_FLAGS, "--prompt_init", "--prompt_init_text", "--text_column_names"):
        assert flag in text, flag
    assert "boolq" in text and "P-tuning v2" in text


def test_sentence_transformers_checkpoints_are_read_as_they_were_trained(tiny_model, tmp_path, caplog):
    """--prefix / --prompt leave classifier_pooling unset: a sentence-transformers checkpoint then reads its
    tokens the way it was trained (its mean), and the log says so; a flag given wins."""
    from prefix_models.scripts import ModelArguments, build_model, sentence_transformers_pooling

    # A checkpoint laid out as sentence-transformers saves one: modules.json + the Pooling module's config.
    checkpoint = Path(shutil.copytree(tiny_model, tmp_path / "st-model"))
    (checkpoint / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (checkpoint / "1_Pooling").mkdir()
    pooling = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    (checkpoint / "1_Pooling" / "config.json").write_text(json.dumps(pooling))

    def build(path, **flags):
        caplog.clear()
        args = ModelArguments(model_name_or_path=str(path), prefix=True, pre_seq_len=2, **flags)
        return build_model(args, "sequence_classification", num_labels=2)

    assert sentence_transformers_pooling(ModelArguments(model_name_or_path=str(checkpoint))) == "mean"
    with caplog.at_level(logging.INFO, logger="prefix_models.scripts.models"):
        assert build(checkpoint).config.classifier_pooling == "mean"  # picked, and said
        assert "picked --classifier_pooling mean" in caplog.text
        assert build(checkpoint, classifier_pooling="pooler").config.classifier_pooling == "pooler"
        assert "picked" not in caplog.text
        assert build(tiny_model).config.classifier_pooling == "pooler"  # a plain checkpoint: nothing to say
        assert "sentence-transformers" not in caplog.text

    (checkpoint / "1_Pooling" / "config.json").write_text(
        json.dumps({**pooling, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    assert sentence_transformers_pooling(ModelArguments(model_name_or_path=str(checkpoint))) == "cls"
    (checkpoint / "modules.json").write_text("not json")
    assert sentence_transformers_pooling(ModelArguments(model_name_or_path=str(checkpoint))) is None


@pytest.mark.parametrize(
    "flags, expected, task",
    [
        (["--prefix"], 3e-2, "rte"),  # sequence classification: measured best on sentiment (RESULTS.md)
        (["--prefix"], 1e-2, "copa"),  # multiple choice, not measured at other rates: P-tuning v2's range
        (["--prompt"], 3e-2, "rte"),
        (["--prefix", "--learning_rate", "5e-5"], 5e-5, "rte"),  # a flag given wins, even at the Trainer's default
        ([], 5e-5, "rte"),  # full fine-tuning keeps the Trainer's default
    ],
)
def test_the_method_picks_its_learning_rate_when_none_is_given(
    flags, expected, task, tiny_model, tmp_path, monkeypatch
):
    seen = record_training_arguments(monkeypatch)
    run(tiny_model, tmp_path, *flags, task_name=task, data_dir=SUPER_GLUE if task == "copa" else GLUE, do_eval=True)
    assert seen[0].learning_rate == expected


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--prefix"], "text"),  # measured to help on sequence classification: picked
        (["--prefix", "--prefix_init", "random"], "random"),  # a flag given wins
        (["--prefix", "--prefix_projection"], "random"),  # the MLP is no table a text can set
    ],
)
def test_a_classification_prefix_starts_from_text_unless_told_otherwise(
    flags, expected, tiny_model, tmp_path, monkeypatch
):
    from transformers import AutoTokenizer, Trainer

    from prefix_models.configuration import DEFAULT_PREFIX_INIT_TEXT

    seen = {}
    original = Trainer.__init__

    def record(self, *args, **kwargs):
        model = kwargs["model"]
        seen["init"], seen["model"] = model.config.prefix_init, model
        seen["table"] = model.prefix_encoder.embedding.weight.detach().clone() if expected == "text" else None
        original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "__init__", record)
    run(tiny_model, tmp_path, *flags, task_name="rte", data_dir=GLUE, do_eval=True, pre_seq_len=6)
    assert seen["init"] == expected
    if expected == "text":  # the table really is the backbone's keys and values of the default text
        ids = AutoTokenizer.from_pretrained(tiny_model)(DEFAULT_PREFIX_INIT_TEXT, add_special_tokens=False)["input_ids"]
        model = seen["model"]
        expected_table = model.tuning.table_from_text(model, torch.tensor((ids * 6)[:6]))
        torch.testing.assert_close(seen["table"], expected_table)


def test_only_classification_prefixes_get_the_text_init(tiny_model, tmp_path):
    from transformers import TrainingArguments

    from prefix_models.scripts import ModelArguments, apply_method_defaults

    def picked(task: str, **flags) -> dict:
        model_args = ModelArguments(model_name_or_path=str(tiny_model), **flags)
        return apply_method_defaults(model_args, TrainingArguments(output_dir=str(tmp_path)), task)

    for task in ("sequence_classification", "token_classification"):
        assert picked(task, prefix=True)["prefix_init"] == "text"
        assert "prefix_init" not in picked(task, prefix=True, prefix_projection=True)  # the MLP is no table to set
    for task in ("multiple_choice", "causal_lm", "seq2seq_lm"):  # not measured there
        assert "prefix_init" not in picked(task, prefix=True)
    assert "prefix_init" not in picked("sequence_classification", prompt=True)
    assert "prefix_init" not in picked("sequence_classification", prefix=True, prefix_init="random")
    # A text given says how to start, wherever: no --prefix_init text needed beside it.
    given = ModelArguments(model_name_or_path=str(tiny_model), prefix=True, prefix_init_text="a calm review")
    assert given.prefix_init == "text"
    apply_method_defaults(given, TrainingArguments(output_dir=str(tmp_path)), "token_classification")
    assert given.prefix_init == "text" and given.prefix_init_text == "a calm review"


def test_a_json_configuration_counts_as_given(tiny_model, tmp_path):
    from transformers import TrainingArguments

    from prefix_models.scripts import ModelArguments, apply_method_defaults, parse_arguments, was_given

    config = tmp_path / "args.json"
    config.write_text(
        json.dumps(
            {"model_name_or_path": str(tiny_model), "output_dir": str(tmp_path), "prefix": True, "learning_rate": 3e-3}
        )
    )
    model_args, training_args = parse_arguments((ModelArguments, TrainingArguments), [str(config)])
    assert was_given(training_args, "learning_rate") and not was_given(training_args, "num_train_epochs")
    assert "learning_rate" not in apply_method_defaults(model_args, training_args, "sequence_classification")
    assert training_args.learning_rate == 3e-3
