"""Running a script: logging, the training engine, resuming and refusing to train over a finished run
(:func:`start_run` does all three), training and saving, and the one-line ``error:`` exit."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import transformers
from transformers import TrainingArguments

from ..errors import InputError
from .arguments import DataArguments, ModelArguments, was_given
from .models import apply_method_defaults
from .run_settings import prepare_run_folder, record_run

if TYPE_CHECKING:  # the Trainer loads with the model, not for a script's --help
    from transformers import Trainer

logger = logging.getLogger(__name__)


def setup_logging(training_args: TrainingArguments) -> None:
    """Log what a user reads. On the main process, by default: this project's and the script's messages at INFO
    (the settings, what the method picked, trainable parameters, results, where things were saved), transformers'
    and datasets' at WARNING (their INFO is config dumps, file lists and the Trainer's banners); the Trainer's
    progress bars and metrics print either way. ``--log_level info`` (or ``debug``, ...) sets all of them, as the
    transformers example scripts do; other processes log at ``--log_level_replica`` (``warning``)."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()  # --log_level passive (the default): the libraries' own, WARNING
    passive = training_args.should_log and training_args.log_level == "passive"
    for name in (__name__.split(".")[0], "__main__"):
        logging.getLogger(name).setLevel(logging.INFO if passive else level)
    import datasets  # here, not at the top: a script's --help never loads it

    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def log_run_start(training_args: TrainingArguments, model_args: ModelArguments) -> None:
    logger.warning(
        f"Process rank: {training_args.process_index}, device: {training_args.device}, n_gpu: {training_args.n_gpu}, "
        f"distributed: {training_args.parallel_mode.value == 'distributed'}, method: {model_args.description}"
    )


def check_training_engine(training_args: TrainingArguments) -> None:
    """Refuse a sharding engine the hardware cannot run, instead of the Trainer's silent fallback.

    accelerate runs FSDP on accelerators only: on CPU, ``--fsdp`` (or an accelerate FSDP config) left
    the Trainer with ``is_fsdp_enabled`` False, wrapping the model in DDP as if the flag were not there.
    """
    wants_fsdp = bool(training_args.fsdp) or os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")
    if wants_fsdp and training_args.device.type == "cpu":
        raise InputError(
            "--fsdp needs GPUs (or another accelerator): accelerate does not run FSDP on the CPU, where the Trainer "
            "would fall back to DDP without saying so. On CPU, leave out --fsdp and start several processes with "
            "torchrun (DDP; README, 'Scaling, precision and long runs'): only the prefix and head train, so DDP's "
            "full copy per process costs little. benchmarks/gpu_engines.py checks FSDP and DeepSpeed on a GPU machine"
        )


def start_run(
    model_args: ModelArguments,
    training_args: TrainingArguments,
    data_args: DataArguments,
    task: str | None = None,
) -> str | None:
    """What every script does once its flags are read: refuse the flags that mean nothing for ``task``, set
    up logging, log the run, refuse an engine the hardware cannot run, check ``--output_dir`` against the run
    (:func:`~prefix_models.scripts.run_settings.prepare_run_folder`: a run with other settings there is
    refused, an evaluation-only run into a trained run's folder writes beside it) and, for ``task``, let the
    method pick its defaults (:func:`~prefix_models.scripts.models.apply_method_defaults`; a script that
    learns its task from the data does that itself). Returns the checkpoint to resume from
    (:func:`resolve_checkpoint`)."""
    if task is not None:
        model_args.check_task(task)
    setup_logging(training_args)
    log_run_start(training_args, model_args)
    check_training_engine(training_args)
    if training_args.device.type == "cpu" and not was_given(training_args, "dataloader_pin_memory"):
        # Pinned memory only speeds copies to an accelerator; on the CPU torch warns at every DataLoader.
        training_args.dataloader_pin_memory = False
    prepare_run_folder(model_args, data_args, training_args)
    last_checkpoint = resolve_checkpoint(training_args, data_args.overwrite_output_dir)
    if task is not None:
        apply_method_defaults(model_args, training_args, task)
    return last_checkpoint


def evaluate_and_save(trainer: Trainer, num_samples: int, best: Any = None) -> dict[str, float]:
    """Evaluate on the trainer's dev set and log and save the metrics as transformers' scripts do, with the
    number of examples and, from a :class:`~prefix_models.callbacks.BestMetricCallback`, the best epoch's."""
    logger.info("*** Evaluate ***")
    metrics = {**trainer.evaluate(), "eval_samples": num_samples, **(best.best if best is not None else {})}
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return metrics


def training_engine(trainer: Trainer) -> str:
    """What runs the training: ``fsdp``, ``deepspeed``, ``ddp`` (several processes) or ``single process``."""
    if trainer.is_fsdp_enabled:
        return "fsdp"
    if trainer.is_deepspeed_enabled:
        return "deepspeed"
    return "ddp" if trainer.args.world_size > 1 else "single process"


def train_and_save(
    trainer: Trainer, last_checkpoint: str | None, num_samples: int, model_args: ModelArguments
) -> dict[str, float]:
    """Train (resuming from ``last_checkpoint``), save the model, metrics and trainer state as
    transformers' example scripts do. With ``--merge_prefix_projection`` the prefix's MLP is folded into its
    table first, so the final save holds the table (the checkpoints written while training keep the MLP)."""
    logger.info(f"Training engine: {training_engine(trainer)} ({trainer.args.world_size} process(es))")
    record_run(trainer.args)  # the settings start_run checked, into run_settings.json
    train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
    if model_args.merge_prefix_projection:
        before = trainer.model.num_trainable_parameters()
        trainer.model.merge_prefix_projection()
        logger.info(
            f"--merge_prefix_projection: folded the prefix MLP into its table ({before:,} -> "
            f"{trainer.model.num_trainable_parameters():,} trainable parameters); the saved model holds the table"
        )
    trainer.save_model()
    logger.info(f"Model saved to {trainer.args.output_dir}")  # transformers says so only at --log_level info
    metrics = {**train_result.metrics, "train_samples": num_samples}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    return metrics


DEBUG_ENV = "PREFIX_MODELS_DEBUG"


def run_script(main: Callable[[], Any]) -> None:
    """Run an example script's ``main`` as a command.

    Bad input found by our checks (:class:`InputError`) ends as one ``run_glue.py: error: ...`` line
    on stderr and exit status 2, as argparse reports a bad flag; with ``PREFIX_MODELS_DEBUG=1`` it
    keeps its traceback. Any other exception is left alone: its traceback is what a bug report needs.
    """
    try:
        main()
    except InputError as error:
        if os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no"):
            raise
        print(f"{os.path.basename(sys.argv[0])}: error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    shutdown_distributed()


def shutdown_distributed() -> None:
    """Tear the process group down before the interpreter exits: left to exit, a gloo worker thread
    can abort the process (SIGABRT) after all work was saved, and the launcher reports a failure."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that was written to the end.

    Trainer writes a checkpoint's weights, optimizer, scheduler and RNG states first and
    ``trainer_state.json`` last, so a checkpoint whose state file is missing or unreadable was
    cut short (a crash, a kill) and is skipped rather than resumed from.
    """
    candidates = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(r"checkpoint-(\d+)", name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            candidates.append((int(match.group(1)), os.path.join(output_dir, name)))
    for _, path in sorted(candidates, reverse=True):
        try:
            with open(os.path.join(path, "trainer_state.json")) as handle:
                json.load(handle)
            has_weights = any(n.endswith((".safetensors", ".bin", ".safetensors.index.json")) for n in os.listdir(path))
        except (OSError, ValueError):
            has_weights = False
        if has_weights:
            return path
        logger.warning(f"Skipping {path}: it was not written to the end (no readable trainer_state.json or weights)")
    return None


def _read_state(folder: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(folder, "trainer_state.json")) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def finished_run(training_args: TrainingArguments, output_dir: str) -> str | None:
    """Where ``output_dir`` holds a run that already trained as long as this command asks, a
    description of it; else None.

    The run's state is the ``trainer_state.json`` written when training ended or, for a run stopped
    between its last checkpoint and the final save, that checkpoint's. Resuming such a run would
    train past its end (transformers 5.24 resumes a run stopped at ``max_steps`` mid-epoch with
    one more step) and rewrite the saved model and results.
    """
    state, where = _read_state(output_dir), output_dir
    if state is None:
        where = last_complete_checkpoint(output_dir)
        state = _read_state(where) if where else None
    if not state or not state.get("max_steps") or state.get("global_step", 0) < state["max_steps"]:
        return None
    step = state["global_step"]
    if training_args.max_steps > 0:
        asks_for_more = training_args.max_steps > step
    else:
        asks_for_more = training_args.num_train_epochs > state.get("num_train_epochs", 0)
    if asks_for_more:
        return None
    model_at = output_dir if where == output_dir else f"{where} (its last checkpoint)"
    total = state["max_steps"]
    return f"{output_dir} holds a finished run (trained {step} of {total} steps; the model is in {model_at})"


def resolve_checkpoint(training_args: TrainingArguments, overwrite_output_dir: bool) -> str | None:
    """The checkpoint to resume from, refusing to train over a finished model in ``output_dir``.

    A finished run is never changed without ``--overwrite_output_dir``: running the same command
    again is refused before anything loads or is written. A run asked to train longer (a higher
    ``--max_steps`` / ``--num_train_epochs``) resumes from its newest complete checkpoint, as in
    transformers' example scripts.
    """
    if training_args.resume_from_checkpoint is not None:
        return training_args.resume_from_checkpoint
    output_dir = training_args.output_dir
    if not training_args.do_train or overwrite_output_dir or not os.path.isdir(output_dir):
        return None
    finished = finished_run(training_args, output_dir)
    if finished is not None:
        raise InputError(
            f"--do_train: {finished}; nothing was changed. To evaluate or predict with it, run without --do_train "
            "and with --model_name_or_path pointing at the model; to train it longer, raise --max_steps or "
            "--num_train_epochs; to train again from the start, pass --overwrite_output_dir or choose another "
            "--output_dir"
        )
    last = last_complete_checkpoint(output_dir)
    if last is not None:
        logger.info(f"Checkpoint detected, resuming training at {last}. Pass --overwrite_output_dir to start over.")
        return last
    if any(name.endswith(".safetensors") for name in os.listdir(output_dir)):
        raise InputError(
            f"output directory {output_dir} already holds a trained model; pass --overwrite_output_dir to train "
            "over it, or choose another --output_dir"
        )
    return None
