"""Command lines for the tests that run the training scripts: flags written as keywords, the flags every test run
shares, the ``examples/`` scripts loaded as modules, and a two-process launch."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# On the CPU, no reporting, no progress bars, no checkpoints, seed 0: a test run's results depend on its own flags.
QUIET = {"use_cpu": True, "report_to": "none", "disable_tqdm": "true", "save_strategy": "no", "seed": 0}


def flags(**options: object) -> list[str]:
    """``--name value`` for each keyword, in order: ``True`` is a bare switch, a list or tuple gives several
    values, ``None`` leaves the flag out."""
    words = []
    for name, value in options.items():
        if value is None:
            continue
        words.append(f"--{name}")
        if isinstance(value, list | tuple):
            words.extend(str(item) for item in value)
        elif value is not True:
            words.append(str(value))
    return words


def script_args(model: str | Path, output_dir: str | Path, *args: str, **options: object) -> list[str]:
    """A test run's argv: the model, the output folder, ``QUIET`` updated with ``options``, then ``args`` as given
    (a later word wins over an earlier one, so ``args`` can override the rest)."""
    return [*flags(model_name_or_path=model, output_dir=output_dir, **{**QUIET, **options}), *args]


# The method most test runs train: a prefix of four virtual tokens.
PREFIX = {"prefix": True, "pre_seq_len": 4}
# Train, evaluate on the dev split, predict the test split.
EVERY_PHASE = {"do_train": True, "do_eval": True, "do_predict": True}


def learning_options(epochs: int | str, learning_rate: float | str | None = None) -> dict[str, object]:
    """Every phase, ``epochs`` at ``learning_rate`` (``None``: the one the method picks), evaluated after each
    epoch."""
    return {**EVERY_PHASE, "learning_rate": learning_rate, "num_train_epochs": epochs, "eval_strategy": "epoch"}


# The flags of the methods and the data sources that run_glue.py and run_ner.py both document in their --help.
SHARED_FLAGS = (
    "--prefix",
    "--prompt",
    "--pre_seq_len",
    "--prefix_projection",
    "--prefix_hidden_size",
    "--hidden_dropout_prob",
    "--head_only",
    "--task_name",
    "--data_dir",
    "--train_file",
    "--max_seq_length",
)


def help_text(script: str) -> str:
    """What ``<script> --help`` prints, the script run from the repository root."""
    command = [sys.executable, str(ROOT / script), "--help"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


# Two one-example steps, each checkpointed: a finished run, and a checkpoint at every step to resume from.
TWO_SAVED_STEPS = {
    "do_train": True,
    "max_steps": 2,
    "per_device_train_batch_size": 1,
    "save_strategy": "steps",
    "save_steps": 1,
}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder``, by its path relative to it."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def assert_a_finished_run_is_left_alone(
    main: Callable[[list[str]], object], args: list[str], output_dir: Path, message: str = ""
) -> None:
    """Runs ``args`` (a run of ``TWO_SAVED_STEPS``) to its end; the same command again is refused, naming the
    finished run and then ``message``, and changes no file in ``output_dir``."""
    main(args)
    before = snapshot(output_dir)
    with pytest.raises(ValueError, match=r"holds a finished run \(trained 2 of 2 steps" + message):
        main(args)
    assert snapshot(output_dir) == before


# A prefix reparameterised through an MLP of width 8, folded into its table before the final save; a checkpoint
# written at the end of the epoch keeps the MLP.
MERGED_MLP = {"prefix": True, "prefix_projection": True, "prefix_hidden_size": 8, "merge_prefix_projection": True}
MERGED_MLP_RUN = {**MERGED_MLP, "do_train": True, "num_train_epochs": 1, "save_strategy": "epoch"}


def two_sentences(bos: int, eos: int, pad: int) -> dict[str, torch.Tensor]:
    """A batch of two short sentences in a tiny vocabulary's ids, the second one padded: model inputs for
    comparing two models' logits."""
    return {
        "input_ids": torch.tensor([[bos, 7, 9, 11, eos], [bos, 5, 6, eos, pad]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]),
    }


def assert_the_mlp_was_folded(output_dir: Path, auto_class: type, **inputs: torch.Tensor) -> None:
    """After a ``MERGED_MLP_RUN``: the final save holds the table alone (no MLP weights, ``prefix_projection``
    false), the checkpoint written while training keeps the MLP (training resumes from it), and ``auto_class``
    loads both to the same logits on ``inputs``, the folded one with fewer trainable parameters."""
    from safetensors.torch import load_file

    saved = load_file(output_dir / "model.safetensors")
    config = json.loads((output_dir / "config.json").read_text())
    assert not any("trans" in key for key in saved) and config["prefix_projection"] is False
    (checkpoint,) = output_dir.glob("checkpoint-*")
    assert any("trans" in key for key in load_file(checkpoint / "model.safetensors"))
    merged = auto_class.from_pretrained(output_dir).eval()
    with_mlp = auto_class.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**inputs).logits, with_mlp(**inputs).logits)
    assert merged.num_trainable_parameters() < with_mlp.num_trainable_parameters()


def record_training_arguments(monkeypatch: pytest.MonkeyPatch) -> list:
    """The ``TrainingArguments`` each ``Trainer`` a script builds is given, appended as it is built (the scripts
    import the Trainer from transformers when they run, so that their --help does not load it)."""
    from transformers import Trainer

    seen = []
    original = Trainer.__init__

    def record(self, *args, **kwargs):
        seen.append(kwargs["args"])
        original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "__init__", record)
    return seen


def load_example(name: str, folder: str = "examples") -> ModuleType:
    """``<folder>/<name>.py`` (an example script, or a benchmark) as the module ``name``."""
    if folder == "benchmarks" and str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))  # where `python benchmarks/x.py` finds benchmarks/_common.py
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as the module ``name``."""
    return load_example(name, "benchmarks")


def torchrun(processes: int, port: int) -> list[str]:
    """The command that starts ``processes`` copies of the script that follows it, talking over ``port``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        "--master_port",
        str(port),
    ]


def run_launched(command: list[str]) -> None:
    """Runs a launcher's command from the repository root, one thread a process, offline; it must succeed."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]


def model_card(output_dir: Path) -> tuple[dict, str]:
    """The Hub metadata and the text of the model card a training run wrote (``scripts/cards.py``)."""
    import yaml

    _, front, text = (Path(output_dir) / "README.md").read_text().split("---\n", 2)
    return yaml.safe_load(front), text
