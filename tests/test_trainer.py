"""Training through the stock transformers Trainer: learn, checkpoint (prefix-sized), resume, best model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import QUIET_TRAINING
from datasets import Dataset
from safetensors.torch import load_file
from transformers import Trainer, TrainingArguments

import prefix_models as pm


def toy_dataset(n: int, seed: int) -> Dataset:
    """Binary task readable from the first token: class 1 draws its tokens from a higher id range."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    ids = torch.randint(20, 60, (n, 8), generator=generator) + 40 * labels[:, None]
    ids[:, -1] = 3  # [SEP]
    return Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})


def accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}


def arguments(output_dir, **overrides) -> TrainingArguments:
    settings = dict(
        output_dir=str(output_dir),
        num_train_epochs=20,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=32,
        learning_rate=3e-2,
        seed=0,
        logging_strategy="no",
        **QUIET_TRAINING,
    )
    return TrainingArguments(**{**settings, **overrides})


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    "model_class", [pm.BertPrefixForSequenceClassification, pm.RobertaPromptForSequenceClassification]
)
def test_trainer_learns_a_toy_task(model_class, base_checkpoints, tmp_path):
    name = "Bert" if model_class.__name__.startswith("Bert") else "Roberta"
    model = model_class.from_pretrained(base_checkpoints[name], pre_seq_len=4)
    backbone = {k: v.clone() for k, v in model.base_model.state_dict().items()}
    trainer = Trainer(
        model=model,
        args=arguments(tmp_path),
        train_dataset=toy_dataset(128, 0),
        eval_dataset=toy_dataset(128, 1),
        compute_metrics=accuracy,
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < before["eval_loss"] - 0.05
    assert after["eval_accuracy"] >= 0.65  # chance is 0.53 on this split
    assert all(torch.equal(v, backbone[k]) for k, v in model.base_model.state_dict().items())
    predictions = trainer.predict(toy_dataset(16, 2))
    assert predictions.predictions.shape == (16, 2)


def test_checkpoints_are_prefix_sized_and_resume_to_the_same_prefix(base_checkpoints, tmp_path):
    def fresh():
        torch.manual_seed(0)
        return pm.BertPrefixForSequenceClassification.from_pretrained(base_checkpoints["Bert"], pre_seq_len=4)

    data = toy_dataset(64, 0)
    full_run = fresh()
    args = arguments(tmp_path / "full", num_train_epochs=4, save_strategy="epoch")
    Trainer(model=full_run, args=args, train_dataset=data).train()
    expected = trainable_state(full_run)

    checkpoint = tmp_path / "full" / "checkpoint-16"  # after epoch 2 of 4
    weights = checkpoint / "model.safetensors"
    assert weights.stat().st_size <= full_run.num_trainable_parameters() * 4 + 64 * 1024
    assert set(load_file(weights)) == set(expected)

    resumed = fresh()
    args = arguments(tmp_path / "resumed", num_train_epochs=4, save_strategy="epoch")
    trainer = Trainer(model=resumed, args=args, train_dataset=data)
    trainer.train(resume_from_checkpoint=str(checkpoint))
    assert trainer.state.global_step == 32
    for name, value in trainable_state(resumed).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6)
    assert not any(p.requires_grad for p in resumed.bert.parameters())


def test_load_best_model_at_end_restores_the_best_prefix(base_checkpoints, tmp_path):
    model = pm.BertPrefixForSequenceClassification.from_pretrained(base_checkpoints["Bert"], pre_seq_len=4)
    args = arguments(
        tmp_path,
        num_train_epochs=3,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=toy_dataset(64, 0),
        eval_dataset=toy_dataset(64, 1),
        compute_metrics=accuracy,
    )
    trainer.train()
    best = load_file(f"{trainer.state.best_model_checkpoint}/model.safetensors")
    state = model.state_dict()
    assert best and all(torch.equal(state[k], v) for k, v in best.items())
    assert not any(p.requires_grad for p in model.bert.parameters())
