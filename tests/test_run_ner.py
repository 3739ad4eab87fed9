"""End-to-end runs of run_ner.py on tiny models and the toy CoNLL / json-lines fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from conftest import FIXTURES, minilm
from conlleval import conlleval
from datasets import ClassLabel, Dataset, Features, List, Value
from script_runs import (
    MERGED_MLP_RUN,
    PREFIX,
    SHARED_FLAGS,
    assert_the_mlp_was_folded,
    help_text,
    learning_options,
    model_card,
    record_training_arguments,
    script_args,
    two_sentences,
)
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

import run_ner
from prefix_models.scripts.ner.data import read_conll

NER = FIXTURES / "ner_data"


def run(model: Path, output_dir: Path, *args: str, **options: object) -> dict:
    batches = {"per_device_train_batch_size": 8, "per_device_eval_batch_size": 16}
    return run_ner.main(script_args(model, output_dir, *args, **{**batches, **options}))


def prediction_rows(path: Path) -> list[list[list[str]]]:
    sentences, current = [], []
    for line in path.read_text().splitlines():
        if line:
            current.append(line.split(" "))
        elif current:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def test_merge_prefix_projection_saves_the_table_the_mlp_computes(tiny_model, tmp_path):
    from prefix_models import AutoPrefixModelForTokenClassification

    run(tiny_model, tmp_path, data_dir=NER, **MERGED_MLP_RUN, pre_seq_len=4)
    assert_the_mlp_was_folded(tmp_path, AutoPrefixModelForTokenClassification, **two_sentences(bos=2, eos=3, pad=0))


def test_conll_data_dir_prefix_with_windows(tiny_model, tmp_path):
    # --max_seq_length 12 splits the 60-word test sentence (and longer train sentences) into windows.
    windows = {"max_seq_length": 12, "return_entity_level_metrics": True}
    results = run(tiny_model, tmp_path, data_dir=NER, **PREFIX, **learning_options(1), **windows)
    for key in (
        "eval_precision",
        "eval_recall",
        "eval_f1",
        "eval_accuracy",
        "eval_PER_f1",
        "eval_LOC_number",
        "predict_f1",
        "best_eval_f1",
        "best_epoch",
    ):
        assert key in results, key
    assert results["eval_LOC_number"] == sum(tag == "B-LOC" for s in read_conll(NER / "dev.txt") for tag in s.tags)
    for name in (
        "all_results.json",
        "eval_results.json",
        "predict_results.json",
        "trainer_state.json",
        "config.json",
        "predictions.txt",
    ):
        assert (tmp_path / name).is_file(), name
    # Every word of every test sentence is predicted exactly once, in order, with its gold tag beside it.
    test = read_conll(NER / "test.txt")
    rows = prediction_rows(tmp_path / "predictions.txt")
    assert [[r[0] for r in sentence] for sentence in rows] == [s.tokens for s in test]
    assert [[r[1] for r in sentence] for sentence in rows] == [s.tags for s in test]
    # The file re-scores with conlleval's counting (an implementation independent of seqeval) to the
    # headline numbers, and with seqeval's strict mode to the strict_* ones.
    rescored = conlleval(tmp_path / "predictions.txt")
    for name in ("precision", "recall", "f1"):
        assert rescored[name] == pytest.approx(results[f"predict_{name}"]), name
    strict = f1_score([[r[1] for r in s] for s in rows], [[r[2] for r in s] for s in rows], mode="strict", scheme=IOB2)
    assert strict == pytest.approx(results["predict_strict_f1"])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["id2label"] == {"0": "O", "1": "B-LOC", "2": "B-MISC", "3": "I-MISC", "4": "B-PER"}
    metadata, text = model_card(tmp_path)
    assert metadata["pipeline_tag"] == "token-classification" and "| task | named-entity recognition |" in text


def test_json_lines_files_prompt_and_label_all_tokens(tiny_model, tmp_path):
    results = run(
        tiny_model,
        tmp_path,
        train_file=NER / "train.jsonl",
        validation_file=NER / "dev.jsonl",
        prompt=True,
        pre_seq_len=3,
        label_all_tokens=True,
        do_train=True,
        do_eval=True,
        num_train_epochs=1,
        max_eval_samples=10,
    )
    assert results["eval_samples"] == 10 and 0.0 <= results["eval_f1"] <= 1.0


@pytest.mark.parametrize(
    "method_flags, learning_rate, epochs, pretrained",
    [
        (["--prefix", "--pre_seq_len", "8"], "1e-2", "8", True),
        ([], "5e-3", "8", False),
    ],
    ids=["prefix", "full-fine-tuning"],
)
def test_the_toy_ner_task_is_learned(method_flags, learning_rate, epochs, pretrained, tiny_model, tmp_path):
    model = minilm() if pretrained else tiny_model
    results = run(model, tmp_path, *method_flags, data_dir=NER, **learning_options(epochs, learning_rate))
    assert results["eval_f1"] >= 0.9 and results["predict_f1"] >= 0.9
    assert results["best_eval_f1"] >= results["eval_f1"]


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--prefix"], 3e-2),  # measured on CoNLL-2003 against 2e-2 (RESULTS.md)
        (["--prompt"], 3e-2),
        (["--prefix", "--learning_rate", "5e-5"], 5e-5),  # a flag given wins, even at the Trainer's default
        ([], 5e-5),  # full fine-tuning keeps the Trainer's default
    ],
)
def test_the_method_picks_its_learning_rate_when_none_is_given(flags, expected, tiny_model, tmp_path, monkeypatch):
    seen = record_training_arguments(monkeypatch)
    run(tiny_model, tmp_path, *flags, data_dir=NER, do_eval=True)
    assert seen[0].learning_rate == expected


def test_roberta_prefix_on_pre_split_words(tiny_roberta_model, tmp_path):
    one_epoch = {"do_train": True, "do_predict": True, "num_train_epochs": 1, "max_seq_length": 16}
    results = run(tiny_roberta_model, tmp_path, data_dir=NER, **PREFIX, **one_epoch)
    assert "predict_f1" in results
    rows = prediction_rows(tmp_path / "predictions.txt")
    assert [[r[0] for r in sentence] for sentence in rows] == [s.tokens for s in read_conll(NER / "test.txt")]


def iob2_to(scheme: str, sentence: list[str]) -> list[str]:
    out = []
    for i, tag in enumerate(sentence):
        following = sentence[i + 1] if i + 1 < len(sentence) else "O"
        ends = not following.startswith("I-")
        if scheme == "BIOES" and tag != "O":
            prefix = {"B": "S" if ends else "B", "I": "E" if ends else "I"}[tag[0]]
            tag = f"{prefix}-{tag[2:]}"
        elif scheme == "IOB1" and tag.startswith("B-"):
            previous = out[-1] if out else "O"
            tag = tag if previous[2:] == tag[2:] else f"I-{tag[2:]}"
        out.append(tag)
    return out


@pytest.mark.parametrize("scheme", ["IOB1", "BIOES"])
def test_other_tag_schemes_are_detected_and_scored_strictly(scheme, tiny_model, tmp_path):
    for split in ("train", "dev"):
        with open(tmp_path / f"{split}.txt", "w") as handle:
            for sentence in read_conll(NER / f"{split}.txt"):
                for token, tag in zip(sentence.tokens, iob2_to(scheme, sentence.tags), strict=True):
                    handle.write(f"{token}\t{tag}\n")
                handle.write("\n")
    results = run(
        tiny_model,
        tmp_path / "out",
        data_dir=tmp_path,
        do_train=True,
        do_eval=True,
        learning_rate=5e-3,
        num_train_epochs=8,
        return_entity_level_metrics=True,
    )
    # IOB1 tells two adjacent entities of one type apart only from context (I-PER B-PER), hence 0.8.
    assert results["eval_f1"] >= 0.8 and "eval_MISC_f1" in results
    labels = json.loads((tmp_path / "out" / "config.json").read_text())["label2id"]
    assert ("S-PER" in labels) == (scheme == "BIOES")


def test_a_trained_tagger_predicts_and_rejects_labels_it_never_saw(tiny_model, tmp_path):
    trained = tmp_path / "trained"
    run(tiny_model, trained, data_dir=NER, **PREFIX, do_train=True, num_train_epochs=1)
    # Predict with the saved prefix model on a tokens-only file: two columns out.
    tokens_only = tmp_path / "words.txt"
    tokens_only.write_text("the\ndirector\n\nmusic\nscript\nwas\ngood\n")
    run(trained, tmp_path / "predict", test_file=tokens_only, do_predict=True)
    rows = prediction_rows(tmp_path / "predict" / "predictions.txt")
    assert [[r[0] for r in s] for s in rows] == [["the", "director"], ["music", "script", "was", "good"]]
    assert all(len(r) == 2 for s in rows for r in s)
    # Gold tags the tagger was not trained with: a clear error naming file and line.
    unseen = tmp_path / "unseen.txt"
    unseen.write_text("the O\ndirector B-PER\n\nParis B-GPE\n")
    with pytest.raises(ValueError, match=r"unseen.txt, line 4: label 'B-GPE' is not among the labels the model"):
        run(trained, tmp_path / "predict2", test_file=unseen, do_predict=True)


def test_help_documents_every_flag():
    text = help_text("run_ner.py")
    ner_flags = ("--tag_column", "--label_all_tokens", "--return_entity_level_metrics", "--tag_scheme")
    for flag in (*SHARED_FLAGS, *ner_flags, "--label_names_file", "--dataset_name"):
        assert flag in text, flag
    assert "seqeval" in text and "windows" in text


def test_integer_tags_named_by_a_label_file(tiny_model, tmp_path):
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    for split in ("train", "dev"):
        with open(tmp_path / f"{split}.jsonl", "w") as handle:
            for sentence in read_conll(NER / f"{split}.txt"):
                ids = [labels.index(tag) for tag in sentence.tags]
                handle.write(json.dumps({"tokens": sentence.tokens, "ner_tags": ids}) + "\n")
    results = run(
        tiny_model,
        tmp_path / "out",
        train_file=tmp_path / "train.jsonl",
        validation_file=tmp_path / "dev.jsonl",
        label_names_file=tmp_path / "labels.txt",
        do_train=True,
        do_eval=True,
        learning_rate=5e-3,
        num_train_epochs=8,
    )
    assert results["eval_f1"] >= 0.9
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(labels))] == labels


# The hub's NER sets, as datasets 5 reads them: parquet files (the hub's conversion of a script-based
# dataset keeps one folder per configuration, one per split), written here from the toy CoNLL fixture.
CONLL_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TNER_LABEL2ID = {"O": 0, "B-PER": 1, "B-MISC": 2, "I-PER": 3, "B-LOC": 4, "I-MISC": 5}  # an order of its own


def write_parquet_dataset(root: Path, config: str, style: str) -> Path:
    for split, file in (("train", "train.txt"), ("validation", "dev.txt"), ("test", "test.txt")):
        sentences = read_conll(NER / file)
        tokens = [s.tokens for s in sentences]
        if style == "classlabel":  # eriktks/conll2003: ner_tags are ClassLabel ids with their names in the schema
            features = Features(
                {
                    "id": Value("string"),
                    "tokens": List(Value("string")),
                    "ner_tags": List(ClassLabel(names=CONLL_NAMES)),
                }
            )
            columns = {
                "id": [str(i) for i in range(len(tokens))],
                "tokens": tokens,
                "ner_tags": [[CONLL_NAMES.index(t) for t in s.tags] for s in sentences],
            }
        else:  # tner/*: bare integer tags, named by dataset/label.json
            features = Features({"tokens": List(Value("string")), "tags": List(Value("int32"))})
            columns = {"tokens": tokens, "tags": [[TNER_LABEL2ID[t] for t in s.tags] for s in sentences]}
        folder = root / config / split
        folder.mkdir(parents=True)
        Dataset.from_dict(columns, features=features).to_parquet(folder / "0000.parquet")
    return root


NER_ARGS = {"do_train": True, "do_eval": True, "max_steps": 3, "learning_rate": 5e-3}


def assert_the_same_run_as_from_files(from_hub: dict, label_names: list[str], model: Path, tmp_path: Path) -> None:
    """The hub run scores as a run on the CoNLL files with the hub's label list does: same sentences, same labels."""
    (tmp_path / "labels.txt").write_text("\n".join(label_names))
    from_files = run(model, tmp_path / "files", data_dir=NER, label_names_file=tmp_path / "labels.txt", **NER_ARGS)
    assert from_hub["eval_f1"] == from_files["eval_f1"] and from_hub["eval_accuracy"] == from_files["eval_accuracy"]


def test_hub_dataset_with_classlabel_tags_reads_the_label_names(tiny_model, tmp_path):
    dataset = write_parquet_dataset(tmp_path / "conll2003", "conll2003", "classlabel")
    from_hub = run(tiny_model, tmp_path / "hub", dataset_name=dataset, **NER_ARGS)
    # As in transformers' run_ner.py, the model's label ids are the dataset's (all nine, I-PER included,
    # which the training split never uses).
    config = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(CONLL_NAMES))] == CONLL_NAMES
    assert_the_same_run_as_from_files(from_hub, CONLL_NAMES, tiny_model, tmp_path)


def test_hub_dataset_with_integer_tags_is_named_by_its_label_json(tiny_model, tmp_path):
    dataset = write_parquet_dataset(tmp_path / "conll2004", "conll2004", "integers")
    # Without names, integer tags are a clear error that says how to name them.
    with pytest.raises(ValueError, match=r"tag '0' is not in the IOB2 scheme.*--label_names_file"):
        run(tiny_model, tmp_path / "unnamed", dataset_name=dataset, **NER_ARGS)
    (dataset / "dataset").mkdir()
    (dataset / "dataset" / "label.json").write_text(json.dumps(TNER_LABEL2ID))
    from_hub = run(tiny_model, tmp_path / "hub", dataset_name=dataset, **NER_ARGS)
    config = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert config["label2id"] == TNER_LABEL2ID
    assert_the_same_run_as_from_files(from_hub, list(TNER_LABEL2ID), tiny_model, tmp_path)


def test_task_name_falls_back_to_the_parquet_conversion_of_a_script_dataset(tiny_model, tmp_path, monkeypatch):
    dataset = write_parquet_dataset(tmp_path / "conll2003", "conll2003", "classlabel")
    real_load, calls = datasets.load_dataset, []

    def hub(name, config=None, **kwargs):  # the hub as datasets 5 sees it: a script at main, parquet on the branch
        calls.append((name, config, kwargs.get("revision"), kwargs.get("data_dir")))
        if kwargs.get("revision") != "refs/convert/parquet":
            raise RuntimeError("Dataset scripts are no longer supported, but found conll2003.py")
        return real_load(str(dataset), data_dir=kwargs.get("data_dir"))

    monkeypatch.setattr(datasets, "load_dataset", hub)
    results = run(tiny_model, tmp_path / "out", task_name="conll2003", **NER_ARGS)
    assert "eval_f1" in results
    assert calls == [("eriktks/conll2003", None, None, None), ("eriktks/conll2003", None, "refs/convert/parquet", None)]
    # A named configuration is read from its folder of the conversion.
    calls.clear()
    run(tiny_model, tmp_path / "config", task_name="conll2003", dataset_config_name="conll2003", **NER_ARGS)
    assert calls[-1] == ("eriktks/conll2003", None, "refs/convert/parquet", "conll2003")
