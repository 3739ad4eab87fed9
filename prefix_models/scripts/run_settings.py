"""What defines a run, and the record of it in the run's output folder (``run_settings.json``).

A script's run is defined by what it trains and on what: the script, the method and every method flag, the
model (and tokenizer or config given apart), the task and its data, the head's labels and the data options
that shape the inputs, and the optimisation settings a checkpoint's optimizer and scheduler carry on (learning
rate, schedule, optimizer, weight decay, total batch size, seed). A run that resumes a checkpoint or adds to the
results of a run with other such settings mixes two runs without a word, so a training run into a folder that
holds another run's checkpoints or results, recorded with other settings, is refused (:func:`check_run_folder`).

Not part of it, so a run may change them and resume: what only says how the run is carried out or reported
(``OPERATIONAL``): how long it trains (``--num_train_epochs``, ``--max_steps``: raising them is how a run
trains longer), evaluation, saving and logging, precision (``--bf16``, ``--fp16``, ``--dtype``: the same run on
other hardware), per-device batch size as long as the total is the same, dataloader workers, what is evaluated
or predicted and how answers are post-processed, caches and tokens, and the overrides that let a run go ahead
(``--overwrite_output_dir``, the base-fingerprint override).

The record names a model or data found on disk by its file or folder name and a fingerprint of its contents
(so a moved copy is the same run, and the file holds no machine path); anything else by its value as given.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .arguments import DataArguments, ModelArguments, was_given

if TYPE_CHECKING:
    from transformers import TrainingArguments

logger = logging.getLogger(__name__)

SETTINGS_FILE = "run_settings.json"
# Where an evaluation-only run into a trained run's folder writes its results (a folder per evaluated data).
EVALUATIONS_FOLDER = "evaluations"

# Flags of ModelArguments and the scripts' data arguments that do not define a run (see the module's docstring).
# Every other field of those dataclasses does, so a flag added later is part of the record until named here.
OPERATIONAL = frozenset(
    {
        "cache_dir",
        "token",
        "dtype",
        "overwrite_output_dir",
        "ignore_mismatched_base",
        "pad_to_max_length",
        "max_eval_samples",
        "max_predict_samples",
        "return_entity_level_metrics",
        "n_best_size",
        "max_answer_length",
        "null_score_diff_threshold",
    }
)
# Fields naming a file or folder (a model, a tokenizer, data): recorded by name and fingerprint when on disk.
_PATH_FIELDS = re.compile(r".*_file|.*_dir|.*_name_or_path|config_name|tokenizer_name|prefix_init_from")
# The method flags, recorded together as the ``method`` setting.
_METHOD_FLAGS = ("prefix", "prompt", "head_only")
# TrainingArguments' fields that define a run (of its ~115, the rest are operational): what the optimizer and
# scheduler states in a checkpoint were built with, and what orders the data.
TRAINING_SETTINGS = (
    "learning_rate",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "optim",
    "optim_args",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "label_smoothing_factor",
    "neftune_noise_alpha",
    "seed",
    "data_seed",
)
# Recorded as given, null when left to the default: the learning rate the method fills in after the record is
# taken (``apply_method_defaults``), the optimizer whose default follows the torch version.
_AS_GIVEN = ("learning_rate", "optim")
# A folder holding any of these holds a run's checkpoints or results.
_RESULT_FILE = re.compile(r".*_results\.json|trainer_state\.json|README\.md|.*\.safetensors|pytorch_model\.bin")
_TRAINED_FILE = re.compile(r"trainer_state\.json|README\.md|.*\.safetensors(\.index\.json)?|pytorch_model\.bin")
_CHECKPOINT = re.compile(r"checkpoint-\d+")
_NOT_CONTENTS = re.compile(
    rf"checkpoint-\d+|runs|{EVALUATIONS_FOLDER}|{re.escape(SETTINGS_FILE)}|.*_results\.json|trainer_state\.json"
    r"|training_args\.bin|README\.md"
)
# How much of a file its fingerprint reads: all of a small file; of a larger one, evenly spaced chunks.
_WHOLE_FILE_BYTES = 1 << 20
_CHUNKS, _CHUNK_BYTES = 16, 1 << 16


def file_fingerprint(path: str | os.PathLike) -> str:
    """A short hash of a file's size and contents (evenly spaced chunks of a file above 1 MiB: cheap for a
    checkpoint of several GB, and different weights of one shape still differ)."""
    digest = hashlib.blake2b(digest_size=8)
    size = os.path.getsize(path)
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        if size <= _WHOLE_FILE_BYTES:
            digest.update(handle.read())
        else:
            for index in range(_CHUNKS):
                handle.seek((size - _CHUNK_BYTES) * index // (_CHUNKS - 1))
                digest.update(handle.read(_CHUNK_BYTES))
    return digest.hexdigest()


def _files_below(folder: Path) -> Iterator[Path]:
    """The files below ``folder`` that say what it holds: not hidden ones, and, of a run's folder given as the
    model, not what its runs and evaluations add beside the model (checkpoints, results, card, logs)."""
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or _NOT_CONTENTS.fullmatch(entry.name):
            continue
        if entry.is_dir():
            yield from _files_below(entry)
        elif entry.is_file():
            yield entry


def path_fingerprint(path: str | os.PathLike) -> str:
    """:func:`file_fingerprint` of a file; of a folder, a hash of its files' relative paths and fingerprints."""
    path = Path(path)
    if path.is_file():
        return file_fingerprint(path)
    digest = hashlib.blake2b(digest_size=8)
    for file in _files_below(path):
        digest.update(f"{file.relative_to(path).as_posix()}:{file_fingerprint(file)};".encode())
    return digest.hexdigest()


def _plain(value: Any, path: bool = False) -> Any:
    """``value`` as JSON holds it; with ``path``, a file or folder on disk as its name and the fingerprint of
    its contents (a hub id, or a file name looked up inside the model, stays as given)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if path and isinstance(value, str | os.PathLike) and value and os.path.exists(value):
        return {"name": Path(value).resolve().name, "fingerprint": path_fingerprint(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _script_name(data_args: DataArguments) -> str:
    """The script whose flags ``data_args`` are (its data arguments are declared there)."""
    module = sys.modules.get(type(data_args).__module__)
    return os.path.basename(getattr(module, "__file__", None) or type(data_args).__module__)


def run_settings(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
) -> dict[str, Any]:
    """The settings that define the run these flags ask for, as :data:`SETTINGS_FILE` records them."""
    settings: dict[str, Any] = {
        "script": _script_name(data_args),
        "method": model_args.method or ("head_only" if model_args.head_only else "full_fine_tuning"),
    }
    for arguments in (model_args, data_args):
        for field in dataclasses.fields(arguments):
            if field.name not in OPERATIONAL and field.name not in _METHOD_FLAGS:
                settings[field.name] = _plain(getattr(arguments, field.name), bool(_PATH_FIELDS.fullmatch(field.name)))
    for name in TRAINING_SETTINGS:
        given = name not in _AS_GIVEN or was_given(training_args, name)
        settings[name] = _plain(getattr(training_args, name, None)) if given else None
    # The batch the optimizer steps on: the same over more processes with a smaller per-device batch.
    settings["total_train_batch_size"] = (
        training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * training_args.world_size
    )
    return settings


def read_settings(output_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The settings recorded in ``output_dir``; None where there is no readable record."""
    try:
        with open(os.path.join(output_dir, SETTINGS_FILE), encoding="utf-8") as handle:
            recorded = json.load(handle)
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


def write_settings(output_dir: str | os.PathLike, settings: dict[str, Any]) -> None:
    """Record ``settings`` in ``output_dir`` (written whole or not at all: other processes may be reading it)."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, SETTINGS_FILE)
    partial = os.path.join(output_dir, f".{SETTINGS_FILE}.{os.getpid()}")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(settings, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(partial, path)


def run_products(output_dir: str | os.PathLike) -> list[str]:
    """What in ``output_dir`` a run left: its checkpoints, saved model, trainer state, results and card."""
    if not os.path.isdir(output_dir):
        return []
    return sorted(
        name for name in os.listdir(output_dir) if _CHECKPOINT.fullmatch(name) or _RESULT_FILE.fullmatch(name)
    )


def holds_trained_run(output_dir: str | os.PathLike) -> bool:
    """Whether ``output_dir`` holds a run that trained (or a saved model): its record, state, model or checkpoints,
    rather than only the results of an evaluation."""
    if not os.path.isdir(output_dir):
        return False
    return any(
        name == SETTINGS_FILE or _CHECKPOINT.fullmatch(name) or _TRAINED_FILE.fullmatch(name)
        for name in os.listdir(output_dir)
    )


def _shown(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"name", "fingerprint"}:
        return value["name"]
    if value is None:
        return "unset"
    return json.dumps(value) if not isinstance(value, str) else value


def _difference(name: str, recorded: Any, now: Any) -> str:
    flag = name if name in ("method", "script", "total_train_batch_size") else f"--{name}"
    there, here = _shown(recorded), _shown(now)
    if there == here:  # a file or folder of the same name with other contents
        here += " (other contents)"
    return f"{flag} {there} -> {here}"


def settings_differences(recorded: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """``--flag recorded -> now`` for each setting that differs (a setting one side lacks counts as unset)."""
    names = list(settings) + [name for name in recorded if name not in settings]
    return [
        _difference(name, recorded.get(name), settings.get(name))
        for name in names
        if recorded.get(name) != settings.get(name)
    ]


def check_run_folder(output_dir: str, settings: dict[str, Any], overwrite_output_dir: bool) -> None:
    """Refuse to train into ``output_dir`` where it holds the checkpoints or results of a run recorded with other
    settings, before anything is loaded or written. A folder with no record (written before the record existed)
    or with a record and nothing else (a run that stopped before training) is left to resume as before."""
    if overwrite_output_dir:
        return
    recorded = read_settings(output_dir)
    if recorded is None or not run_products(output_dir):
        return
    differences = settings_differences(recorded, settings)
    if differences:
        raise InputError(
            f"--output_dir {output_dir} holds a run with other settings ({SETTINGS_FILE}): "
            f"{'; '.join(differences)}. Nothing was changed. Choose a new --output_dir for this run, or pass "
            "--overwrite_output_dir to train over that one"
        )


def check_resumed_checkpoint(checkpoint: str | None, settings: dict[str, Any]) -> None:
    """Refuse ``--resume_from_checkpoint`` of a checkpoint whose run (the folder it sits in, with its record) had
    other settings: resuming it would carry that run's prefix and optimizer state into this one."""
    if not isinstance(checkpoint, str) or not os.path.isdir(checkpoint):
        return
    recorded = read_settings(os.path.dirname(os.path.abspath(checkpoint)))
    differences = settings_differences(recorded, settings) if recorded is not None else []
    if differences:
        raise InputError(
            f"--resume_from_checkpoint {checkpoint} is a checkpoint of a run with other settings ({SETTINGS_FILE} "
            f"beside it): {'; '.join(differences)}. Nothing was changed. Resume it with that run's settings, or leave "
            "out --resume_from_checkpoint to train this run from its start"
        )


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "evaluation"


def evaluation_folder(output_dir: str, data_args: DataArguments, training_args: TrainingArguments) -> str:
    """Where an evaluation-only run into ``output_dir`` (a trained run's folder) writes: a folder under
    ``evaluations/`` named after the data it evaluates and predicts on."""
    files = {"validation": training_args.do_eval, "test": training_args.do_predict}
    names = [
        Path(path).stem
        for split, wanted in files.items()
        if wanted and (path := getattr(data_args, f"{split}_file", None))
    ]
    if not names:
        named = getattr(data_args, "task_name", None) or getattr(data_args, "task_names", None)
        dataset = data_args.dataset_name and f"{data_args.dataset_name}_{data_args.dataset_config_name or ''}"
        data_dir = data_args.data_dir and Path(data_args.data_dir).resolve().name
        names = [next((name for name in (named, dataset, data_dir) if name), "evaluation")]
    return os.path.join(output_dir, EVALUATIONS_FOLDER, _label("+".join(dict.fromkeys(names))))


def prepare_run_folder(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> None:
    """Check ``--output_dir`` against this run before anything loads or is written.

    A training run into a folder holding another run's checkpoints or results is refused
    (:func:`check_run_folder`); its settings are kept on ``training_args`` for :func:`record_run` to write
    when training starts (a run refused later, on its data, leaves no record). An evaluation-only run into a
    trained run's folder leaves that run's results and card alone: ``training_args.output_dir`` moves to a
    folder of its own (:func:`evaluation_folder`).
    """
    output_dir = training_args.output_dir
    if not training_args.do_train:
        if holds_trained_run(output_dir):
            training_args.output_dir = evaluation_folder(output_dir, data_args, training_args)
            logger.warning(
                f"{output_dir} holds a trained run, whose results and card stay as they are: this evaluation-only "
                f"run writes its results to {training_args.output_dir}"
            )
        return
    settings = run_settings(model_args, data_args, training_args)
    check_run_folder(output_dir, settings, data_args.overwrite_output_dir)
    check_resumed_checkpoint(training_args.resume_from_checkpoint, settings)
    training_args._run_settings = settings  # as parse_arguments keeps _given: the run's, beside its flags
    if data_args.overwrite_output_dir and training_args.resume_from_checkpoint is None:
        # The run trained over keeps no checkpoint beside this one: a later re-run would resume the newest
        # checkpoint-N, which may be the old run's, and checkpoint rotation would count them as this run's.
        training_args._stale_checkpoints = stale_checkpoints(output_dir)


def stale_checkpoints(output_dir: str | os.PathLike) -> list[str]:
    """The ``checkpoint-N`` folders in ``output_dir``: with ``--overwrite_output_dir``, the run trained over's."""
    if not os.path.isdir(output_dir):
        return []
    return sorted(
        os.path.join(output_dir, name)
        for name in os.listdir(output_dir)
        if _CHECKPOINT.fullmatch(name) and os.path.isdir(os.path.join(output_dir, name))
    )


def record_run(training_args: TrainingArguments) -> None:
    """Write the settings :func:`prepare_run_folder` found into the output folder, as training starts (by the
    main process; the others only read it). With ``--overwrite_output_dir``, the checkpoints of the run trained
    over are removed first, so the folder holds one run: the run's flags and data were all checked by now."""
    settings = getattr(training_args, "_run_settings", None)
    if settings is None or not training_args.should_save:
        return
    stale = getattr(training_args, "_stale_checkpoints", None) or []
    if stale:
        names = ", ".join(os.path.basename(path) for path in stale)
        logger.warning(f"--overwrite_output_dir: removing the checkpoints of the run trained over ({names})")
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
    if read_settings(training_args.output_dir) != settings:
        write_settings(training_args.output_dir, settings)
        logger.info(f"Run settings recorded in {os.path.join(training_args.output_dir, SETTINGS_FILE)}")
