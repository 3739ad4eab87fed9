"""One prefix shared by several tasks, each with its own head (``add_head``; P-tuning v2's multi-task pre-training):
who gets gradients from which examples, saving and reloading, and the one-task folder each task saves as."""

from __future__ import annotations

import pytest
import torch
from conftest import make_model, randomised, task_inputs
from transformers import GPT2Config

import prefix_models as pm

CLASSES = [pm.BertPrefixForSequenceClassification, pm.BertPromptForSequenceClassification]


def shared_model(model_class):
    model = make_model(model_class, num_labels=2)
    model.add_head("nli", num_labels=3)
    model.add_head("topic", num_labels=5)
    return randomised(model)


def grads_after(model, names: list[str]) -> dict[str, bool]:
    """Which trainable tensors get a non-zero gradient from one batch whose rows run the tasks ``names``."""
    model.train()
    model.zero_grad()
    batch = task_inputs(type(model), batch_size=len(names))
    batch["labels"] = torch.zeros(len(names), dtype=torch.long)
    model(**batch, prefix_names=names).loss.backward()
    return {
        name: p.grad is not None and bool(p.grad.abs().sum() > 0)
        for name, p in model.named_parameters()
        if p.requires_grad
    }


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_the_shared_prefix_learns_from_every_task_and_each_head_from_its_own(model_class):
    model = shared_model(model_class)
    encoder = model.tuning.encoder_attribute
    # One encoder in all: the tasks added with add_head hold none of their own.
    assert all(model.task_modules(name)[encoder] is getattr(model, encoder) for name in model.prefix_names)
    assert not any(encoder in name for name, _ in model.prefix_bank.named_parameters())
    for task in model.prefix_names:
        grads = grads_after(model, [task, task, task])
        own_head = "classifier." if task == "default" else f"prefix_bank.{task}.classifier."
        assert all(grads[name] for name in grads if name.startswith(encoder)), task
        assert all(grads[name] for name in grads if name.startswith(own_head)), task
        others = [name for name in grads if "classifier" in name and not name.startswith(own_head)]
        assert others and not any(grads[name] for name in others), task


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_each_task_sees_the_shared_prefix_and_saves_as_a_one_task_prefix(model_class, tmp_path):
    model = shared_model(model_class).eval()
    batch = task_inputs(type(model), batch_size=3)
    batch.pop("labels")
    names = ["topic", "default", "nli"]
    with torch.no_grad():
        mixed = model(**batch, prefix_names=names).logits
    # save_pretrained -> from_pretrained keeps the sharing: the same logits, one encoder.
    model.save_pretrained(tmp_path / "all")
    again = model_class.from_pretrained(tmp_path / "all").eval()
    assert again.prefix_names == model.prefix_names and again.prefix_config("nli").shared_prefix
    with torch.no_grad():
        torch.testing.assert_close(again(**batch, prefix_names=names).logits, mixed)
    encoder = model.tuning.encoder_attribute
    assert again.task_modules("topic")[encoder] is getattr(again, encoder)
    # Each task alone: the shared prefix with its head, read by from_pretrained and load_prefix as any prefix.
    model.base_model.save_pretrained(tmp_path / "base")  # the backbone alone, as a hub base model is
    model.config.base_model_name_or_path = str(tmp_path / "base")
    model.save_prefix("topic", tmp_path / "topic")
    alone = model_class.from_pretrained(tmp_path / "topic").eval()
    assert not alone.config.shared_prefix and alone.config.num_labels == 5
    with torch.no_grad():
        torch.testing.assert_close(alone(**batch).logits, model(**batch, prefix_names=["topic"] * 3).logits)
    again.load_prefix(tmp_path / "topic", "topic_copy")
    assert again.task_modules("topic_copy")[encoder] is not getattr(again, encoder)  # its own copy now


def test_add_head_refuses_what_would_change_the_shared_prefix():
    model = make_model(pm.BertPrefixForSequenceClassification, num_labels=2)
    with pytest.raises(ValueError, match=r"add_head got \['pre_seq_len'\].*use add_prefix"):
        model.add_head("x", pre_seq_len=8)
    with pytest.raises(ValueError, match=r"not fields of"):
        model.add_head("x", num_lables=3)
    with pytest.raises(ValueError, match=r"already loaded"):
        model.add_head("default", num_labels=3)
    causal = pm.GPT2PrefixLMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100, pre_seq_len=4))
    with pytest.raises(ValueError, match=r"has no task head: use add_prefix"):
        causal.add_head("x")
    config = model.config.__class__.from_dict({**model.config.to_dict(), "shared_prefix": True})
    with pytest.raises(ValueError, match=r"shared_prefix marks a named task"):
        pm.BertPrefixForSequenceClassification(config)
    assert model.prefix_names == ["default"]
