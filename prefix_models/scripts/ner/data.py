"""Loading sequence-labelling data (CoNLL column files, json lines, the hub) into splits of
``{"id", "tokens", "tags"}`` rows with string tags, and checking the tags against a scheme.

Every problem is reported with the file and line it comes from, before any model is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InputError
from ..arguments import SPLIT_FLAGS
from ..hub import hub_errors, load_hub_dataset

if TYPE_CHECKING:  # datasets loads when data does, not for a script's --help
    from datasets import DatasetDict

logger = logging.getLogger(__name__)

SCHEMES = ("IOB1", "IOB2", "BIOES")
_TAG = re.compile(r"^([BIES])-(.+)$")
DOCSTART = "-DOCSTART-"
# --data_dir: the file names each split goes by in the common CoNLL releases.
DATA_DIR_FILES = {
    "train": ("train.txt", "train.conll", "eng.train", "train.jsonl", "train.json"),
    "validation": (
        "dev.txt",
        "valid.txt",
        "validation.txt",
        "dev.conll",
        "eng.testa",
        "dev.jsonl",
        "dev.json",
        "validation.jsonl",
        "validation.json",
    ),
    "test": ("test.txt", "test.conll", "eng.testb", "test.jsonl", "test.json"),
}
# --task_name: the reference's datasets on the hub (used when online).
HUB_TASKS = {"conll2003": "eriktks/conll2003", "conll2004": "tner/conll2004", "ontonotes": "tner/ontonotes5"}


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str] | None
    lines: list[int]  # the source line of each token (0 where the source has no lines)
    source: str


def read_conll(path: str | Path, tag_column: int = -1, flag: str = "--data") -> list[Sentence]:
    """Sentences of a CoNLL column file: one token per line, the token in column 0 and the tag in
    ``tag_column``; blank lines end sentences, ``-DOCSTART-`` lines end documents. Fields are
    separated by tabs if the line has any, else by runs of spaces. A file with one column has no
    tags (a file to predict on)."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    width = first_line = None
    where = f"{flag} {path}"

    def end_sentence() -> None:
        if tokens:
            sentences.append(Sentence(list(tokens), list(tags) if width > 1 else None, list(lines), where))
            tokens.clear(), tags.clear(), lines.clear()

    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
                if not fields or not any(fields):
                    end_sentence()
                    continue
                if fields[0] == DOCSTART:
                    end_sentence()
                    continue
                if width is None:
                    width, first_line = len(fields), number
                    if width > 1 and (not -width <= tag_column < width or tag_column in (0, -width)):
                        raise InputError(
                            f"{where}, line {number}: --tag_column {tag_column} does not name a tag column; the file "
                            f"has {width} columns (token first), so use 1..{width - 1} or -1 for the last"
                        )
                if len(fields) != width:
                    raise InputError(
                        f"{where}, line {number}: expected {width} columns (as on line {first_line}), found "
                        f"{len(fields)}: {line!r}"
                    )
                tokens.append(fields[0])
                lines.append(number)
                if width > 1:
                    tags.append(fields[tag_column])
    except UnicodeDecodeError as error:
        raise InputError(f"{where} is not UTF-8 text (byte {error.start}): {error.reason}") from error
    if width is not None:
        end_sentence()
    return sentences


def read_json_lines(path: str | Path, tokens_key: str, tags_key: str, flag: str = "--data") -> list[Sentence]:
    """Sentences of a json-lines file (or a json list) of ``{"tokens": [...], "ner_tags": [...]}``."""
    where = f"{flag} {path}"
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{where} is not UTF-8 text (byte {error.start}): {error.reason}") from error
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = [(0, record) for record in json.loads(text)]
        except json.JSONDecodeError as error:
            raise InputError(f"{where}, line {error.lineno}: not valid json: {error.msg}") from error
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise InputError(f"{where}, line {number}: not valid json: {error.msg}") from error
    sentences = []
    for number, record in records:
        at = f"{where}, line {number}" if number else f"{where}, record {len(sentences) + 1}"
        if not isinstance(record, dict) or tokens_key not in record:
            raise InputError(f"{at}: expected an object with a {tokens_key!r} list (choose with --text_column_name)")
        tokens = record[tokens_key]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"{at}: {tokens_key!r} must be a list of strings, got {tokens!r:.80}")
        tags = record.get(tags_key)
        if tags is not None:
            if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
                raise InputError(f"{at}: {tags_key!r} must be a list of tag strings (or label ids), got {tags!r:.80}")
            if len(tags) != len(tokens):
                raise InputError(f"{at}: {len(tokens)} tokens but {len(tags)} tags")
            tags = [str(t) for t in tags]
        if tokens:
            sentences.append(Sentence(tokens, tags, [number] * len(tokens), where))
    return sentences


def read_file(path: str, split: str, tag_column: int, tokens_key: str, tags_key: str) -> list[Sentence]:
    flag = SPLIT_FLAGS[split]
    if not os.path.isfile(path):
        raise InputError(f"{flag} {path} does not exist")
    if Path(path).suffix.lower() in (".json", ".jsonl"):
        sentences = read_json_lines(path, tokens_key, tags_key, flag)
    else:
        sentences = read_conll(path, tag_column, flag)
    if not sentences:
        raise InputError(f"{flag} {path} holds no sentences (it is empty or only blank/-DOCSTART- lines)")
    return sentences


def data_dir_files(data_dir: str) -> dict[str, str]:
    """The split files in a CoNLL-style folder (train.txt, dev.txt or valid.txt, test.txt, ...)."""
    if not os.path.isdir(data_dir):
        raise InputError(f"--data_dir {data_dir} is not a directory")
    files = {}
    for split, names in DATA_DIR_FILES.items():
        found = [name for name in names if os.path.isfile(os.path.join(data_dir, name))]
        if found:
            files[split] = os.path.join(data_dir, found[0])
    if not files:
        raise InputError(
            f"--data_dir {data_dir} holds none of the expected files: "
            + "; ".join(f"{split}: {' or '.join(names[:3])}" for split, names in DATA_DIR_FILES.items())
        )
    return files


def hub_label_names(name: str, **kwargs) -> list[str] | None:
    """Label names of a dataset whose tags are bare integers, from the ``dataset/label.json``
    (``{"O": 0, "B-PER": 1, ...}``) that tner-style datasets keep beside their data; None if absent."""
    if os.path.isdir(name):
        path = next(
            (p for p in (Path(name) / "dataset" / "label.json", Path(name) / "label.json") if p.is_file()), None
        )
    else:
        try:
            from huggingface_hub import hf_hub_download

            token = {"token": kwargs["token"]} if kwargs.get("token") else {}
            path = hf_hub_download(
                name, "dataset/label.json", repo_type="dataset", cache_dir=kwargs.get("cache_dir"), **token
            )
        except Exception:  # absent, offline or private: the caller asks for --label_names_file
            return None
    if path is None:
        return None
    try:
        label2id = json.loads(Path(path).read_text(encoding="utf-8"))
        names = sorted(label2id, key=label2id.get) if isinstance(label2id, dict) else list(label2id)
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f'{path} is not a label list (expected {{"O": 0, "B-PER": 1, ...}}): {error}') from error
    if isinstance(label2id, dict) and sorted(label2id.values()) != list(range(len(names))):
        raise InputError(f"{path}: label ids must be 0..{len(names) - 1}, got {sorted(label2id.values())}")
    return [str(n) for n in names]


def load_from_hub(
    dataset_name: str, config_name: str | None, tokens_key: str | None, tags_key: str | None, **kwargs
) -> tuple[dict[str, list[Sentence]], list[str] | None]:
    """Hub datasets (or a local dataset folder) with a list-of-tokens column and a tag column: the
    sentences of each split, and the dataset's label names in id order when it has them.

    Tags are strings, ``ClassLabel`` ids named by the dataset's features, or bare integers named by
    the dataset's ``dataset/label.json``; bare integers with no names stay label ids, for
    ``--label_names_file`` to name.
    """
    name = HUB_TASKS.get(dataset_name, dataset_name)
    fetched = f"the dataset {name}" + (f" (configuration {config_name})" if config_name else "")
    instead = (
        "Give the data as local files instead: --data_dir <a folder of CoNLL files (train.txt, dev.txt, "
        "test.txt)>, or --train_file/--validation_file (CoNLL or json lines)"
    )
    with hub_errors(f"--dataset_name {dataset_name}", fetched, instead):
        raw = load_hub_dataset(name, config_name, **kwargs)
    # The splits of a dataset share one schema: read the columns and label names once.
    first = next(iter(raw.values()))
    columns = first.column_names
    text = next((c for c in (tokens_key, "tokens", "words") if c in columns), columns[0])
    label = next((c for c in (tags_key, "ner_tags", "tags") if c in columns), columns[1])
    tag_feature = getattr(first.features[label], "feature", None)
    names = getattr(tag_feature, "names", None)
    if names is None and str(getattr(tag_feature, "dtype", "")).startswith(("int", "uint")):
        names = hub_label_names(name, **kwargs)
        if names is not None:
            logger.info(f"{dataset_name}: label names read from its label.json: {', '.join(names)}")
    splits = {}
    for split, dataset in raw.items():
        where = f"{dataset_name} ({split})"
        rows = []
        for row in dataset:
            if not row[text]:
                continue
            if names and any(not 0 <= t < len(names) for t in row[label]):
                raise InputError(
                    f"{where}: a label id in {row[label]} is outside the dataset's {len(names)} label names"
                )
            tags = [names[t] if names else str(t) for t in row[label]]
            rows.append(Sentence(row[text], tags, [0] * len(row[text]), where))
        splits["validation" if split in ("dev", "valid") else split] = rows
    return splits, names


def _split_tag(tag: str) -> tuple[str, str | None]:
    if tag == "O":
        return "O", None
    match = _TAG.match(tag)
    return (match.group(1), match.group(2)) if match else ("?", None)


def detect_scheme(sentences: Sequence[Sentence]) -> str:
    """BIOES if any S-/E- tag; else IOB2 if some B- opens an entity; else IOB1 if some I- does
    (in IOB1, B- only separates two adjacent entities of one type); else IOB2."""
    if {_split_tag(tag)[0] for s in sentences for tag in s.tags or ()} & {"S", "E"}:
        return "BIOES"
    opens_with_i = False
    for sentence in sentences:
        previous = ("O", None)
        for tag in sentence.tags or ():
            prefix, kind = _split_tag(tag)
            continues = previous[0] in ("B", "I") and previous[1] == kind
            if prefix == "B" and not continues:
                return "IOB2"
            opens_with_i = opens_with_i or (prefix == "I" and not continues)
            previous = (prefix, kind)
    return "IOB1" if opens_with_i else "IOB2"


def check_tags(sentences: Sequence[Sentence], scheme: str) -> None:
    """Every tag is ``O`` or ``<prefix>-<type>`` with a prefix the scheme has (error, naming file and
    line); ill-formed sequences such as I- after O in IOB2 are counted in one warning."""
    allowed = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES"}[scheme]
    odd: list[str] = []
    for sentence in sentences:
        previous = ("O", None)
        for tag, line in zip(sentence.tags or [], sentence.lines if sentence.tags else [], strict=True):
            prefix, kind = _split_tag(tag)
            if prefix != "O" and prefix not in allowed:
                at = f"{sentence.source}, line {line}" if line else sentence.source
                hint = "label ids need --label_names_file to name them" if tag.isdigit() else "set it with --tag_scheme"
                raise InputError(
                    f"{at}: tag {tag!r} is not in the {scheme} scheme; tags are 'O' or "
                    f"{'/'.join(f'{p}-' for p in allowed)}<type> ({hint})"
                )
            inside = previous[0] in ("B", "I") and previous[1] == kind
            if (scheme == "IOB2" and prefix == "I" and not inside) or (
                scheme == "BIOES" and prefix in ("I", "E") and not inside
            ):
                odd.append(f"{sentence.source}, line {line}: {tag} after {'-'.join(filter(None, previous))}")
            previous = (prefix, kind)
    if odd:
        logger.warning(
            f"{len(odd)} tag(s) do not follow the {scheme} scheme strictly and will not count as entities in "
            f"strict scoring; first: {odd[0]}"
        )


def label_list_from(sentences: Sequence[Sentence]) -> list[str]:
    """'O' first, then the tags grouped by entity type."""
    tags = {tag for s in sentences for tag in s.tags or ()}
    return sorted(tags, key=lambda tag: (tag != "O", _split_tag(tag)[1] or "", "BIES".find(_split_tag(tag)[0])))


def read_label_file(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise InputError(f"--label_names_file {path} does not exist")
    labels = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise InputError(f"--label_names_file {path} must list at least two distinct labels, one per line")
    return labels


def name_label_ids(splits: dict[str, list[Sentence]], labels: Sequence[str]) -> None:
    """Replace integer tags (label ids, as in json or hub data without tag names) by ``labels[id]``."""
    for sentences in splits.values():
        for sentence in sentences:
            if not sentence.tags or not all(tag.isdigit() and tag not in labels for tag in sentence.tags):
                continue
            for tag, line in zip(sentence.tags, sentence.lines, strict=True):
                if int(tag) >= len(labels):
                    at = f"{sentence.source}, line {line}" if line else sentence.source
                    raise InputError(
                        f"{at}: label id {tag} is out of range for the {len(labels)} labels in --label_names_file"
                    )
            sentence.tags = [labels[int(tag)] for tag in sentence.tags]


def check_labels(splits: dict[str, list[Sentence]], labels: Sequence[str], origin: str) -> None:
    """Every gold tag of every split is one the model knows (the first unknown one is named with its line)."""
    known = set(labels)
    for sentences in splits.values():
        for sentence in sentences:
            for tag, line in zip(sentence.tags or [], sentence.lines if sentence.tags else [], strict=True):
                if tag not in known:
                    at = f"{sentence.source}, line {line}" if line else sentence.source
                    raise InputError(
                        f"{at}: label {tag!r} is not among the labels {origin}: {list(labels)} (to allow it, "
                        "list every label in --label_names_file and train with it)"
                    )


def to_datasets(splits: dict[str, list[Sentence]]) -> DatasetDict:
    from datasets import Dataset, DatasetDict

    return DatasetDict(
        {
            split: Dataset.from_dict(
                {
                    "id": [str(i) for i in range(len(sentences))],
                    "tokens": [s.tokens for s in sentences],
                    "tags": [s.tags or [] for s in sentences],
                }
            )
            for split, sentences in splits.items()
        }
    )
