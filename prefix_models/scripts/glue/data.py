"""Loading GLUE/SuperGLUE data from its three sources into normalised ``DatasetDict`` splits.

* the hub (``--task_name`` alone, or ``--dataset_name``), when online;
* the official downloads via ``--data_dir`` (GLUE TSV folders, SuperGLUE ``*.jsonl``);
* any csv/json files via ``--train_file`` / ``--validation_file`` / ``--test_file``.

Every problem with the data is reported with the file (and line) and what was expected, before
any model is loaded.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InputError
from ..hub import hub_errors, load_hub_dataset
from .tasks import (
    CLASSIFICATION,
    COLA_HEADERLESS,
    MULTIRC,
    RECORD,
    REGRESSION,
    TaskSpec,
    glue_row,
    superglue_rows,
)

if TYPE_CHECKING:  # datasets loads when data does, not for a script's --help
    from datasets import DatasetDict

# Split name -> official file names (GLUE TSV, SuperGLUE JSONL).
GLUE_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
MNLI_FILES = {
    "train": "train.tsv",
    "validation": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
    "test": "test_matched.tsv",
    "test_mismatched": "test_mismatched.tsv",
}
SUPERGLUE_FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}
HUB_DATASETS = {"glue": "nyu-mll/glue", "super_glue": "aps/super_glue"}


def _task_folder(spec: TaskSpec, data_dir: str) -> Path:
    """``--data_dir`` may name the task's folder or the download's root holding it."""
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"--data_dir {data_dir} is not a directory")
    for candidate in (root / spec.folder, root):
        if any((candidate / name).is_file() for name in (*GLUE_FILES.values(), *SUPERGLUE_FILES.values())):
            return candidate
    raise InputError(
        f"--data_dir {data_dir} holds no {spec.folder} data: expected {', '.join(GLUE_FILES.values())} "
        f"(GLUE) or {', '.join(SUPERGLUE_FILES.values())} (SuperGLUE), in it or in {spec.folder}/"
    )


def _read_tsv(path: Path, header: Sequence[str] | None = None) -> Iterable[tuple[int, dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if header is None:
            header = next(reader, None)
            if header is None:
                return
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path}, line {line}: expected {len(header)} tab-separated fields ({', '.join(header)}), "
                    f"found {len(row)}"
                )
            yield line, dict(zip(header, row, strict=True))


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}, line {line_number}: not valid JSON ({error.msg})") from error
            if not isinstance(record, dict):
                raise InputError(f"{path}, line {line_number}: expected a JSON object, got {type(record).__name__}")
            yield line_number, record


def load_from_data_dir(spec: TaskSpec, data_dir: str) -> tuple[DatasetDict, str]:
    """Official files of one task; returns the splits and the format found (``glue``/``super_glue``)."""
    folder = _task_folder(spec, data_dir)
    splits: dict[str, list[dict]] = {}
    if (folder / "train.jsonl").is_file() or (folder / "val.jsonl").is_file():
        if spec.benchmark != "super_glue" and spec.name != "rte":
            raise InputError(f"{folder} holds SuperGLUE jsonl files, but {spec.name} is a GLUE task (TSV files)")
        for split, name in SUPERGLUE_FILES.items():
            path = folder / name
            if path.is_file():
                splits[split] = [
                    row
                    for line, record in _read_jsonl(path)
                    for row in superglue_rows(spec, record, f"{path}, line {line}")
                ]
        return _to_dataset_dict(spec, splits, folder), "super_glue"
    if spec.benchmark != "glue":
        raise InputError(f"{folder} holds TSV files, but {spec.name} is a SuperGLUE task (train.jsonl, val.jsonl)")
    for split, name in (MNLI_FILES if spec.name == "mnli" else GLUE_FILES).items():
        path = folder / name
        if not path.is_file():
            continue
        header = COLA_HEADERLESS if spec.name == "cola" and split != "test" else None
        splits[split] = [
            glue_row(spec, row, index, f"{path}, line {line}")
            for index, (line, row) in enumerate(_read_tsv(path, header))
        ]
        _check_columns(spec, splits[split], path)
    return _to_dataset_dict(spec, splits, folder), "glue"


def _check_columns(spec: TaskSpec, rows: list[dict], path: Path) -> None:
    if rows and any(row["text_a"] is None for row in rows[:1]):
        raise InputError(f"{path}: missing the text column for {spec.name}")


def _to_dataset_dict(spec: TaskSpec, splits: dict[str, list[dict]], where: Path | str) -> DatasetDict:
    from datasets import Dataset, DatasetDict

    result = DatasetDict()
    for split, rows in splits.items():
        if not rows:
            raise InputError(f"the {split} split of {spec.name} in {where} is empty")
        result[split] = Dataset.from_list(rows)
    return result


def load_from_hub(
    spec: TaskSpec,
    dataset_name: str | None,
    dataset_config_name: str | None,
    *,
    asked: str | None = None,
    instead: str | None = None,
    **kwargs,
) -> DatasetDict:
    """The task from the hub (``nyu-mll/glue`` / ``aps/super_glue``), normalised like the files. A hub out of
    reach ends as one line saying what could not be loaded and how to give the files instead: ``asked`` (the
    flag that asked for it) and ``instead`` (the local way) default to ``run_glue.py``'s."""
    name = dataset_name or HUB_DATASETS[spec.benchmark]
    config_name = dataset_config_name or _hub_config(spec)
    asked = asked or (f"--dataset_name {dataset_name}" if dataset_name else f"--task_name {spec.name}")
    official = "SuperGLUE" if spec.benchmark == "super_glue" else "GLUE"
    instead = instead or (
        f"Give the data as local files instead: --data_dir <the official {official} download, or its "
        f"{spec.name} folder>, or --train_file/--validation_file (csv, tsv or json lines) with --task_name {spec.name}"
    )
    with hub_errors(asked, f"the dataset {name} (configuration {config_name})", instead):
        raw = load_hub_dataset(name, config_name, **kwargs)
    splits = {}
    for split, dataset in raw.items():
        split_name = {"validation_matched": "validation", "test_matched": "test"}.get(split, split)
        splits[split_name] = [
            row for index, record in enumerate(dataset) for row in _hub_rows(spec, record, index, f"{name}/{split}")
        ]
    return _to_dataset_dict(spec, splits, name)


def _hub_config(spec: TaskSpec) -> str:
    return {"wsc": "wsc.fixed"}.get(spec.name, spec.name)


def _hub_rows(spec: TaskSpec, record: dict, index: int, where: str) -> list[dict]:
    """Hub records (flat, integer labels) mapped onto the official record shapes."""
    label = record.get("label", -1)
    if spec.benchmark == "glue":
        columns = {
            "cola": ("sentence", None),
            "sst2": ("sentence", None),
            "mrpc": ("sentence1", "sentence2"),
            "qqp": ("question1", "question2"),
            "stsb": ("sentence1", "sentence2"),
            "mnli": ("premise", "hypothesis"),
            "qnli": ("question", "sentence"),
            "rte": ("sentence1", "sentence2"),
            "wnli": ("sentence1", "sentence2"),
        }[spec.name]
        if spec.kind == REGRESSION:
            label = float(label) if label is not None and label >= 0 else float("nan")
        return [
            {
                "idx": record.get("idx", index),
                "text_a": record[columns[0]],
                "text_b": record[columns[1]] if columns[1] else None,
                "label": label,
            }
        ]
    if spec.name == "wsc":
        record = {**record, "target": {"span1_text": record["span1_text"], "span2_text": record["span2_text"]}}
    elif spec.name == "multirc":
        ids = record["idx"]
        record = {
            "idx": ids["paragraph"],
            "passage": {
                "text": record["paragraph"],
                "questions": [
                    {
                        "question": record["question"],
                        "idx": ids["question"],
                        "answers": [{"text": record["answer"], "idx": ids["answer"], "label": label}],
                    }
                ],
            },
        }
    elif spec.name == "record":
        text = record["passage"]
        entities = [
            {"start": text.find(entity), "end": text.find(entity) + len(entity) - 1}
            for entity in record["entities"]
            if entity in text
        ]
        record = {
            "passage": {"text": text, "entities": entities},
            "qas": [
                {
                    "query": record["query"],
                    "idx": record["idx"]["query"],
                    "answers": [{"text": answer} for answer in record["answers"]],
                }
            ],
        }
    if spec.kind == CLASSIFICATION and isinstance(label, int) and label >= 0:
        record = {**record, "label": spec.labels[label]}
    elif label == -1:
        record = {**record, "label": None}
    return superglue_rows(spec, record, where)


def load_from_files(
    spec: TaskSpec | None,
    files: dict[str, str],
    text_columns: Sequence[str] | None,
    label_column: str,
    label_list: Sequence[str] | None = None,
) -> tuple[DatasetDict, TaskSpec]:
    """csv/json(l) files with named text and label columns; returns the splits and the task spec
    (a custom one, with labels from the training data, unless ``spec`` is given)."""
    import datasets

    raw = {}
    for split, path in files.items():
        if not os.path.isfile(path):
            raise InputError(f"--{split}_file {path} does not exist")
        extension = Path(path).suffix.lstrip(".").lower()
        if extension not in ("csv", "tsv", "json", "jsonl"):
            raise InputError(f"--{split}_file {path} must be a .csv, .tsv, .json or .jsonl file")
        if not _has_rows(path, header=extension in ("csv", "tsv")):
            raise InputError(f"--{split}_file {path} is empty")
        builder = "csv" if extension in ("csv", "tsv") else "json"
        options = {"delimiter": "\t"} if extension == "tsv" else {}
        try:
            raw[split] = datasets.load_dataset(builder, data_files={split: path}, split=split, **options)
        except Exception as error:  # datasets wraps parser errors in several exception types
            raise InputError(f"--{split}_file {path} could not be read as {extension}: {error}") from error
        if len(raw[split]) == 0:
            raise InputError(f"--{split}_file {path} is empty")

    reference = raw.get("train") or next(iter(raw.values()))
    columns = list(reference.column_names)
    text_columns = list(text_columns) if text_columns else _guess_text_columns(columns, label_column, files)
    if not 1 <= len(text_columns) <= 2:
        raise InputError(f"--text_column_names takes one or two columns, got {text_columns}")

    for split, dataset in raw.items():
        missing = [c for c in text_columns if c not in dataset.column_names]
        if split != "test" and label_column not in dataset.column_names:
            missing.append(label_column)
        if missing:
            raise InputError(
                f"--{split}_file {files[split]} lacks column(s) {missing}; it has {dataset.column_names} "
                "(choose with --text_column_names / --label_column_name)"
            )

    if spec is None:
        spec = _custom_spec(raw, label_column, label_list, files)
    splits = {}
    for split, dataset in raw.items():
        rows = []
        for index, example in enumerate(dataset):
            where = f"--{split}_file {files[split]}, row {index + 1}"
            label = example.get(label_column)
            if spec.kind == REGRESSION:
                label = float("nan") if label is None else _as_float(label, where)
            elif label is None:
                label = -1
            elif str(label) in spec.labels:
                label = spec.labels.index(str(label))
            else:
                raise InputError(f"{where}: label {label!r} is not in the label list {list(spec.labels)}")
            text_b = example[text_columns[1]] if len(text_columns) == 2 else None
            rows.append(
                {"idx": example.get("idx", index), "text_a": example[text_columns[0]], "text_b": text_b, "label": label}
            )
        splits[split] = rows
    return _to_dataset_dict(spec, splits, "the data files"), spec


def _has_rows(path: str, header: bool) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        rows = sum(1 for line in handle if line.strip())
    return rows > (1 if header else 0)


def _guess_text_columns(columns: list[str], label_column: str, files: dict[str, str]) -> list[str]:
    # As transformers' run_glue: sentence1/sentence2 or sentence, else the other columns if unambiguous.
    if "sentence1" in columns and "sentence2" in columns:
        return ["sentence1", "sentence2"]
    if "sentence" in columns:
        return ["sentence"]
    others = [c for c in columns if c not in (label_column, "idx", "id")]
    if 1 <= len(others) <= 2:
        return others
    raise InputError(
        f"cannot tell which columns of {', '.join(files.values())} hold the text: columns are {columns}; "
        "name them with --text_column_names (one or two, comma-separated)"
    )


def _as_float(value, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: regression label {value!r} is not a number") from error


def _custom_spec(raw: dict, label_column: str, label_list: Sequence[str] | None, files: dict) -> TaskSpec:
    labelled = [d for split, d in raw.items() if split != "test" and label_column in d.column_names]
    values = [v for d in labelled for v in d[label_column] if v is not None]
    if not values:
        raise InputError(f"no labels found in column {label_column!r} of {', '.join(files.values())}")
    if (
        label_list is None
        and all(isinstance(v, float) for v in values)
        and not all(float(v).is_integer() for v in values)
    ):
        return TaskSpec("custom", "custom", "custom", REGRESSION, (), ("pearson", "spearmanr"), "combined_score")
    train_values = raw["train"][label_column] if "train" in raw else values
    labels = tuple(label_list) if label_list else tuple(sorted({str(v) for v in train_values if v is not None}))
    if len(labels) < 2:
        raise InputError(f"classification needs at least two labels; column {label_column!r} has only {list(labels)}")
    return TaskSpec("custom", "custom", "custom", CLASSIFICATION, labels, ("accuracy", "macro_f1"), "accuracy")


def check_splits(spec: TaskSpec, data: DatasetDict, needed: dict[str, bool]) -> None:
    """Each split a --do_* flag needs exists, is non-empty and (except test) is labelled."""
    for split, wanted in needed.items():
        if not wanted:
            continue
        if split not in data:
            raise InputError(
                f"--do_{ {'train': 'train', 'validation': 'eval', 'test': 'predict'}[split] } needs a "
                f"{split} split, and the data has only {list(data)}"
            )
        if split == "test":
            continue
        labels = data[split]["label"]
        unlabelled = sum(
            1 for label in labels if label is None or label == -1 or (isinstance(label, float) and math.isnan(label))
        )
        if unlabelled == len(labels):
            raise InputError(f"the {split} split of {spec.name} has no labels")


__all__ = ["load_from_data_dir", "load_from_files", "load_from_hub", "check_splits", "MULTIRC", "RECORD"]
