"""SQuAD-style data for ``run_qa.py``: reading it and checking it before any model loads.

Three sources give the same :class:`QAExample` list:

- the official SQuAD JSON (v1.1 and v2.0): ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
  "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}``;
- flat records, as json lines (one per line) or a JSON list / ``{"data": [...]}`` of them, with ``id``,
  ``title``, ``context``, ``question`` and ``answers`` as the hub has it (``{"text": [...],
  "answer_start": [...]}``) or as the official files have it (a list of ``{"text", "answer_start"}``);
- the hub (``rajpurkar/squad``, ``rajpurkar/squad_v2``), when it can be reached.

The checks (:func:`check_examples`) name the flag, the file and the question id: a missing field, an
answer whose ``answer_start`` does not point at its text in the context, a question without an answer
(SQuAD 2.0) without ``--version_2_with_negative``, a repeated id.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from ...errors import InputError
from ..arguments import SPLIT_FLAGS
from ..hub import hub_errors, load_hub_dataset

logger = logging.getLogger(__name__)

# Short names the P-tuning v2 reference (and older transformers examples) use for the hub datasets.
HUB_NAMES = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}
# What --data_dir looks for, in order: the official downloads' names first.
DATA_DIR_NAMES = {
    "train": ("train-v1.1.json", "train.json", "train.jsonl"),
    "validation": ("dev-v1.1.json", "dev.json", "dev.jsonl", "validation.json", "validation.jsonl"),
    "test": ("test.json", "test.jsonl"),
}
V2_NAMES = {"train": "train-v2.0.json", "validation": "dev-v2.0.json"}


@dataclass
class QAExample:
    """One question on one context. ``answers`` is None for a question without an answers field (a file to
    predict on), ``[]`` for a SQuAD 2.0 question the context does not answer."""

    id: str
    title: str
    context: str
    question: str
    answers: list[str] | None
    answer_starts: list[int] | None
    source: str  # "--train_file path" or "the dataset rajpurkar/squad (train)": where to point in messages
    is_impossible: bool | None = None

    @property
    def labelled(self) -> bool:
        return self.answers is not None

    @property
    def unanswerable(self) -> bool:
        return bool(self.is_impossible) or self.answers == []


def data_dir_files(data_dir: str, version_2: bool) -> dict[str, str]:
    """The files of ``--data_dir`` by split (the official ``train-v1.1.json`` / ``dev-v1.1.json``, their v2.0
    names with ``--version_2_with_negative``, or ``train.json(l)``, ``dev.json(l)``, ``test.json(l)``)."""
    if not os.path.isdir(data_dir):
        raise InputError(f"--data_dir {data_dir} is not a folder")
    files = {}
    for split, names in DATA_DIR_NAMES.items():
        if version_2 and split in V2_NAMES:
            names = (V2_NAMES[split], *names[1:])
        found = next((name for name in names if os.path.isfile(os.path.join(data_dir, name))), None)
        if found:
            files[split] = os.path.join(data_dir, found)
    if not files:
        wanted = ", ".join(n for names in DATA_DIR_NAMES.values() for n in names)
        raise InputError(
            f"--data_dir {data_dir} holds none of the files it is read for ({wanted}; v2.0 names with "
            "--version_2_with_negative)"
        )
    return files


def _load_json_or_lines(path: str, where: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if not text.strip():
        raise InputError(f"{where} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass  # not one JSON document: json lines, one record per line
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InputError(f"{where} line {number}: neither one JSON document nor json lines ({error.msg})") from None
    return records


def _records(document: Any, where: str) -> list[tuple[dict[str, Any], str]]:
    """The flat question records of a loaded file, each with where it sits (for messages without an id)."""
    if isinstance(document, dict) and "data" not in document:
        document = [document]  # json lines with a single line parse as one JSON document
    items = document.get("data") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise InputError(f'{where}: expected the official SQuAD JSON ({{"data": [...]}}) or json lines of questions')
    if items and isinstance(items[0], dict) and "paragraphs" in items[0]:
        records = []
        for a, article in enumerate(items):
            title = article.get("title", "") if isinstance(article, dict) else ""
            paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
            if not isinstance(paragraphs, list):
                raise InputError(f"{where}: article {a} ({title!r}) has no 'paragraphs' list")
            for p, paragraph in enumerate(paragraphs):
                at = f"article {a} ({title!r}) paragraph {p}"
                if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                    raise InputError(f"{where}: {at} has no 'qas' list")
                if "context" not in paragraph:
                    raise InputError(f"{where}: {at} is missing the field 'context'")
                for q, qa in enumerate(paragraph["qas"]):
                    if not isinstance(qa, dict):
                        raise InputError(f"{where}: {at} question {q} is not an object")
                    records.append(({"title": title, "context": paragraph["context"], **qa}, f"{at} question {q}"))
        return records
    label = "line" if not isinstance(document, dict) else "record"
    return [(record, f"{label} {n}") for n, record in enumerate(items, start=1)]


def _answers(value: Any, where: str) -> tuple[list[str], list[int]]:
    """(texts, starts) from either answers layout."""
    if isinstance(value, dict):  # the hub's layout
        texts, starts = value.get("text"), value.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list):
            raise InputError(f"{where}: 'answers' needs the lists 'text' and 'answer_start'")
        if len(texts) != len(starts):
            raise InputError(f"{where}: 'answers' has {len(texts)} texts but {len(starts)} answer_start values")
        return list(texts), list(starts)
    if isinstance(value, list):  # the official layout
        texts, starts = [], []
        for n, answer in enumerate(value):
            for key in ("text", "answer_start"):
                if not isinstance(answer, dict) or key not in answer:
                    raise InputError(f"{where}: answer {n} is missing the field '{key}'")
            texts.append(answer["text"])
            starts.append(answer["answer_start"])
        return texts, starts
    raise InputError(
        f"{where}: 'answers' must be a list of {{text, answer_start}} or {{text: [...], answer_start: [...]}}"
    )


def example_from_record(record: dict[str, Any], source: str, position: str) -> QAExample:
    """A :class:`QAExample` from one flat record; ``position`` names it in messages until its id is known."""
    if not isinstance(record, dict):
        raise InputError(f"{source} {position}: expected an object with id, context, question, answers")
    if "id" not in record:
        raise InputError(f"{source} {position}: missing the field 'id'")
    qid = str(record["id"])
    where = f"{source} question id {qid}"
    for key in ("context", "question"):
        if not isinstance(record.get(key), str):
            raise InputError(
                f"{where}: missing the field '{key}'" if key not in record else f"{where}: '{key}' is not text"
            )
    texts = starts = None
    if record.get("answers") is not None:
        texts, starts = _answers(record["answers"], where)
    impossible = record.get("is_impossible")
    return QAExample(
        qid,
        str(record.get("title") or ""),
        record["context"],
        record["question"],
        texts,
        starts,
        source,
        None if impossible is None else bool(impossible),
    )


def read_file(path: str, split: str) -> list[QAExample]:
    """The questions of one data file (official SQuAD JSON, or json lines / a JSON list of flat records)."""
    source = f"{SPLIT_FLAGS[split]} {path}"
    records = _records(_load_json_or_lines(path, source), source)
    return [example_from_record(record, source, position) for record, position in records]


def load_from_hub(name: str, config_name: str | None, **kwargs: Any) -> dict[str, list[QAExample]]:
    """The splits of a hub dataset with SQuAD's columns, as examples. The hub is often out of reach (offline
    machines, firewalls): that ends as one line saying how to give the files instead."""
    hub_name = HUB_NAMES.get(name, name)
    instead = (
        "Give the official SQuAD files instead: --train_file train-v1.1.json --validation_file dev-v1.1.json "
        "(or --data_dir)"
    )
    with hub_errors(f"--dataset_name {name}", hub_name, instead):
        raw = load_hub_dataset(hub_name, config_name, **kwargs)
    splits = {}
    for split, dataset in raw.items():
        source = f"the dataset {hub_name} ({split})"
        key = "validation" if split in ("dev", "valid") else split
        splits[key] = [example_from_record(row, source, f"row {n}") for n, row in enumerate(dataset)]
    return splits


def check_examples(examples: list[QAExample], split: str, version_2: bool) -> None:
    """Refuse what would train or score wrongly, naming the flag, file and question id."""
    if not examples:
        raise InputError(f"{SPLIT_FLAGS[split]}: no questions found")
    source = examples[0].source
    labelled = [e for e in examples if e.labelled]
    needs_answers = split != "test" or labelled  # a test file is scored only if it carries answers throughout
    seen: set[str] = set()
    for example in examples:
        where = f"{example.source} question id {example.id}"
        if example.id in seen:
            raise InputError(f"{where}: the id is used twice (predictions are keyed by id)")
        seen.add(example.id)
        if not example.labelled:
            if needs_answers:
                use = "to train on" if split == "train" else "to score"
                raise InputError(f"{where}: missing the field 'answers' (every question needs its answers {use})")
            continue
        if example.is_impossible and example.answers:
            raise InputError(f"{where}: is_impossible is true but the question has answers")
        if example.unanswerable and not version_2:
            raise InputError(
                f"{where}: the question has no answer (is_impossible or empty answers), as in SQuAD 2.0; pass "
                "--version_2_with_negative to train and score unanswerable questions"
            )
        for text, start in zip(example.answers, example.answer_starts, strict=True):
            if not isinstance(text, str) or not text:
                raise InputError(f"{where}: an answer text is empty or not text ({text!r})")
            if not isinstance(start, int) or isinstance(start, bool):
                raise InputError(f"{where}: answer_start {start!r} is not an integer")
            found = example.context[start : start + len(text)] if start >= 0 else None
            if found != text:
                raise InputError(
                    f"{where}: the answer {text!r} is not at answer_start {start} of its context (the context has "
                    f"{found!r} there)"
                )
    logger.info(
        f"{source}: {len(examples)} questions"
        + (f", {sum(e.unanswerable for e in labelled)} without an answer" if version_2 and labelled else "")
    )
