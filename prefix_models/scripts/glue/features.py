"""Normalised GLUE/SuperGLUE rows -> model features, predictions -> metrics and submission files."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import EvalPrediction, PreTrainedTokenizerBase

from .metrics import classification_metrics, multirc_metrics, record_metrics
from .tasks import MULTIPLE_CHOICE, MULTIRC, RECORD, REGRESSION, TaskSpec

if TYPE_CHECKING:
    from datasets import Dataset

# Columns the metrics and submissions need after tokenisation.
KEEP_COLUMNS = ("idx", "group", "candidate", "answers", "passage_idx", "question_idx", "answer_idx")


def tokenize(
    spec: TaskSpec, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, pad_to_max_length: bool
) -> Dataset:
    """Tokenise text pairs (or premise x choices for multiple choice); labels become ``labels``."""
    padding = "max_length" if pad_to_max_length else False

    def encode(batch: dict[str, list]) -> dict[str, list]:
        if spec.kind == MULTIPLE_CHOICE:
            firsts = [text for text, choices in zip(batch["text_a"], batch["choices"], strict=True) for _ in choices]
            seconds = [choice for choices in batch["choices"] for choice in choices]
            flat = tokenizer(firsts, seconds, truncation=True, max_length=max_seq_length, padding=padding)
            sizes = [len(choices) for choices in batch["choices"]]
            starts = np.cumsum([0, *sizes])
            return {
                key: [values[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)] for key, values in flat.items()
            }
        seconds = batch.get("text_b")
        if seconds is not None and all(text is None for text in seconds):
            seconds = None
        return tokenizer(batch["text_a"], seconds, truncation=True, max_length=max_seq_length, padding=padding)

    drop = [c for c in dataset.column_names if c not in KEEP_COLUMNS and c != "label"]
    encoded = dataset.map(encode, batched=True, remove_columns=drop, desc="Tokenizing")
    return encoded.rename_column("label", "labels")


class MultipleChoiceCollator:
    """Pad ``(num_choices, seq_len)`` features to the longest sequence in the batch."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        labels = [feature.pop("labels") for feature in features] if "labels" in features[0] else None
        num_choices = len(features[0]["input_ids"])
        keys = [k for k in features[0] if k in ("input_ids", "attention_mask", "token_type_ids")]
        flat = [{k: feature[k][i] for k in keys} for feature in features for i in range(num_choices)]
        batch = self.tokenizer.pad(flat, return_tensors="pt")
        batch = {k: v.view(len(features), num_choices, -1) for k, v in batch.items()}
        if labels is not None:
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch


def predicted_ids(spec: TaskSpec, logits: np.ndarray) -> np.ndarray:
    if isinstance(logits, tuple):
        logits = logits[0]
    return np.squeeze(logits, axis=-1) if spec.kind == REGRESSION else np.argmax(logits, axis=-1)


def record_answers(dataset: Dataset, logits: np.ndarray) -> dict[Any, str]:
    """ReCoRD: per query, the candidate whose 'True' score margin is highest."""
    margin = logits[:, 1] - logits[:, 0]
    best: dict[Any, tuple[float, str]] = {}
    for group, candidate, score in zip(dataset["group"], dataset["candidate"], margin, strict=True):
        if group not in best or score > best[group][0]:
            best[group] = (float(score), candidate)
    return {group: candidate for group, (_, candidate) in best.items()}


def metrics_function(spec: TaskSpec, dataset: Dataset) -> Callable[[EvalPrediction], dict[str, float]]:
    """``compute_metrics`` for the Trainer; grouped tasks read their groups from ``dataset``."""

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predictions = predicted_ids(spec, logits)
        if spec.kind == MULTIRC:
            return multirc_metrics(predictions, prediction.label_ids, dataset["group"])
        if spec.kind == RECORD:
            gold = {group: answers for group, answers in zip(dataset["group"], dataset["answers"], strict=True)}
            return record_metrics(record_answers(dataset, logits), gold)
        return classification_metrics(spec.metrics, predictions, prediction.label_ids)

    return compute


def write_predictions(
    spec: TaskSpec, dataset: Dataset, logits: np.ndarray, output_dir: str, split: str, benchmark: str
) -> list[str]:
    """Write transformers' ``predict_results_<task>.txt`` and the benchmark's submission file."""
    predictions = predicted_ids(spec, logits)
    suffix = "" if split == "test" else "_" + split.removeprefix("test_")
    written = []

    def label_text(value) -> str:
        if spec.kind == REGRESSION:
            return f"{float(value):.3f}"
        if spec.kind == MULTIPLE_CHOICE or not spec.labels:
            return str(int(value))
        return spec.labels[int(value)]

    path = os.path.join(output_dir, f"predict_results_{spec.name}{suffix}.txt")
    with open(path, "w") as handle:
        handle.write("index\tprediction\n")
        if spec.kind == RECORD:
            for query, answer in record_answers(dataset, logits).items():
                handle.write(f"{query}\t{answer}\n")
        else:
            for index, value in enumerate(predictions):
                handle.write(f"{index}\t{label_text(value)}\n")
    written.append(path)

    if benchmark == "glue":
        name = {"": spec.folder, "_mismatched": "MNLI-mm"}[suffix] if spec.name == "mnli" else spec.folder
        name = "MNLI-m" if spec.name == "mnli" and suffix == "" else name
        path = os.path.join(output_dir, f"{name}.tsv")
        numeric = spec.name in ("cola", "sst2", "mrpc", "qqp", "wnli", "stsb")
        with open(path, "w") as handle:
            handle.write("index\tprediction\n")
            for idx, value in zip(dataset["idx"], predictions, strict=True):
                text = label_text(value) if not numeric or spec.kind == REGRESSION else str(int(value))
                handle.write(f"{idx}\t{text}\n")
        written.append(path)
    elif benchmark == "super_glue":
        path = os.path.join(output_dir, f"{spec.folder}.jsonl")
        with open(path, "w") as handle:
            for record in _superglue_records(spec, dataset, logits, predictions):
                handle.write(json.dumps(record) + "\n")
        written.append(path)
    return written


def _superglue_records(spec: TaskSpec, dataset: Dataset, logits: np.ndarray, predictions: np.ndarray):
    """Records in the SuperGLUE leaderboard format (labels typed as in the data files)."""
    if spec.kind == RECORD:
        for query, answer in record_answers(dataset, logits).items():
            yield {"idx": query, "label": answer}
        return
    if spec.kind == MULTIRC:
        passages: dict = defaultdict(lambda: defaultdict(list))
        for p, q, a, value in zip(
            dataset["passage_idx"], dataset["question_idx"], dataset["answer_idx"], predictions, strict=True
        ):
            passages[p][q].append({"idx": a, "label": int(value)})
        for p, questions in passages.items():
            yield {
                "idx": p,
                "passage": {"questions": [{"idx": q, "answers": answers} for q, answers in questions.items()]},
            }
        return
    for idx, value in zip(dataset["idx"], predictions, strict=True):
        if spec.kind == MULTIPLE_CHOICE:
            label: Any = int(value)
        elif spec.labels == ("False", "True"):
            label = bool(value)
        else:
            label = spec.labels[int(value)]
        yield {"idx": idx, "label": label}
