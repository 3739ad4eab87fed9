"""The scripts around named prefixes, on a tiny BERT and the GLUE fixture files: ``examples/run_multitask.py``
trains several tasks in mixed batches and scores each, ``run_glue.py --ensemble_prefixes`` evaluates saved
prefixes as an ensemble; and ``add_prefix``, the fresh task those scripts build on."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, task_inputs

import prefix_models as pm
import run_glue

ROOT = Path(__file__).resolve().parents[1]
GLUE = FIXTURES / "glue_data"
COMMON = [
    "--use_cpu",
    "--report_to",
    "none",
    "--per_device_train_batch_size",
    "4",
    "--per_device_eval_batch_size",
    "8",
    "--seed",
    "0",
    "--save_strategy",
    "no",
    "--disable_tqdm",
    "true",
]


def run_multitask_module():
    spec = importlib.util.spec_from_file_location("run_multitask", ROOT / "examples" / "run_multitask.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_multitask"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
    script = run_multitask_module()
    results = script.main(
        [
            "--model_name_or_path",
            str(tiny_model),
            "--output_dir",
            str(tmp_path),
            *COMMON,
            "--task_names",
            "rte,stsb,sst2",
            "--data_dir",
            str(GLUE),
            "--prefix",
            "--pre_seq_len",
            "4",
            "--learning_rate",
            "1e-2",
            "--num_train_epochs",
            "1",
            "--do_train",
            "--do_eval",
        ]
    )
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
    script = run_multitask_module()
    with pytest.raises(ValueError, match=message):
        script.main(
            [
                "--model_name_or_path",
                str(tiny_model),
                "--output_dir",
                str(tmp_path / "out"),
                *COMMON,
                "--data_dir",
                str(GLUE),
                "--do_train",
                *flags,
            ]
        )
    assert not (tmp_path / "out").exists()


def test_run_glue_evaluates_an_ensemble_of_saved_prefixes(tiny_model, tmp_path):
    members = []
    for seed in range(3):
        folder = tmp_path / f"member{seed}"
        run_glue.main(
            [
                "--model_name_or_path",
                str(tiny_model),
                "--output_dir",
                str(folder),
                *COMMON,
                "--task_name",
                "rte",
                "--data_dir",
                str(GLUE),
                "--prefix",
                "--pre_seq_len",
                str(3 + seed),
                "--learning_rate",
                "1e-2",
                "--max_steps",
                "2",
                "--seed",
                str(seed),
                "--do_train",
            ]
        )
        members.append(folder)
    results = run_glue.main(
        [
            "--model_name_or_path",
            str(members[0]),
            "--output_dir",
            str(tmp_path / "eval"),
            *COMMON,
            "--task_name",
            "rte",
            "--data_dir",
            str(GLUE),
            "--do_eval",
            "--do_predict",
            "--ensemble_prefixes",
            str(members[1]),
            str(members[2]),
        ]
    )
    for name in ("default", "member1", "member2"):
        assert f"eval_{name}_accuracy" in results
    assert "eval_accuracy" in results and (tmp_path / "eval" / "RTE.tsv").exists()
    with pytest.raises(ValueError, match=r"does not train"):
        run_glue.main(
            [
                "--model_name_or_path",
                str(members[0]),
                "--output_dir",
                str(tmp_path / "x"),
                *COMMON,
                "--task_name",
                "rte",
                "--data_dir",
                str(GLUE),
                "--do_train",
                "--ensemble_prefixes",
                str(members[1]),
            ]
        )


def test_run_multitask_trains_under_ddp_with_gradient_checkpointing(tiny_model, tmp_path):
    """Two processes, tasks routed per example and gradient checkpointing: a batch that lacks a task leaves its
    prefix and head unused, which DDP is told (it used to stop with "parameters that were not used")."""
    import os
    import subprocess

    port = str(29700 + os.getpid() % 200)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        port,
        str(ROOT / "examples" / "run_multitask.py"),
        "--model_name_or_path",
        str(tiny_model),
        "--output_dir",
        str(tmp_path),
        *COMMON,
        "--task_names",
        "rte,stsb,sst2",
        "--data_dir",
        str(GLUE),
        "--prefix",
        "--pre_seq_len",
        "4",
        "--learning_rate",
        "1e-2",
        "--max_steps",
        "3",
        "--do_train",
        "--activation_checkpointing",
        "--ddp_backend",
        "gloo",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path)
    assert saved.prefix_names == ["default", "sst2", "stsb"]
