"""The GLUE and SuperGLUE tasks: labels, metrics, and how a raw example becomes model input.

Every task's examples are normalised to a few columns, whatever their source (hub, official
files, csv/json):

* ``classification`` / ``regression``: ``idx``, ``text_a``, ``text_b`` (``None`` for single
  sentences), ``label`` (label id, or a float for regression; ``-1`` / NaN when unlabelled).
* ``multiple_choice`` (COPA): ``idx``, ``text_a``, ``choices`` (list of second segments), ``label``.
* ``multirc``: one row per (question, answer option): ``text_a`` passage, ``text_b`` question and
  answer, binary ``label``, ``group`` (question idx) plus passage/question/answer ids.
* ``record``: one row per (query, candidate entity): ``text_a`` passage, ``text_b`` query with the
  candidate filled in, binary ``label``, ``group`` (query idx), ``candidate``, ``answers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...errors import InputError

CLASSIFICATION, REGRESSION, MULTIPLE_CHOICE, MULTIRC, RECORD = (
    "classification",
    "regression",
    "multiple_choice",
    "multirc",
    "record",
)
BOOL_LABELS = ("False", "True")


@dataclass(frozen=True)
class TaskSpec:
    name: str  # --task_name
    benchmark: str  # "glue" or "super_glue": the hub dataset and the submission format
    folder: str  # the official download's folder (and submission file) name
    kind: str
    labels: tuple[str, ...] = ()  # label names in id order (hub order); () for regression/multiple choice
    metrics: tuple[str, ...] = ("accuracy",)
    best_metric: str = "accuracy"  # the one the best-epoch callback tracks
    pair: bool = True

    @property
    def num_labels(self) -> int:
        if self.kind == REGRESSION:
            return 1
        if self.kind == MULTIPLE_CHOICE:
            return 2
        return len(self.labels)

    @property
    def model_task(self) -> str:
        return "multiple_choice" if self.kind == MULTIPLE_CHOICE else "sequence_classification"


NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            "cola",
            "glue",
            "CoLA",
            CLASSIFICATION,
            ("unacceptable", "acceptable"),
            ("matthews_correlation",),
            "matthews_correlation",
            pair=False,
        ),
        TaskSpec("sst2", "glue", "SST-2", CLASSIFICATION, ("negative", "positive"), pair=False),
        TaskSpec(
            "mrpc",
            "glue",
            "MRPC",
            CLASSIFICATION,
            ("not_equivalent", "equivalent"),
            ("accuracy", "f1"),
            "combined_score",
        ),
        TaskSpec(
            "qqp", "glue", "QQP", CLASSIFICATION, ("not_duplicate", "duplicate"), ("accuracy", "f1"), "combined_score"
        ),
        TaskSpec("stsb", "glue", "STS-B", REGRESSION, (), ("pearson", "spearmanr"), "combined_score"),
        TaskSpec("mnli", "glue", "MNLI", CLASSIFICATION, NLI3),
        TaskSpec("qnli", "glue", "QNLI", CLASSIFICATION, NLI2),
        TaskSpec("rte", "glue", "RTE", CLASSIFICATION, NLI2),
        TaskSpec("wnli", "glue", "WNLI", CLASSIFICATION, ("not_entailment", "entailment")),
        TaskSpec("boolq", "super_glue", "BoolQ", CLASSIFICATION, BOOL_LABELS),
        TaskSpec(
            "cb",
            "super_glue",
            "CB",
            CLASSIFICATION,
            ("entailment", "contradiction", "neutral"),
            ("accuracy", "macro_f1"),
        ),
        TaskSpec("copa", "super_glue", "COPA", MULTIPLE_CHOICE),
        TaskSpec("wic", "super_glue", "WiC", CLASSIFICATION, BOOL_LABELS),
        TaskSpec("wsc", "super_glue", "WSC", CLASSIFICATION, BOOL_LABELS),
        TaskSpec("multirc", "super_glue", "MultiRC", MULTIRC, BOOL_LABELS, ("f1a", "exact_match"), "f1a"),
        TaskSpec("record", "super_glue", "ReCoRD", RECORD, BOOL_LABELS, ("f1", "exact_match"), "f1"),
    ]
}


def get_task(name: str) -> TaskSpec:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in TASKS:
        raise InputError(f"--task_name {name!r} is not a known task; known tasks: {', '.join(TASKS)}")
    return TASKS[key]


def _label_id(spec: TaskSpec, value: Any, where: str) -> int:
    """A raw label (name, bool, 0/1 string or int) as the task's label id."""
    if value is None or value == "" or value == -1:
        return -1
    if isinstance(value, bool):
        value = str(value)
    text = str(value)
    if text in spec.labels:
        return spec.labels.index(text)
    if text.lower() in ("true", "false") and spec.labels == BOOL_LABELS:
        return BOOL_LABELS.index(text.capitalize())
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(spec.labels):
        return int(text)
    raise InputError(
        f"{where}: label {value!r} is not a {spec.name} label; allowed: {list(spec.labels)} (or their ids)"
    )


# ---------------------------------------------------------------------------------------------
# SuperGLUE official (json lines) records -> normalised rows. The hub's flat records are first
# mapped to the same official shapes (see data.py), so this is the one place formats are read.
# ---------------------------------------------------------------------------------------------
def superglue_rows(spec: TaskSpec, record: dict, where: str) -> list[dict]:
    def need(container: dict, *keys: str):
        missing = [key for key in keys if key not in container]
        if missing:
            raise InputError(f"{where}: {spec.folder} record lacks field(s) {missing}")
        return [container[key] for key in keys]

    label = record.get("label")
    if spec.name == "boolq":
        question, passage = need(record, "question", "passage")
        return [_flat(record, question, passage, _label_id(spec, label, where))]
    if spec.name in ("cb", "rte"):
        premise, hypothesis = need(record, "premise", "hypothesis")
        return [_flat(record, premise, hypothesis, _label_id(spec, label, where))]
    if spec.name == "wic":
        word, first, second = need(record, "word", "sentence1", "sentence2")
        return [_flat(record, f"{word} : {first}", second, _label_id(spec, label, where))]
    if spec.name == "wsc":
        (text, target) = need(record, "text", "target")
        span1, span2 = need(target, "span1_text", "span2_text")
        return [_flat(record, text, f"{span2} refers to {span1}", _label_id(spec, label, where))]
    if spec.name == "copa":
        premise, first, second, question = need(record, "premise", "choice1", "choice2", "question")
        connective = "because" if question == "cause" else "so"
        choices = [f"{connective} {choice}" for choice in (first, second)]
        label_id = -1 if label is None else int(label)
        if label_id not in (-1, 0, 1):
            raise InputError(f"{where}: COPA label must be 0 or 1, got {label!r}")
        return [{"idx": record.get("idx", 0), "text_a": premise, "choices": choices, "label": label_id}]
    if spec.name == "multirc":
        (passage,) = need(record, "passage")
        text, questions = need(passage, "text", "questions")
        # The official passages carry "<b>Sent 1: </b>...<br>" markup; the model should not read it.
        text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
        rows = []
        for question in questions:
            for answer in question["answers"]:
                rows.append(
                    {
                        "idx": answer["idx"],
                        "text_a": text,
                        "text_b": f"{question['question']} {answer['text']}",
                        "label": _label_id(spec, answer.get("label"), where),
                        "group": question["idx"],
                        "passage_idx": record.get("idx", 0),
                        "question_idx": question["idx"],
                        "answer_idx": answer["idx"],
                    }
                )
        return rows
    if spec.name == "record":
        passage, queries = need(record, "passage", "qas")
        text = passage["text"]
        # Entity offsets are inclusive in the official release.
        candidates = list(dict.fromkeys(text[e["start"] : e["end"] + 1] for e in passage["entities"]))
        readable = text.replace("@highlight\n", "- ")
        rows = []
        for query in queries:
            answers = list(dict.fromkeys(answer["text"] for answer in query.get("answers", [])))
            for candidate in candidates:
                rows.append(
                    {
                        "idx": query["idx"],
                        "text_a": readable,
                        "text_b": query["query"].replace("@placeholder", candidate),
                        "label": int(candidate in answers) if answers else -1,
                        "group": query["idx"],
                        "candidate": candidate,
                        "answers": answers,
                    }
                )
        return rows
    raise InputError(f"{spec.name} is not a SuperGLUE task")


def _flat(record: dict, text_a: str, text_b: str | None, label: int) -> dict:
    return {"idx": record.get("idx", 0), "text_a": text_a, "text_b": text_b, "label": label}


# GLUE official TSV layouts: task -> (text_a column, text_b column, label column).
GLUE_COLUMNS: dict[str, tuple[str, str | None, str]] = {
    "cola": ("sentence", None, "label"),
    "sst2": ("sentence", None, "label"),
    "mrpc": ("#1 String", "#2 String", "Quality"),
    "qqp": ("question1", "question2", "is_duplicate"),
    "stsb": ("sentence1", "sentence2", "score"),
    "mnli": ("sentence1", "sentence2", "gold_label"),
    "qnli": ("question", "sentence", "label"),
    "rte": ("sentence1", "sentence2", "label"),
    "wnli": ("sentence1", "sentence2", "label"),
}
# CoLA's train/dev files have no header.
COLA_HEADERLESS = ("source", "label", "original_label", "sentence")


def glue_row(spec: TaskSpec, row: dict[str, str], index: int, where: str) -> dict:
    first, second, label_column = GLUE_COLUMNS[spec.name]
    idx = row.get("index", row.get("id", index))
    raw = row.get(label_column)
    if spec.kind == REGRESSION:
        try:
            label = float(raw) if raw not in (None, "") else float("nan")
        except ValueError as error:
            raise InputError(f"{where}: {label_column} must be a number, got {raw!r}") from error
    else:
        label = _label_id(spec, raw, where)
    return {
        "idx": int(idx) if str(idx).isdigit() else index,
        "text_a": row[first],
        "text_b": row[second] if second else None,
        "label": label,
    }
