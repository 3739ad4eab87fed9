"""Cutting each question + context into model inputs (windows) for ``run_qa.py``.

A context longer than ``max_seq_length`` leaves room for is cut into overlapping windows, ``doc_stride``
tokens shared between neighbours (the tokenizer's ``stride``, as transformers' ``run_qa.py`` uses
``--doc_stride``), so every answer lies whole in at least one window. For training each window is labelled
with the token positions of the question's first answer, or with its ``[CLS]`` position when the answer is
not wholly inside it (and for an unanswerable question). For scoring each window keeps which question it
came from and the character span in the context of each of its context tokens, which is how predicted
token positions become answer text (``postprocess.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors import InputError
from .data import QAExample

if TYPE_CHECKING:  # datasets loads when data does, not for a script's --help
    import datasets

CHUNK = 1000  # questions tokenized at once: bounds the Python lists alive at a time on SQuAD-sized data


@dataclass
class QAFeatures:
    """The windows of one split: ``dataset`` is what the model reads (``input_ids``, ``attention_mask``,
    ``token_type_ids`` where the tokenizer makes them, and ``start_positions`` / ``end_positions`` for
    training); the rest is per window, in the same order."""

    examples: list[QAExample]
    dataset: datasets.Dataset
    example_index: np.ndarray  # the question each window belongs to
    offsets: list[np.ndarray]  # (tokens, 2) character spans of the context tokens; -1 for every other token
    cls_index: np.ndarray  # where the [CLS] token sits: the "no answer" position


def check_lengths(examples: list[QAExample], tokenizer, max_seq_length: int, doc_stride: int) -> None:
    """Every question must leave room for more context than the windows share, or no window can move on."""
    if doc_stride < 0:
        raise InputError(f"--doc_stride must be 0 or more, got {doc_stride}")
    special = tokenizer.num_special_tokens_to_add(pair=True)
    for start in range(0, len(examples), CHUNK):
        chunk = examples[start : start + CHUNK]
        lengths = [
            len(ids) for ids in tokenizer([e.question.lstrip() for e in chunk], add_special_tokens=False)["input_ids"]
        ]
        for example, length in zip(chunk, lengths, strict=True):
            room = max_seq_length - special - length
            if room <= doc_stride:
                raise InputError(
                    f"{example.source} question id {example.id}: the question takes {length} tokens, which leaves "
                    f"{max(room, 0)} of --max_seq_length {max_seq_length} for the context, not more than --doc_stride "
                    f"{doc_stride}; raise --max_seq_length or lower --doc_stride"
                )


def _answer_positions(offsets, sequence_ids, context_id: int, start_char: int, end_char: int) -> tuple[int, int] | None:
    """The first and last token of the answer span ``[start_char, end_char)`` in this window, or None when the
    window does not hold it whole."""
    context = [i for i, s in enumerate(sequence_ids) if s == context_id]
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    # The last context token starting at or before the answer, and the first one ending at or after it.
    start = max(i for i in context if offsets[i][0] <= start_char)
    end = min(i for i in context if offsets[i][1] >= end_char)
    return start, max(start, end)


def prepare_features(
    examples: list[QAExample],
    tokenizer,
    max_seq_length: int,
    doc_stride: int,
    labels: bool,
    pad_to_max_length: bool = False,
) -> QAFeatures:
    """The windows of ``examples``; with ``labels``, each window's ``start_positions`` / ``end_positions``."""
    from datasets import Dataset, concatenate_datasets

    # Questions go first, as in transformers' run_qa.py, unless the tokenizer pads on the left.
    question_first = tokenizer.padding_side == "right"
    context_id = 1 if question_first else 0
    parts, example_index, all_offsets, cls_positions = [], [], [], []
    for chunk_start in range(0, len(examples), CHUNK):
        chunk = examples[chunk_start : chunk_start + CHUNK]
        questions = [e.question.lstrip() for e in chunk]  # leading spaces waste window room
        contexts = [e.context for e in chunk]
        encoded = tokenizer(
            questions if question_first else contexts,
            contexts if question_first else questions,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length" if pad_to_max_length else False,
        )
        mapping = encoded.pop("overflow_to_sample_mapping")
        offset_rows = encoded.pop("offset_mapping")
        columns = {key: list(value) for key, value in encoded.items()}
        if labels:
            columns["start_positions"], columns["end_positions"] = [], []
        for window, (sample, offsets) in enumerate(zip(mapping, offset_rows, strict=True)):
            example = chunk[sample]
            sequence_ids = encoded.sequence_ids(window)
            input_ids = encoded["input_ids"][window]
            cls = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
            spans = np.full((len(offsets), 2), -1, dtype=np.int32)
            for i, (s, e) in enumerate(offsets):
                if sequence_ids[i] == context_id:
                    spans[i] = (s, e)
            example_index.append(chunk_start + sample)
            all_offsets.append(spans)
            cls_positions.append(cls)
            if labels:
                positions = None
                if example.answers:  # the first answer, as SQuAD training does
                    start_char = example.answer_starts[0]
                    positions = _answer_positions(
                        offsets, sequence_ids, context_id, start_char, start_char + len(example.answers[0])
                    )
                start, end = positions or (cls, cls)
                columns["start_positions"].append(start)
                columns["end_positions"].append(end)
        parts.append(Dataset.from_dict(columns))
    dataset = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    return QAFeatures(examples, dataset, np.asarray(example_index), all_offsets, np.asarray(cls_positions))
