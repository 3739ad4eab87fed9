"""The scripts around named prefixes, on a tiny BERT and the GLUE fixture files: ``examples/run_multitask.py``
trains several tasks in mixed batches and scores each, ``run_glue.py --ensemble_prefixes`` evaluates saved
prefixes as an ensemble; and ``add_prefix``, the fresh task those scripts build on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, task_inputs
from script_runs import load_example, model_card, run_launched, script_args, torchrun

import prefix_models as pm
import run_glue

ROOT = Path(__file__).resolve().parents[1]
GLUE = FIXTURES / "glue_data"
RTE = {"task_name": "rte", "data_dir": GLUE}
BATCHES = {"per_device_train_batch_size": 4, "per_device_eval_batch_size": 8}
# Three GLUE tasks of three kinds (pairs, regression, single sentences), each on a prefix of its own.
THREE_TASKS = {
    "task_names": "rte,stsb,sst2",
    "data_dir": GLUE,
    "prefix": True,
    "pre_seq_len": 4,
    "learning_rate": 1e-2,
    "do_train": True,
}


def test_add_prefix_makes_a_fresh_task_with_its_own_labels(tiny_model):
    model = pm.BertPrefixForSequenceClassification.from_pretrained(tiny_model, pre_seq_len=4, num_labels=2).eval()
    model.add_prefix("sts", pre_seq_len=6, num_labels=1, problem_type="regression")
    config = model.prefix_config("sts")
    assert (config.pre_seq_len, config.num_labels, config.problem_type) == (6, 1, "regression")
    assert model.prefix_config("default").num_labels == 2  # the model's own task is untouched
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert any(name.startswith("prefix_bank.sts.prefix_encoder") for name in trainable)
    batch = task_inputs(type(model), batch_size=3)
    batch["labels"] = torch.tensor([1.0, 0.5, 0.0])  # one labels tensor for both tasks: floats
    output = model(**batch, prefix_names=["default", "sts", "sts"])
    assert output.logits.shape == (3, 2) and torch.isinf(output.logits[1:, 1]).all()
    assert torch.isfinite(output.loss)
    with pytest.raises(ValueError, match=r"not fields of BertPrefixConfig"):
        model.add_prefix("x", pre_seq_lenn=3)
    with pytest.raises(ValueError, match=r"pre_seq_len must be a positive integer"):
        model.add_prefix("x", pre_seq_len=0)
    assert model.prefix_names == ["default", "sts"]


def test_run_multitask_trains_tasks_together_and_scores_each(tiny_model, tmp_path):
    script = load_example("run_multitask")
    results = script.main(script_args(tiny_model, tmp_path, **BATCHES, **THREE_TASKS, num_train_epochs=1, do_eval=True))
    for key in ("eval_rte_accuracy", "eval_stsb_pearson", "eval_sst2_accuracy"):
        assert key in results
    # The whole model reloads with every task; each task alone reloads as a one-task model.
    saved = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert saved.prefix_names == ["default", "sst2", "stsb"]  # the model's own, then by name
    alone = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "prefixes" / "stsb").eval()
    assert alone.config.problem_type == "regression"
    batch = task_inputs(type(saved), batch_size=2)
    batch.pop("labels")
    with torch.no_grad():
        torch.testing.assert_close(saved(**batch, prefix_names=["stsb", "stsb"]).logits[:, :1], alone(**batch).logits)
    assert json.loads((tmp_path / "eval_results.json").read_text())["eval_sst2_samples"] > 0
    assert "| task | one prefix per task: rte, stsb, sst2 |" in model_card(tmp_path)[1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--task_names", "rte", "--prefix"], r"at least two"),
        (["--task_names", "rte,copa", "--prefix"], r"copa need another model"),
        (["--task_names", "rte,rte", "--prefix"], r"names a task twice"),
        (["--task_names", "rte,mrpc"], r"pass --prefix or --prompt"),
    ],
)
def test_run_multitask_refuses_bad_flags(flags, message, tiny_model, tmp_path):
    script = load_example("run_multitask")
    with pytest.raises(ValueError, match=message):
        script.main(script_args(tiny_model, tmp_path / "out", *flags, **BATCHES, data_dir=GLUE, do_train=True))
    assert not (tmp_path / "out").exists()


def test_run_glue_evaluates_an_ensemble_of_saved_prefixes(tiny_model, tmp_path):
    members = []
    for seed in range(3):
        folder = tmp_path / f"member{seed}"
        run_glue.main(
            script_args(
                tiny_model,
                folder,
                **BATCHES,
                **RTE,
                prefix=True,
                pre_seq_len=3 + seed,
                learning_rate=1e-2,
                max_steps=2,
                seed=seed,
                do_train=True,
            )
        )
        members.append(folder)
    results = run_glue.main(
        script_args(
            members[0],
            tmp_path / "eval",
            **BATCHES,
            **RTE,
            do_eval=True,
            do_predict=True,
            ensemble_prefixes=members[1:],
        )
    )
    for name in ("default", "member1", "member2"):
        assert f"eval_{name}_accuracy" in results
    assert "eval_accuracy" in results and (tmp_path / "eval" / "RTE.tsv").exists()
    with pytest.raises(ValueError, match=r"does not train"):
        run_glue.main(
            script_args(members[0], tmp_path / "x", **BATCHES, **RTE, do_train=True, ensemble_prefixes=members[1:2])
        )


def test_run_multitask_trains_under_ddp_with_gradient_checkpointing(tiny_model, tmp_path):
    """Two processes, tasks routed per example and gradient checkpointing: a batch that lacks a task leaves its
    prefix and head unused, which DDP is told (it used to stop with "parameters that were not used")."""
    import os

    options = {**BATCHES, **THREE_TASKS, "max_steps": 3, "activation_checkpointing": True, "ddp_backend": "gloo"}
    script = [str(ROOT / "examples" / "run_multitask.py"), *script_args(tiny_model, tmp_path, **options)]
    run_launched([*torchrun(2, 29700 + os.getpid() % 200), *script])
    saved = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path)
    assert saved.prefix_names == ["default", "sst2", "stsb"]
