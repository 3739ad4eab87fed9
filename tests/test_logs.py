"""What a run prints by default: what a user reads (settings, trainable parameters, progress,
results, where things were saved), no flood of transformers' INFO, and a load report only for real problems."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import transformers
from conftest import FIXTURES, save_checkpoint, tiny_config
from safetensors.torch import load_file, save_file
from script_runs import script_args
from tiny_families import DECODER_CONFIGS
from transformers import BertModel

import prefix_models as pm
from prefix_models.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
# Two epochs of RTE's fixture split: 2 optimizer steps, a checkpoint each epoch, an evaluation.
RUN = {"prefix": True, "pre_seq_len": 4, "task_name": "rte", "data_dir": FIXTURES / "glue_data", "do_train": True}
RUN |= {"do_eval": True, "num_train_epochs": 2, "save_strategy": "epoch"}
MAX_LINES = 80  # about 35 today: the settings, 3 x 3 progress bars, the train and eval metrics, the saves


def run_glue(*args: str) -> str:
    """run_glue.py as a command; its stdout and stderr, interleaved as a terminal shows them."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("TRANSFORMERS_VERBOSITY", None)
    result = subprocess.run(
        [sys.executable, "run_glue.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output[-3000:]
    return output


def test_a_run_prints_what_a_user_reads(tiny_model, tmp_path):
    # As a user runs it: no --use_cpu (on a machine without an accelerator the run picks the CPU itself).
    output = run_glue(*script_args(tiny_model, tmp_path / "out", **RUN, use_cpu=False))
    lines = output.splitlines()
    assert len(lines) < MAX_LINES, output
    assert "LOAD REPORT" not in output and "MISSING" not in output, output  # the prefix and head are new by design
    assert "method: prefix" in output  # the settings
    assert "picked --learning_rate 3e-2" in output  # what the method chose
    assert "578 trainable parameters" in output
    assert "eval_accuracy" in output and "train_loss" in output  # the results
    assert f"Model saved to {tmp_path / 'out'}" in output  # and where they went
    assert "Model config" not in output and "loading configuration file" not in output  # transformers' INFO
    assert "pin_memory" not in output  # torch's warning for each DataLoader on the CPU, where pinning does nothing


def test_log_level_info_brings_transformers_info_back(tiny_model, tmp_path):
    output = run_glue(*script_args(tiny_model, tmp_path / "out", "--log_level", "info", **{**RUN, "max_steps": 1}))
    assert "***** Running training *****" in output and "loading configuration file" in output
    assert "LOAD REPORT" not in output  # at INFO too, nothing to report


@contextmanager
def transformers_warnings() -> Iterator[list[logging.LogRecord]]:
    """transformers' log records at WARNING and above (its load report among them) while the block runs."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    library = logging.getLogger("transformers")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    library.addHandler(handler)
    try:
        yield records
    finally:
        library.removeHandler(handler)
        transformers.logging.set_verbosity(verbosity)


def load_report(records: list[logging.LogRecord]) -> str:
    return "\n".join(record.getMessage() for record in records if "LOAD REPORT" in record.getMessage())


def edited_base(folder: Path, tmp_path: Path, drop: str | None = None, add: str | None = None) -> Path:
    """A copy of the base checkpoint in ``folder`` with the tensor ``drop`` taken out or a tensor ``add`` put in."""
    copy = tmp_path / "base"
    copy.mkdir()
    for item in folder.iterdir():
        if item.is_file():
            (copy / item.name).write_bytes(item.read_bytes())
    state = load_file(copy / "model.safetensors")
    if drop is not None:
        del state[drop]
    if add is not None:
        state[add] = torch.zeros(2)
    save_file(state, copy / "model.safetensors", metadata={"format": "pt"})
    return copy


ENCODER_CLASSES = [
    pm.BertPrefixForSequenceClassification,
    pm.BertPromptForSequenceClassification,
    pm.BertPrefixForTokenClassification,
    pm.BertPrefixForMultipleChoice,
    pm.BertPrefixForQuestionAnswering,
]


@pytest.mark.parametrize("model_class", ENCODER_CLASSES, ids=lambda c: c.__name__)
def test_no_load_report_for_what_is_new_by_design(model_class, tiny_model):
    with transformers_warnings() as records:
        model = model_class.from_pretrained(tiny_model, pre_seq_len=2)
    assert load_report(records) == ""
    assert model._new_by_design()  # the encoder and the head, at least


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_no_load_report_for_a_decoder_prefix(method, tmp_path):
    base = save_checkpoint(tmp_path / "llama", lambda _: transformers.LlamaForCausalLM(DECODER_CONFIGS["Llama"]()))
    with transformers_warnings() as records:
        pm.AutoPrefixModelForCausalLM.from_pretrained(base, method=method, pre_seq_len=2)
    assert load_report(records) == ""


def test_a_missing_backbone_tensor_is_still_reported(tiny_model, tmp_path):
    dropped = "encoder.layer.1.output.dense.weight"
    base = edited_base(tiny_model, tmp_path, drop=dropped)
    with transformers_warnings() as records, pytest.raises(InputError, match=dropped):
        pm.BertPrefixForSequenceClassification.from_pretrained(base, pre_seq_len=2)
    report = load_report(records)
    assert f"bert.{dropped}" in report and "MISSING" in report, report
    assert "prefix_encoder" not in report and "classifier" not in report, report


def test_an_unexpected_tensor_is_still_reported(tiny_model, tmp_path):
    base = edited_base(tiny_model, tmp_path, add="encoder.layer.0.stray.weight")
    with transformers_warnings() as records:
        pm.BertPrefixForSequenceClassification.from_pretrained(base, pre_seq_len=2)
    report = load_report(records)
    assert "encoder.layer.0.stray.weight" in report and "UNEXPECTED" in report, report
    assert "prefix_encoder" not in report and "classifier" not in report, report


def test_a_stock_model_still_reports_its_new_head(tmp_path):
    """The declaration is ours alone: transformers' own classes keep their report."""
    base = save_checkpoint(tmp_path / "bert", lambda _: BertModel(tiny_config("Bert")))
    with transformers_warnings() as records:
        transformers.BertForSequenceClassification.from_pretrained(base)
    assert "classifier.weight" in load_report(records)
