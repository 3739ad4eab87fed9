"""What a multi-task run (``examples/run_multitask.py``) reads and how it mixes it: each task's data (an official
download, the hub, or local files with a free task name), checked in one line per problem before any weights
load, and the training mixture (proportional, or temperature-scaled for tasks of very unequal sizes)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:  # datasets loads with the data, not for a script's --help
    import datasets

# A task name becomes a prefix name (a module path and checkpoint key) and a folder under prefixes/.
_TASK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def split_list(value: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty entries dropped)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def task_files(
    names: Sequence[str], train_files: Sequence[str], validation_files: Sequence[str], needed: dict[str, bool]
) -> dict[str, dict[str, str]]:
    """Task name -> ``{"train": path, "validation": path}`` from the comma-separated lists, one file per task
    in ``--task_names`` order; each list the run needs (``needed``: split -> wanted) must be given in full."""
    bad = [name for name in names if not _TASK_NAME.match(name)]
    if bad:
        raise InputError(f"--task_names: {bad} are not task names: use letters, digits, '_' or '-'")
    given = {"train": list(train_files), "validation": list(validation_files)}
    files: dict[str, dict[str, str]] = {name: {} for name in names}
    for split, paths in given.items():
        flag = f"--{split}_files"
        if not paths:
            if needed.get(split):
                do = "--do_train" if split == "train" else "--do_eval"
                raise InputError(f"{do} needs {flag}: one file per task of --task_names ({', '.join(names)})")
            continue
        if len(paths) != len(names):
            raise InputError(
                f"{flag} has {len(paths)} file(s) for {len(names)} tasks (--task_names {','.join(names)}): give "
                "one per task, in the same order"
            )
        for name, path in zip(names, paths, strict=True):
            if not os.path.isfile(path):
                raise InputError(f"{flag}: {path} (task {name}) does not exist")
            files[name][split] = path
    return files


def load_task_files(
    name: str, files: dict[str, str], text_columns: Sequence[str] | None, label_column: str
) -> tuple[datasets.DatasetDict, Any]:
    """One task's local files, read as ``run_glue.py --train_file`` reads them (its labels from its own
    training file); every problem named with the task."""
    from .glue.data import load_from_files

    try:
        data, spec = load_from_files(None, files, text_columns, label_column)
    except InputError as error:
        raise InputError(f"task {name}: {error}") from error
    return data, dataclasses.replace(spec, name=name)


def mixture_sizes(sizes: Sequence[int], temperature: float) -> list[int]:
    """How many examples of each task one epoch of the mixture draws: the sizes themselves at temperature 1
    (proportional: each example once), otherwise ``n_i ** (1 / T)`` normalised to the same total, which moves
    small tasks up and large ones down (T -> infinity: equal shares)."""
    if temperature <= 0 or not math.isfinite(temperature):
        raise InputError(f"--sampling_temperature must be a positive number (1: proportional); got {temperature}")
    if temperature == 1:
        return list(sizes)
    weights = np.asarray(sizes, dtype=np.float64) ** (1.0 / temperature)
    shares = weights / weights.sum() * sum(sizes)
    return [max(1, round(share)) for share in shares]


def mix_training_sets(parts: Sequence[datasets.Dataset], temperature: float, seed: int) -> datasets.Dataset:
    """The tasks' training sets as one dataset in which each task appears ``mixture_sizes`` times: a task drawn
    down takes a seeded subset, a task drawn up repeats whole passes plus a seeded subset. The Trainer's
    sampler then shuffles it, so every batch mixes tasks in these proportions."""
    import datasets

    targets = mixture_sizes([len(part) for part in parts], temperature)
    rng = np.random.default_rng(seed)
    mixed = []
    for part, target in zip(parts, targets, strict=True):
        whole, rest = divmod(target, len(part))
        indices = np.concatenate([np.tile(np.arange(len(part)), whole), rng.permutation(len(part))[:rest]])
        mixed.append(part.select(indices.tolist()) if target != len(part) else part)
    return datasets.concatenate_datasets(mixed)


__all__ = ["load_task_files", "mix_training_sets", "mixture_sizes", "split_list", "task_files"]
