"""The official GLUE / SuperGLUE metrics, computed locally (no metric download at run time).

Flat tasks score one prediction per example. MultiRC and ReCoRD are *grouped*: the model scores
(question, answer) or (query, candidate) pairs, and the metrics aggregate per question.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ...errors import InputError
from ..qa.metrics import f1_score as squad_f1
from ..qa.metrics import normalize_answer


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(predictions) == np.asarray(labels)).mean())


def classification_metrics(metric_names: Sequence[str], predictions: np.ndarray, labels: np.ndarray) -> dict:
    """Metrics of a flat task: any of ``accuracy``, ``f1`` (binary, positive class 1),
    ``macro_f1``, ``matthews_correlation``, ``pearson``, ``spearmanr``, ``combined_score``."""
    # scipy and scikit-learn load when a score is asked for, not when a script's --help is
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score, matthews_corrcoef

    predictions, labels = np.asarray(predictions), np.asarray(labels)
    results: dict[str, float] = {}
    for name in metric_names:
        if name == "accuracy":
            results[name] = accuracy(predictions, labels)
        elif name == "f1":
            results[name] = float(f1_score(labels, predictions, zero_division=0))
        elif name == "macro_f1":
            results[name] = float(f1_score(labels, predictions, average="macro", zero_division=0))
        elif name == "matthews_correlation":
            results[name] = float(matthews_corrcoef(labels, predictions))
        elif name == "pearson":
            results[name] = float(pearsonr(predictions, labels)[0])
        elif name == "spearmanr":
            results[name] = float(spearmanr(predictions, labels)[0])
        else:
            raise InputError(f"unknown metric {name!r}")
    if len(results) > 1:
        results["combined_score"] = float(np.mean(list(results.values())))
    return results


def multirc_metrics(predictions: np.ndarray, labels: np.ndarray, question_ids: Sequence) -> dict:
    """MultiRC: ``f1a`` = binary F1 over all answer options; ``exact_match`` = share of questions
    whose every answer option is labelled correctly."""
    from sklearn.metrics import f1_score

    predictions, labels = np.asarray(predictions), np.asarray(labels)
    per_question: dict = defaultdict(list)
    for prediction, label, question in zip(predictions, labels, question_ids, strict=True):
        per_question[question].append(prediction == label)
    exact = np.mean([all(correct) for correct in per_question.values()])
    f1a = f1_score(labels, predictions, zero_division=0)
    return {"f1a": float(f1a), "exact_match": float(exact), "combined_score": float((f1a + exact) / 2)}


def token_f1(prediction: str, answer: str) -> float:
    """SQuAD 1.1's token F1, which ReCoRD and MultiRC's answers are scored by (``scripts/qa/metrics.py``)."""
    return squad_f1(prediction, answer, empty_matches_empty=False)


def record_metrics(predicted_answers: dict, gold_answers: dict) -> dict:
    """ReCoRD: per query, max over the acceptable answers of token F1 and of exact match."""
    f1s, exacts = [], []
    for query, answers in gold_answers.items():
        prediction = predicted_answers.get(query, "")
        f1s.append(max(token_f1(prediction, answer) for answer in answers))
        exacts.append(max(float(normalize_answer(prediction) == normalize_answer(answer)) for answer in answers))
    f1, exact = float(np.mean(f1s)), float(np.mean(exacts))
    return {"f1": f1, "exact_match": exact, "combined_score": (f1 + exact) / 2}
