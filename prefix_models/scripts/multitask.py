"""What a multi-task run (``examples/run_multitask.py``) reads and how it mixes it: each task's data (an official
download, the hub, or local files with a free task name; NER tasks from the CoNLL / json-lines files ``run_ner.py``
reads), checked in one line per problem before any weights load, and the training mixture (proportional, or
temperature-scaled for tasks of very unequal sizes)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:  # datasets loads with the data, not for a script's --help
    import datasets

    from .ner.data import Sentence

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


@dataclasses.dataclass
class NerTask:
    """One NER task of a multi-task run: its sentences by split, its tag set (from its own training file) and
    its tagging scheme (detected from its own tags)."""

    name: str
    splits: dict[str, list[Sentence]]
    labels: list[str]
    scheme: str

    def label_fields(self) -> dict[str, Any]:
        """Config fields of the task's token head."""
        return {
            "num_labels": len(self.labels),
            "id2label": dict(enumerate(self.labels)),
            "label2id": {label: i for i, label in enumerate(self.labels)},
        }


_RUN_NER_HINT = re.compile(r" \((set it with --tag_scheme|label ids need --label_names_file to name them)\)$")
_NER_FORMATS = "CoNLL columns (token first, tag last) or json lines of tokens / ner_tags"


def load_ner_task(name: str, files: dict[str, str]) -> NerTask:
    """One NER task's local files, read as ``run_ner.py`` reads them: CoNLL column files (the tag in the last
    column) or json lines of ``{"tokens": [...], "ner_tags": [...]}``. Its labels come from its training file
    (or, without one, from its dev file), every dev tag must be one of them, and its scheme is detected from its
    own tags; every problem is one line naming the task and the file."""
    from .ner.data import check_labels, check_tags, detect_scheme, label_list_from, read_conll, read_json_lines

    splits: dict[str, list[Sentence]] = {}
    for split, path in files.items():
        flag = f"--{split}_files"
        try:
            if Path(path).suffix.lower() in (".json", ".jsonl"):
                sentences = read_json_lines(path, "tokens", "ner_tags", flag)
            else:
                sentences = read_conll(path, -1, flag)
        except InputError as error:
            raise InputError(f"task {name} (--ner_tasks): {error}") from error
        if not sentences or any(sentence.tags is None for sentence in sentences):
            raise InputError(
                f"task {name} (--ner_tasks): {flag} {path} is not a tagged NER file: expected {_NER_FORMATS}"
            )
        splits[split] = sentences
    if not splits:
        raise InputError(f"task {name} (--ner_tasks) has no files to read")
    source = "train" if "train" in splits else next(iter(splits))
    labels = label_list_from(splits[source])
    where = f"--{source}_files {files[source]}"
    if len(labels) < 2:
        raise InputError(f"task {name} (--ner_tasks): {where} has only the tags {labels}; tagging needs two or more")
    labelled = [sentence for sentences in splits.values() for sentence in sentences]
    try:
        check_labels(splits, labels, f"found in {where}")
    except InputError as error:
        # check_labels' hint names run_ner.py's --label_names_file, which a multi-task run does not take.
        raise InputError(f"task {name} (--ner_tasks): {str(error).split(' (to allow it')[0]}") from error
    try:
        scheme = detect_scheme(splits[source])
        check_tags(labelled, scheme)
    except InputError as error:
        message = _RUN_NER_HINT.sub("", str(error))  # run_ner.py's flags, which a multi-task run does not take
        raise InputError(f"task {name} (--ner_tasks): {message}") from error
    return NerTask(name, splits, labels, scheme)


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


def draw_mixture(parts: Sequence[datasets.Dataset], temperature: float, seed: int) -> list[datasets.Dataset]:
    """Each task's training set drawn ``mixture_sizes`` times: a task drawn down takes a seeded subset, a task
    drawn up repeats whole passes plus a seeded subset."""
    targets = mixture_sizes([len(part) for part in parts], temperature)
    rng = np.random.default_rng(seed)
    drawn = []
    for part, target in zip(parts, targets, strict=True):
        whole, rest = divmod(target, len(part))
        indices = np.concatenate([np.tile(np.arange(len(part)), whole), rng.permutation(len(part))[:rest]])
        drawn.append(part.select(indices.tolist()) if target != len(part) else part)
    return drawn


def mix_training_sets(parts: Sequence[datasets.Dataset], temperature: float, seed: int) -> datasets.Dataset:
    """The tasks' training sets as one dataset in which each task appears ``mixture_sizes`` times
    (:func:`draw_mixture`). The Trainer's sampler then shuffles it, so every batch mixes tasks in these
    proportions."""
    import datasets

    return datasets.concatenate_datasets(draw_mixture(parts, temperature, seed))


__all__ = [
    "NerTask",
    "draw_mixture",
    "load_ner_task",
    "load_task_files",
    "mix_training_sets",
    "mixture_sizes",
    "split_list",
    "task_files",
]
