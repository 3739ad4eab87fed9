"""Long-run reliability: a SIGKILLed run resumes to the same prefix, half-written checkpoints are
skipped, same seed gives the same result bit for bit, gradient checkpointing gives the same gradients."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ALL_CLASSES, FIXTURES, make_model, task_inputs
from safetensors.torch import load_file
from script_runs import TWO_SAVED_STEPS, assert_a_finished_run_is_left_alone, script_args

import run_glue
import run_ner

ROOT = Path(__file__).resolve().parents[1]


# Ten steps of a prefix on SST-2, checkpointed every third step.
SST2_RUN = {
    "task_name": "sst2",
    "data_dir": FIXTURES / "glue_data",
    "prefix": True,
    "pre_seq_len": 4,
    "do_train": True,
    "do_eval": True,
    "max_steps": 10,
    "per_device_train_batch_size": 2,
    "learning_rate": 1e-2,
    "save_strategy": "steps",
    "save_steps": 3,
}


def glue_args(model: Path, output_dir: Path, **options: object) -> list[str]:
    return script_args(model, output_dir, **{**SST2_RUN, **options})


KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    import run_glue
    import transformers
    from transformers import TrainerCallback

    class KillAt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == {step}:  # mid-run, after checkpoint-6 was written
                os.kill(os.getpid(), signal.SIGKILL)

    class KilledTrainer(transformers.Trainer):
        def __init__(self, *args, callbacks=None, **kwargs):
            super().__init__(*args, callbacks=[*(callbacks or []), KillAt()], **kwargs)

    transformers.Trainer = KilledTrainer  # the one run_glue.main imports
    run_glue.main(sys.argv[1:])
""")


def prefix_tensors(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "model.safetensors")


def test_a_killed_run_resumes_to_the_same_prefix_and_same_seed_is_bit_exact(tiny_model, tmp_path):
    reference = run_glue.main(glue_args(tiny_model, tmp_path / "reference"))
    again = run_glue.main(glue_args(tiny_model, tmp_path / "again"))
    # Determinism: same seed, same metrics and the same saved prefix, bit for bit.
    assert again["eval_accuracy"] == reference["eval_accuracy"] and again["train_loss"] == reference["train_loss"]
    expected = prefix_tensors(tmp_path / "reference")
    assert all(torch.equal(expected[key], value) for key, value in prefix_tensors(tmp_path / "again").items())

    killed = tmp_path / "killed"
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(root=str(ROOT), step=7))
    process = subprocess.run(
        [sys.executable, str(script), *glue_args(tiny_model, killed)], capture_output=True, text=True, timeout=300
    )
    assert process.returncode == -9, process.stderr[-2000:]
    assert (killed / "checkpoint-6").is_dir() and not (killed / "model.safetensors").exists()
    # A checkpoint cut short by a crash (weights written, no trainer state) must not be resumed from.
    shutil.copytree(killed / "checkpoint-6", killed / "checkpoint-9")
    (killed / "checkpoint-9" / "trainer_state.json").unlink()

    resumed = run_glue.main(glue_args(tiny_model, killed))  # no --overwrite_output_dir: resume
    state = json.loads((killed / "trainer_state.json").read_text())
    assert state["global_step"] == 10 and resumed["eval_accuracy"] == reference["eval_accuracy"]
    result = prefix_tensors(killed)
    assert result.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(result[key], expected[key], rtol=0, atol=1e-6)


def test_a_trained_output_dir_is_not_overwritten(tiny_model, tmp_path):
    run_glue.main(glue_args(tiny_model, tmp_path, save_strategy="no", max_steps=2))
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="holds a finished run .*; nothing was changed.*--overwrite_output_dir"):
        run_glue.main(glue_args(tiny_model, tmp_path, save_strategy="no", max_steps=2))
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_rerunning_a_finished_command_changes_nothing_and_a_longer_one_resumes(tiny_model, tmp_path):
    # One step a batch, so max_steps ends mid-epoch: transformers would resume it with a third step.
    args = glue_args(tiny_model, tmp_path, **TWO_SAVED_STEPS)
    assert_a_finished_run_is_left_alone(run_glue.main, args, tmp_path, "; the model is in ")
    # Stopped between its last checkpoint and the final save: still finished, the checkpoint named.
    for name in ("trainer_state.json", "model.safetensors"):
        (tmp_path / name).unlink()
    with pytest.raises(ValueError, match=r"the model is in .*checkpoint-2 \(its last checkpoint\)"):
        run_glue.main(args)
    # Asked to train longer, it resumes from the newest checkpoint, as transformers' scripts do.
    run_glue.main([*args, "--max_steps", "3"])
    assert json.loads((tmp_path / "trainer_state.json").read_text())["global_step"] == 3


def test_run_ner_refuses_to_retrain_a_finished_run(tiny_model, tmp_path):
    args = script_args(
        tiny_model, tmp_path, data_dir=FIXTURES / "ner_data", prefix=True, pre_seq_len=4, **TWO_SAVED_STEPS
    )
    assert_a_finished_run_is_left_alone(run_ner.main, args, tmp_path)


@pytest.mark.parametrize(
    "model_class", [c for c in ALL_CLASSES if c.__name__.endswith("SequenceClassification")], ids=lambda c: c.__name__
)
def test_gradient_checkpointing_gives_the_same_gradients_for_encoders(model_class):
    grads = []
    for checkpointing in (False, True):
        model = make_model(model_class, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model(**task_inputs(model_class)).loss.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=0, atol=1e-6)
    encoder = "prefix_encoder" if "Prefix" in model_class.__name__ else "prompt_encoder"
    assert grads[0][f"{encoder}.embedding.weight"].abs().sum() > 0
