"""The offline GLUE/SuperGLUE metrics on predictions whose scores are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefix_models.scripts.glue.metrics import (
    classification_metrics,
    multirc_metrics,
    normalize_answer,
    record_metrics,
    token_f1,
)


def test_accuracy_f1_and_combined_score():
    labels = np.array([1, 1, 0, 0, 1])
    predictions = np.array([1, 0, 0, 1, 1])
    # tp=2, fp=1, fn=1 -> precision = recall = 2/3 -> F1 = 2/3; accuracy 3/5.
    result = classification_metrics(("accuracy", "f1"), predictions, labels)
    assert result["accuracy"] == pytest.approx(0.6)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["combined_score"] == pytest.approx((0.6 + 2 / 3) / 2)


def test_matthews_correlation():
    assert classification_metrics(("matthews_correlation",), [1, 0, 1, 0], [1, 0, 1, 0]) == {
        "matthews_correlation": 1.0
    }
    assert classification_metrics(("matthews_correlation",), [0, 1, 0, 1], [1, 0, 1, 0])[
        "matthews_correlation"
    ] == pytest.approx(-1.0)
    # tp=1 tn=1 fp=1 fn=1 -> (1*1 - 1*1) / sqrt(...) = 0
    assert classification_metrics(("matthews_correlation",), [1, 1, 0, 0], [1, 0, 1, 0])[
        "matthews_correlation"
    ] == pytest.approx(0.0)


def test_macro_f1_for_three_classes():
    labels = [0, 0, 1, 2]
    predictions = [0, 1, 1, 2]
    # class 0: P=1 R=1/2 F=2/3; class 1: P=1/2 R=1 F=2/3; class 2: F=1 -> macro 7/9
    assert classification_metrics(("macro_f1",), predictions, labels)["macro_f1"] == pytest.approx(7 / 9)


def test_pearson_and_spearman():
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    result = classification_metrics(("pearson", "spearmanr"), labels * 2 + 1, labels)
    assert result["pearson"] == pytest.approx(1.0) and result["spearmanr"] == pytest.approx(1.0)
    monotone = classification_metrics(("pearson", "spearmanr"), labels**3, labels)
    assert monotone["spearmanr"] == pytest.approx(1.0) and monotone["pearson"] < 1.0


def test_multirc_f1a_and_exact_match():
    questions = [0, 0, 0, 1, 1, 2]
    labels = [1, 0, 1, 0, 1, 1]
    predictions = [1, 0, 1, 1, 1, 0]  # q0 all right, q1 one wrong, q2 wrong
    result = multirc_metrics(np.array(predictions), np.array(labels), questions)
    assert result["exact_match"] == pytest.approx(1 / 3)
    # tp=3 (rows 0, 2, 4), fp=1 (row 3), fn=1 (row 5) -> F1 = 3/4
    assert result["f1a"] == pytest.approx(0.75)


def test_record_max_over_answers():
    gold = {0: ["Clever Story", "Story"], 1: ["Sam Nice"]}
    result = record_metrics({0: "the Story", 1: "Sam"}, gold)
    # q0: "the story" normalises to "story" = second answer -> EM 1, F1 1; q1: F1 = 2/3, EM 0
    assert result["exact_match"] == pytest.approx(0.5)
    assert result["f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert record_metrics({}, {0: ["x"]})["f1"] == 0.0


def test_answer_normalisation():
    assert normalize_answer("The  Great, Film!") == "great film"
    assert token_f1("x b c", "b c d") == pytest.approx(2 / 3)
    assert token_f1("a b c", "b c d") == pytest.approx(0.8)  # the article is dropped
    assert math.isclose(token_f1("", "x"), 0.0)
