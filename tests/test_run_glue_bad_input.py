"""run_glue.py rejects bad input before any model weights load, naming the flag/file and what is allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

import run_glue

GLUE = FIXTURES / "glue_data"


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch):
    """Every case here must fail before the model is built."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(run_glue, "build_model", refuse)


def run(model: Path, tmp_path: Path, *args: str):
    return run_glue.main(["--model_name_or_path", str(model), "--output_dir", str(tmp_path / "out"), "--use_cpu",
                          "--report_to", "none", *args])  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_unknown_task(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"--task_name 'sst5' is not a known task; known tasks: cola, sst2"):
        run(tiny_model, tmp_path, "--task_name", "sst5", "--do_train")


def test_prefix_and_prompt_are_exclusive(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"--prefix and --prompt are exclusive"):
        run(tiny_model, tmp_path, "--task_name", "rte", "--prefix", "--prompt")
    with pytest.raises(ValueError, match=r"--head_only .* cannot be combined with --prefix"):
        run(tiny_model, tmp_path, "--task_name", "rte", "--prefix", "--head_only")
    with pytest.raises(ValueError, match=r"--pre_seq_len only applies with --prefix or --prompt"):
        run(tiny_model, tmp_path, "--task_name", "rte", "--pre_seq_len", "8")


def test_missing_files(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"--train_file .*nope.csv does not exist"):
        run(tiny_model, tmp_path, "--train_file", str(tmp_path / "nope.csv"), "--do_train")
    with pytest.raises(ValueError, match=r"holds no RTE data: expected train.tsv"):
        run(tiny_model, tmp_path, "--task_name", "rte", "--data_dir", str(tmp_path), "--do_train")


def test_missing_and_ambiguous_columns(tiny_model, tmp_path):
    train = write(tmp_path / "train.csv", "text,label\ngood film,pos\nbad film,neg\n")
    dev = write(tmp_path / "dev.csv", "review,label\ngood film,pos\n")
    with pytest.raises(ValueError, match=r"--validation_file .*dev.csv lacks column\(s\) \['text'\]"):
        run(tiny_model, tmp_path, "--train_file", str(train), "--validation_file", str(dev), "--do_eval")
    no_label = write(tmp_path / "nolabel.csv", "text,stars\ngood film,5\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['label'\]"):
        run(tiny_model, tmp_path, "--train_file", str(no_label), "--text_column_names", "text", "--do_train")
    wide = write(tmp_path / "wide.csv", "title,body,summary,label\na,b,c,pos\nd,e,f,neg\n")
    with pytest.raises(ValueError, match=r"cannot tell which columns .* hold the text.*--text_column_names"):
        run(tiny_model, tmp_path, "--train_file", str(wide), "--do_train")


def test_labels_outside_the_label_list(tiny_model, tmp_path):
    train = write(tmp_path / "train.csv", "sentence,label\ngood film,pos\nbad film,neg\n")
    dev = write(tmp_path / "dev.csv", "sentence,label\nfine film,neutral\n")
    with pytest.raises(ValueError, match=r"row 1: label 'neutral' is not in the label list \['neg', 'pos'\]"):
        run(tiny_model, tmp_path, "--train_file", str(train), "--validation_file", str(dev), "--do_eval")
    data = tmp_path / "RTE"
    shutil.copytree(GLUE / "RTE", data)
    rows = (data / "dev.tsv").read_text().splitlines()
    rows[1] = "\t".join(rows[1].split("\t")[:-1] + ["maybe"])
    (data / "dev.tsv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"dev.tsv, line 2: label 'maybe' is not a rte label; allowed: "):
        run(tiny_model, tmp_path, "--task_name", "rte", "--data_dir", str(data), "--do_eval")


def test_ragged_tsv_and_broken_jsonl_lines(tiny_model, tmp_path):
    data = tmp_path / "SST-2"
    shutil.copytree(GLUE / "SST-2", data)
    with open(data / "train.tsv", "a") as handle:
        handle.write("too\tmany\tfields\n")
    with pytest.raises(ValueError, match=r"train.tsv, line \d+: expected 2 tab-separated fields"):
        run(tiny_model, tmp_path, "--task_name", "sst2", "--data_dir", str(data), "--do_train")
    boolq = tmp_path / "BoolQ"
    boolq.mkdir()
    write(boolq / "train.jsonl", '{"question": "q", "passage": "p", "idx": 0, "label": true}\n{"question": \n')
    with pytest.raises(ValueError, match=r"train.jsonl, line 2: not valid JSON"):
        run(tiny_model, tmp_path, "--task_name", "boolq", "--data_dir", str(boolq), "--do_train")
    write(boolq / "train.jsonl", '{"passage": "p", "idx": 0, "label": true}\n')
    with pytest.raises(ValueError, match=r"line 1: BoolQ record lacks field\(s\) \['question'\]"):
        run(tiny_model, tmp_path, "--task_name", "boolq", "--data_dir", str(boolq), "--do_train")


def test_empty_splits(tiny_model, tmp_path):
    empty = write(tmp_path / "empty.csv", "sentence,label\n")
    with pytest.raises(ValueError, match=r"--train_file .*empty.csv is empty"):
        run(tiny_model, tmp_path, "--train_file", str(empty), "--do_train")
    data = tmp_path / "RTE"
    shutil.copytree(GLUE / "RTE", data)
    (data / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n")
    with pytest.raises(ValueError, match=r"the train split of rte .* is empty"):
        run(tiny_model, tmp_path, "--task_name", "rte", "--data_dir", str(data), "--do_train")
    (data / "train.tsv").unlink()
    with pytest.raises(ValueError, match=r"--do_train needs a train split"):
        run(tiny_model, tmp_path, "--task_name", "rte", "--data_dir", str(data), "--do_train")


def test_max_seq_length_above_the_model_limit(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"--max_seq_length 65 is above .* position table holds \(64\)"):
        run(tiny_model, tmp_path, "--task_name", "sst2", "--data_dir", str(GLUE), "--do_train",
            "--max_seq_length", "65")  # fmt: skip


def test_one_data_source_at_a_time(tiny_model, tmp_path):
    train = write(tmp_path / "train.csv", "sentence,label\ngood,pos\n")
    with pytest.raises(ValueError, match=r"pick one data source; got --data_dir and --train_file"):
        run(tiny_model, tmp_path, "--task_name", "sst2", "--data_dir", str(GLUE), "--train_file", str(train))


def test_a_finished_model_is_not_overwritten(tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"trained")
    with pytest.raises(ValueError, match=r"already holds a trained model; pass --overwrite_output_dir"):
        run(tiny_model, tmp_path, "--task_name", "sst2", "--data_dir", str(GLUE), "--do_train")
    assert (out / "model.safetensors").read_bytes() == b"trained"


@pytest.mark.parametrize("fsdp", ["full_shard", "full_shard auto_wrap"])
def test_fsdp_on_cpu_is_refused_not_replaced_by_ddp(fsdp, tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"--fsdp needs GPUs .* fall back to DDP .*torchrun"):
        run(tiny_model, tmp_path, "--task_name", "rte", "--data_dir", str(GLUE), "--do_train", "--fsdp", fsdp)
    assert not (tmp_path / "out").exists()
