"""run_ner.py rejects bad input before any model weights load, naming the flag/file/line and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import FIXTURES

import run_ner

NER = FIXTURES / "ner_data"


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch):
    """Every case here must fail before the model is built."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(run_ner, "build_model", refuse)


def run(model: Path, tmp_path: Path, *args: str):
    return run_ner.main(["--model_name_or_path", str(model), "--output_dir", str(tmp_path / "out"), "--use_cpu",
                         "--report_to", "none", *args])  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_flags(tiny_model, tmp_path):
    train = str(NER / "train.txt")
    with pytest.raises(ValueError, match=r"--prefix and --prompt are exclusive"):
        run(tiny_model, tmp_path, "--train_file", train, "--do_train", "--prefix", "--prompt")
    with pytest.raises(ValueError, match=r"--task_name 'conll2010' is not a known task; choose from \['conll2003'"):
        run(tiny_model, tmp_path, "--task_name", "conll2010", "--do_train")
    with pytest.raises(ValueError, match=r"give data: --data_dir"):
        run(tiny_model, tmp_path, "--do_train")
    with pytest.raises(ValueError, match=r"pick one data source; got --data_dir and --train_file"):
        run(tiny_model, tmp_path, "--data_dir", str(NER), "--train_file", train, "--do_train")
    with pytest.raises(ValueError, match=r"--max_seq_length 500 is above what the model's position table holds \(64\)"):
        run(tiny_model, tmp_path, "--train_file", train, "--do_train", "--max_seq_length", "500")
    with pytest.raises(SystemExit):  # argparse: invalid choice, listing the allowed schemes
        run(tiny_model, tmp_path, "--train_file", train, "--do_train", "--tag_scheme", "BILOU")


def test_missing_files_and_splits(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"--train_file .*nope.txt does not exist"):
        run(tiny_model, tmp_path, "--train_file", str(tmp_path / "nope.txt"), "--do_train")
    with pytest.raises(ValueError, match=r"--do_eval needs --validation_file"):
        run(tiny_model, tmp_path, "--train_file", str(NER / "train.txt"), "--do_train", "--do_eval")
    with pytest.raises(ValueError, match=r"--data_dir .* holds none of the expected files: train: train.txt"):
        run(tiny_model, tmp_path, "--data_dir", str(tmp_path), "--do_train")
    tokens_only = write(tmp_path / "words.txt", "the\nmovie\n")
    with pytest.raises(ValueError, match=r"--do_train: --train_file .*words.txt has no tag column"):
        run(tiny_model, tmp_path, "--train_file", str(tokens_only), "--do_train")


def test_empty_file(tiny_model, tmp_path):
    empty = write(tmp_path / "train.txt", "-DOCSTART- -X- -X- O\n\n\n")
    with pytest.raises(ValueError, match=r"--train_file .*train.txt holds no sentences"):
        run(tiny_model, tmp_path, "--train_file", str(empty), "--do_train")


def test_ragged_line_names_file_and_line(tiny_model, tmp_path):
    ragged = write(tmp_path / "train.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-MISC\n")
    with pytest.raises(ValueError, match=re.escape("train.txt, line 3: expected 4 columns (as on line 1), found 3")):
        run(tiny_model, tmp_path, "--train_file", str(ragged), "--do_train")


def test_tag_outside_the_scheme(tiny_model, tmp_path):
    bad = write(tmp_path / "train.txt", "John B-PER\nSmith E-PER\n\nin O\nParis LOCATION\n")
    with pytest.raises(ValueError, match=r"train.txt, line 5: tag 'LOCATION' is not in the BIOES scheme"):
        run(tiny_model, tmp_path, "--train_file", str(bad), "--do_train")
    with pytest.raises(ValueError, match=r"train.txt, line 2: tag 'E-PER' is not in the IOB2 scheme"):
        run(tiny_model, tmp_path, "--train_file", str(bad), "--do_train", "--tag_scheme", "IOB2")


def test_dev_labels_unseen_in_training(tiny_model, tmp_path):
    dev = write(tmp_path / "dev.txt", "the O\ndirector B-PER\n\nin O\nParis B-GPE\n")
    with pytest.raises(ValueError, match=r"dev.txt, line 5: label 'B-GPE' is not among the labels found in the tr"):
        run(tiny_model, tmp_path, "--train_file", str(NER / "train.txt"), "--validation_file", str(dev),
            "--do_train", "--do_eval")  # fmt: skip


def test_json_lines_with_wrong_types(tiny_model, tmp_path):
    bad = write(tmp_path / "train.jsonl", '{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": [1, 2], "ner_tags": []}\n')
    with pytest.raises(ValueError, match=r"train.jsonl, line 2: 'tokens' must be a list of strings"):
        run(tiny_model, tmp_path, "--train_file", str(bad), "--do_train")


def test_a_trained_model_in_output_dir_is_not_overwritten(tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    weights = write(out / "model.safetensors", "trained weights")
    with pytest.raises(ValueError, match=r"already holds a trained model; pass --overwrite_output_dir"):
        run(tiny_model, tmp_path, "--train_file", str(NER / "train.txt"), "--do_train")
    assert weights.read_text() == "trained weights"


def test_integer_tags_without_label_names(tiny_model, tmp_path):
    ids = write(tmp_path / "train.jsonl", '{"tokens": ["the", "director"], "ner_tags": [0, 1]}\n')
    with pytest.raises(ValueError, match=r"tag '0' is not in the IOB2 scheme.*label ids need --label_names_file"):
        run(tiny_model, tmp_path, "--train_file", str(ids), "--do_train")
    labels = write(tmp_path / "labels.txt", "O\nB-PER\n")
    bad = write(tmp_path / "bad.jsonl", '{"tokens": ["the", "director"], "ner_tags": [0, 7]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 1: label id 7 is out of range for the 2 labels"):
        run(tiny_model, tmp_path, "--train_file", str(bad), "--label_names_file", str(labels), "--do_train")
