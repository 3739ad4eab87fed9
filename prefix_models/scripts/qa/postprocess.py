"""From start/end logits per window to one answer text per question (``run_qa.py``'s post-processing).

For each question, every window proposes spans from its ``n_best_size`` highest start and end logits: a
span must lie in the context, end at or after its start and be at most ``max_answer_length`` tokens; its
score is start logit + end logit, its text the context between the characters of its first and last token
(a span of zero-width tokens alone, which byte-level BPE makes of a lone space, has no text and is skipped).
The ``n_best_size`` best spans over all windows are the n-best list; the best one is the answer.

SQuAD 2.0 (``version_2``): the null answer scores the ``[CLS]`` start + end logits (the lowest over the
question's windows, as the BERT and transformers scripts take it). ``null_odds`` is that score minus the
best span's; above ``null_score_diff_threshold`` the answer is empty (the question is judged unanswerable).
The official evaluation script reads ``null_odds`` as ``--na-prob-file``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .features import QAFeatures


@dataclass(frozen=True)
class AnswerOptions:
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2: bool = False
    null_score_diff_threshold: float = 0.0


@dataclass
class Answers:
    """The answer text per question id, its n-best list and (SQuAD 2.0) its null odds."""

    predictions: dict[str, str] = field(default_factory=dict)
    nbest: dict[str, list[dict]] = field(default_factory=dict)
    null_odds: dict[str, float] = field(default_factory=dict)


def _top(values: np.ndarray, n: int) -> np.ndarray:
    # A stable sort: equal logits keep token order, so results do not depend on the sort's whims.
    return np.argsort(-values, kind="stable")[:n]


def answers_from_logits(
    features: QAFeatures, start_logits: np.ndarray, end_logits: np.ndarray, options: AnswerOptions
) -> Answers:
    """Answers for ``features.examples`` from the logits of their windows (rows in window order; the Trainer
    pads rows of shorter windows with -100, positions past a window's own tokens are never read)."""
    if len(start_logits) != len(features.offsets):
        raise ValueError(f"{len(start_logits)} rows of logits for {len(features.offsets)} windows")
    windows_of = defaultdict(list)
    for window, example in enumerate(features.example_index):
        windows_of[int(example)].append(window)
    answers = Answers()
    for index, example in enumerate(features.examples):
        candidates, null_score = [], None
        for window in windows_of[index]:
            offsets = features.offsets[window]
            length = len(offsets)
            start, end = start_logits[window][:length], end_logits[window][:length]
            cls = int(features.cls_index[window])
            window_null = float(start[cls] + end[cls])
            null_score = window_null if null_score is None else min(null_score, window_null)
            for s in _top(start, options.n_best_size):
                if offsets[s][0] < 0:
                    continue  # not a context token: the question, a special token
                for e in _top(end, options.n_best_size):
                    if offsets[e][0] < 0 or e < s or e - s + 1 > options.max_answer_length:
                        continue
                    first, last = int(offsets[s][0]), int(offsets[e][1])
                    if last <= first:
                        continue  # only zero-width tokens (byte-level BPE's lone "Ġ"): no text to answer with
                    candidates.append(
                        {
                            "text": example.context[first:last],
                            "score": float(start[s] + end[e]),
                            "start_logit": float(start[s]),
                            "end_logit": float(end[e]),
                            "offsets": [first, last],
                        }
                    )
        candidates.sort(key=lambda c: c["score"], reverse=True)
        best = candidates[0] if candidates else None
        nbest = candidates[: options.n_best_size]
        if options.version_2:
            null = null_score if null_score is not None else 0.0
            # Without any valid span the question can only be unanswerable: the best span scores as nothing.
            diff = null - (best["score"] if best else 0.0)
            answers.null_odds[example.id] = diff
            answers.predictions[example.id] = (
                "" if best is None or diff > options.null_score_diff_threshold else best["text"]
            )
            nbest = sorted(
                [*nbest, {"text": "", "score": null, "start_logit": None, "end_logit": None, "offsets": None}],
                key=lambda c: c["score"],
                reverse=True,
            )[: options.n_best_size]
        else:
            answers.predictions[example.id] = best["text"] if best else ""
        scores = np.array([c["score"] for c in nbest], dtype=np.float64)
        probabilities = np.exp(scores - scores.max()) if len(scores) else scores
        probabilities = probabilities / probabilities.sum() if len(scores) else probabilities
        answers.nbest[example.id] = [{**c, "probability": float(p)} for c, p in zip(nbest, probabilities, strict=True)]
    return answers
