"""No warning comes out of our own calls: a tiny Trainer run (with and without activation checkpointing) and
generation warn about nothing that code in ``prefix_models`` or ``task_heads`` asked for, such as a
deprecated transformers name."""

from __future__ import annotations

import traceback
import warnings
from pathlib import Path

import pytest
import torch
from conftest import QUIET_TRAINING, make_model, task_inputs
from datasets import Dataset
from test_causal_lm import stock_config
from transformers import Trainer, TrainingArguments

import prefix_models as pm

ROOT = Path(__file__).resolve().parents[1]
OURS = (str(ROOT / "prefix_models"), str(ROOT / "task_heads"))


def caused_by_us(stack: list[traceback.FrameSummary]) -> traceback.FrameSummary | None:
    """The frame of ours nearest the warning, when the code between it and the warning is libraries only."""
    for frame in reversed(stack[:-1]):  # innermost first, without warnings.warn's own wrapper frame
        if "site-packages" in frame.filename or frame.filename.startswith("<"):
            continue
        return frame if frame.filename.startswith(OURS) else None
    return None


@pytest.fixture
def our_warnings(monkeypatch):
    """The warnings our code caused while the test ran, each with the line of ours that caused it."""
    found: list[str] = []
    original = warnings.warn

    def warn(message, category=None, stacklevel=1, source=None, **kwargs):
        frame = caused_by_us(traceback.extract_stack())
        if frame is not None:
            found.append(f"{frame.filename}:{frame.lineno}: {getattr(category, '__name__', category)}: {message}")
        return original(message, category, stacklevel + 1, source, **kwargs)

    monkeypatch.setattr(warnings, "warn", warn)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        yield found


@pytest.mark.parametrize("checkpointing", [False, True])
def test_a_tiny_training_run_warns_about_nothing_we_called(tmp_path, our_warnings, checkpointing):
    model = make_model(pm.BertPrefixForSequenceClassification)
    batch = task_inputs(pm.BertPrefixForSequenceClassification, batch_size=4)
    rows = [{key: value[i] for key, value in batch.items()} for i in range(4)]
    kwargs = {"use_reentrant": False} if checkpointing else None
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=2,
        **QUIET_TRAINING,
        learning_rate=1e-2,
        activation_checkpointing=checkpointing,
        activation_checkpointing_kwargs=kwargs,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows).with_format("torch"))
    trainer.train()
    trainer.evaluate(Dataset.from_list(rows).with_format("torch"))
    assert our_warnings == []


def test_generation_warns_about_nothing_we_called(our_warnings):
    torch.manual_seed(0)
    model = pm.AutoPrefixModelForCausalLM.from_config(stock_config("llama", pre_seq_len=3)).eval()
    input_ids = torch.randint(3, 60, (2, 5))
    model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=3, do_sample=False)
    model.train()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model(input_ids, labels=input_ids).loss.backward()
    assert our_warnings == []
