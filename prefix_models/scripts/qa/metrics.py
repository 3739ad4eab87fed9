"""The SQuAD scores, computed as the official evaluation scripts compute them.

Both normalise an answer the same way: lower case, drop punctuation (``string.punctuation``), drop the
articles a / an / the, collapse whitespace. Exact match compares the normalised strings; F1 counts shared
tokens of the normalised strings. Each question takes its best score over its gold answers, and the
split's score is the mean in percent.

- SQuAD 1.1 (``evaluate-v1.1.py``): ``exact_match`` and ``f1``. An empty prediction or gold shares no token
  (F1 0).
- SQuAD 2.0 (``evaluate-v2.0.py``): ``exact``, ``f1`` and ``total``, and the same over the answerable
  (``HasAns_*``) and unanswerable (``NoAns_*``) questions where there are some. Gold answers that
  normalise to nothing are dropped; a question left with none has the gold ``[""]``, which only the empty
  prediction matches (F1 is 1 when both sides are empty, 0 when one is).
"""

from __future__ import annotations

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_score(prediction: str, gold: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, empty_matches_empty: bool) -> float:
    """Token F1. ``empty_matches_empty``: SQuAD 2.0's rule that two empty answers agree (F1 1)."""
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if empty_matches_empty and (not predicted or not wanted):
        return float(predicted == wanted)
    shared = sum((collections.Counter(predicted) & collections.Counter(wanted)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(wanted)
    return 2 * precision * recall / (precision + recall)


def squad_v1(gold: dict[str, list[str]], predictions: dict[str, str]) -> dict[str, float]:
    """``exact_match`` and ``f1`` in percent; a question without a prediction scores 0, as in the official script."""
    exact = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        exact += max(exact_score(predictions[qid], a) for a in answers)
        f1 += max(f1_score(predictions[qid], a, empty_matches_empty=False) for a in answers)
    return {"exact_match": 100.0 * exact / len(gold), "f1": 100.0 * f1 / len(gold)}


def squad_v2(gold: dict[str, list[str]], predictions: dict[str, str]) -> dict[str, float | int]:
    """``exact``, ``f1``, ``total`` and their ``HasAns_`` / ``NoAns_`` parts, in percent. A question is
    answerable when it has any gold answer; one without a prediction scores 0."""
    exact, f1 = {}, {}
    for qid, answers in gold.items():
        kept = [a for a in answers if normalize_answer(a)] or [""]
        prediction = predictions.get(qid)
        if prediction is None:
            exact[qid] = f1[qid] = 0.0
            continue
        exact[qid] = float(max(exact_score(prediction, a) for a in kept))
        f1[qid] = max(f1_score(prediction, a, empty_matches_empty=True) for a in kept)

    def part(ids: list[str], prefix: str = "") -> dict[str, float | int]:
        return {
            f"{prefix}exact": 100.0 * sum(exact[q] for q in ids) / len(ids),
            f"{prefix}f1": 100.0 * sum(f1[q] for q in ids) / len(ids),
            f"{prefix}total": len(ids),
        }

    scores = part(list(gold))
    answerable = [q for q, answers in gold.items() if answers]
    unanswerable = [q for q, answers in gold.items() if not answers]
    if answerable:
        scores.update(part(answerable, "HasAns_"))
    if unanswerable:
        scores.update(part(unanswerable, "NoAns_"))
    return scores
