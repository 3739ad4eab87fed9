"""Words -> sub-word features (windows, label alignment), and token logits -> one tag per word,
entity scores (conlleval's counting, plus seqeval's strict mode) and CoNLL prediction files.

Long sentences are cut into consecutive, non-overlapping windows of whole words, so every word of
every sentence is in exactly one feature and gets exactly one prediction (from its first
sub-word). Each feature remembers its sentence, the index of its first word and the word of each
position, which is what re-aligns predictions to words.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from transformers import EvalPrediction, PreTrainedTokenizerBase

from ...errors import InputError

if TYPE_CHECKING:
    from datasets import Dataset

IGNORE = -100
NO_WORD = -1


def b_to_i(labels: Sequence[str]) -> list[int]:
    """For each label id, the id of its inside tag (B-X -> I-X, S-X -> I-X when present), else itself:
    what the second and later sub-words of a word are labelled with ``label_all_tokens``."""
    index = {label: i for i, label in enumerate(labels)}
    return [index.get(f"I-{label[2:]}", i) if label[:2] in ("B-", "S-") else i for i, label in enumerate(labels)]


def word_windows(lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Split words with ``lengths`` sub-words into consecutive ``[start, end)`` windows of at most
    ``budget`` sub-words (a single longer word gets a window of its own and is cut later)."""
    windows, start, used = [], 0, 0
    for i, length in enumerate(lengths):
        if i > start and used + length > budget:
            windows.append((start, i))
            start, used = i, 0
        used += length
    windows.append((start, len(lengths)))
    return windows


def tokenize(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    label_to_id: dict[str, int] | None,
    max_seq_length: int,
    label_all_tokens: bool = False,
    pad_to_max_length: bool = False,
) -> Dataset:
    """Features with ``input_ids``, ``attention_mask`` (``token_type_ids``), ``labels`` (first sub-word
    of each word; ``-100`` elsewhere unless ``label_all_tokens``), and the alignment columns
    ``sentence_index``, ``word_offset`` and ``word_ids``."""
    budget = max_seq_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise InputError(f"--max_seq_length {max_seq_length} leaves no room for words after the special tokens")
    inside = b_to_i(list(label_to_id)) if label_to_id else None
    unk = tokenizer.unk_token or tokenizer.pad_token

    def encode(batch: dict[str, list]) -> dict[str, list]:
        pieces = tokenizer(batch["tokens"], is_split_into_words=True, add_special_tokens=False)
        windows, inputs = [], []
        for index, (words, tags) in enumerate(zip(batch["tokens"], batch["tags"], strict=True)):
            counts = np.bincount([w for w in pieces.word_ids(index) if w is not None], minlength=len(words))
            # A word the tokenizer turns into nothing (e.g. a lone control character) still needs a
            # prediction: it stands in as the unknown token.
            words = [word if count else unk for word, count in zip(words, counts, strict=True)]
            for start, end in word_windows([max(int(c), 1) for c in counts], budget):
                windows.append((batch["sentence_index"][index], start, tags[start:end] if tags else None))
                inputs.append(words[start:end])
        encoded = tokenizer(
            inputs,
            is_split_into_words=True,
            truncation=True,
            max_length=max_seq_length,
            padding="max_length" if pad_to_max_length else False,
        )
        out = {key: list(values) for key, values in encoded.items()}
        out.update(sentence_index=[], word_offset=[], word_ids=[], labels=[])
        for row, (sentence, start, tags) in enumerate(windows):
            word_ids = [NO_WORD if w is None else w for w in encoded.word_ids(row)]
            labels, previous = [], NO_WORD
            for word in word_ids:
                if word == NO_WORD or not tags or label_to_id is None:
                    labels.append(IGNORE)
                elif word != previous:
                    labels.append(label_to_id[tags[word]])
                else:
                    labels.append(inside[label_to_id[tags[word]]] if label_all_tokens else IGNORE)
                previous = word
            out["sentence_index"].append(sentence)
            out["word_offset"].append(start)
            out["word_ids"].append(word_ids)
            out["labels"].append(labels)
        return out

    indexed = dataset.map(lambda _, i: {"sentence_index": i}, with_indices=True)
    return indexed.map(encode, batched=True, remove_columns=indexed.column_names, desc="Tokenizing")


def align_predictions(features: Dataset, predicted_ids: np.ndarray, lengths: Sequence[int]) -> list[list[int]]:
    """One label id per word of every sentence (``lengths``: words per sentence), read from each
    word's first sub-word."""
    words: list[list[int | None]] = [[None] * length for length in lengths]
    for row, (sentence, offset, word_ids) in enumerate(
        zip(features["sentence_index"], features["word_offset"], features["word_ids"], strict=True)
    ):
        previous = NO_WORD
        for position, word in enumerate(word_ids):
            if word != NO_WORD and word != previous:
                words[sentence][offset + word] = int(predicted_ids[row, position])
            previous = word
    missing = [(s, w) for s in range(len(lengths)) for w, p in enumerate(words[s]) if p is None]
    if missing:  # cannot happen with the windows above; a guard against silently scoring fewer words
        raise RuntimeError(f"{len(missing)} words received no prediction (first: sentence {missing[0][0]})")
    return words  # type: ignore[return-value]


def seqeval_scores(
    gold: list[list[str]], predicted: list[list[str]], scheme: str, entity_level: bool = False
) -> dict[str, float]:
    """Entity-level scores of ``predicted`` against ``gold``, and token accuracy.

    The headline ``precision`` / ``recall`` / ``f1`` (and, with ``entity_level``, ``<TYPE>_precision``
    ... ``<TYPE>_number`` per entity type) are counted as conlleval counts them (seqeval's default
    mode): the numbers the CoNLL shared tasks, transformers' ``run_ner.py`` and P-tuning v2 report,
    and what ``predictions.txt`` re-scores to. An ill-formed span such as ``I-PER`` after ``O`` still
    counts as an entity there. ``strict_precision`` / ``strict_recall`` / ``strict_f1`` are seqeval's
    strict mode in ``scheme``, where only well-formed spans count.
    """
    # seqeval (and the scikit-learn it loads) when a score is asked for, not when a script's --help is
    from seqeval import metrics as seqeval_metrics
    from seqeval import scheme as seqeval_scheme

    scheme_class = {"IOB1": seqeval_scheme.IOB1, "IOB2": seqeval_scheme.IOB2, "BIOES": seqeval_scheme.IOBES}[scheme]
    strict = {"mode": "strict", "scheme": scheme_class, "zero_division": 0}
    conlleval = {"zero_division": 0}
    scores = {
        "precision": float(seqeval_metrics.precision_score(gold, predicted, **conlleval)),
        "recall": float(seqeval_metrics.recall_score(gold, predicted, **conlleval)),
        "f1": float(seqeval_metrics.f1_score(gold, predicted, **conlleval)),
        "accuracy": float(seqeval_metrics.accuracy_score(gold, predicted)),
        "strict_precision": float(seqeval_metrics.precision_score(gold, predicted, **strict)),
        "strict_recall": float(seqeval_metrics.recall_score(gold, predicted, **strict)),
        "strict_f1": float(seqeval_metrics.f1_score(gold, predicted, **strict)),
    }
    if entity_level:
        report = seqeval_metrics.classification_report(gold, predicted, output_dict=True, **conlleval)
        for kind, values in report.items():
            if not kind.endswith(" avg"):
                scores.update(
                    {
                        f"{kind}_precision": float(values["precision"]),
                        f"{kind}_recall": float(values["recall"]),
                        f"{kind}_f1": float(values["f1-score"]),
                        f"{kind}_number": int(values["support"]),
                    }
                )
    return scores


def predicted_tags(features: Dataset, logits: np.ndarray, sentences: Dataset, labels: Sequence[str]) -> list[list[str]]:
    words = align_predictions(features, np.argmax(logits, axis=-1), [len(tokens) for tokens in sentences["tokens"]])
    return [[labels[i] for i in sentence] for sentence in words]


def metrics_function(
    features: Dataset, sentences: Dataset, labels: Sequence[str], scheme: str, entity_level: bool
) -> Callable[[EvalPrediction], dict[str, float]]:
    """``compute_metrics`` for the Trainer: predictions re-aligned to words, scored against the gold tags."""
    gold = sentences["tags"]

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return seqeval_scores(gold, predicted_tags(features, logits, sentences, labels), scheme, entity_level)

    return compute


def write_conll(path: str | os.PathLike, sentences: Dataset, predicted: list[list[str]]) -> None:
    """``token gold predicted`` per line (``token predicted`` without gold), a blank line after each
    sentence: the format conlleval and :func:`prefix_models.scripts.ner.data.read_conll` read back.
    Whitespace inside a token becomes ``_`` so that the columns stay whitespace-separated."""
    with open(path, "w", encoding="utf-8") as handle:
        for tokens, gold, tags in zip(sentences["tokens"], sentences["tags"], predicted, strict=True):
            for i, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
                token = "_".join(token.split()) or "_"
                handle.write(f"{token} {gold[i]} {tag}\n" if gold else f"{token} {tag}\n")
            handle.write("\n")
