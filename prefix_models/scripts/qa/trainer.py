"""The Trainer for extractive QA: evaluation scores answers to questions, not windows.

A question's context may span several windows, so the model's per-window logits only mean something after
post-processing (``postprocess.py``) has turned them into one answer per question. This Trainer runs the
stock evaluation loop (so speed metrics, logging, callbacks such as ``BestMetricCallback`` and distributed
gathering stay the Trainer's own), then adds the SQuAD scores of the answers under the split's prefix
(``eval_f1``, ``predict_exact_match``, ...). transformers' ``run_qa.py`` does the same with its
``QuestionAnsweringTrainer``.
"""

from __future__ import annotations

from typing import Any

from transformers import Trainer
from transformers.trainer_utils import EvalLoopOutput, PredictionOutput

from .features import QAFeatures
from .metrics import squad_v1, squad_v2
from .postprocess import AnswerOptions, Answers, answers_from_logits


def score_answers(features: QAFeatures, answers: Answers, version_2: bool) -> dict[str, float]:
    """The official scores of ``answers`` against the split's gold answers."""
    gold = {example.id: list(example.answers) for example in features.examples}
    return squad_v2(gold, answers.predictions) if version_2 else squad_v1(gold, answers.predictions)


class QuestionAnsweringTrainer(Trainer):
    """``Trainer`` whose ``evaluate`` / ``predict`` post-process the windows' logits into answers.

    ``eval_features`` are the dev windows (their ``dataset`` is the Trainer's ``eval_dataset``). After each
    evaluate or predict, ``answers`` holds the answers of that split.
    """

    def __init__(
        self, *args: Any, eval_features: QAFeatures | None = None, answer_options: AnswerOptions, **kwargs: Any
    ):
        if eval_features is not None:
            kwargs["eval_dataset"] = eval_features.dataset
        super().__init__(*args, **kwargs)
        self.eval_features = eval_features
        self.answer_options = answer_options
        self.answers: Answers | None = None
        self._scoring: QAFeatures | None = None  # the split the running evaluation loop answers

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        if eval_dataset is not None:
            raise ValueError("QuestionAnsweringTrainer evaluates its eval_features; pass others to predict()")
        self._scoring = self.eval_features
        try:
            return super().evaluate(ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        finally:
            self._scoring = None

    def predict(
        self, test_features: QAFeatures, ignore_keys: list[str] | None = None, metric_key_prefix: str = "predict"
    ) -> PredictionOutput:
        """Answer ``test_features``' questions; scored when every one of them has gold answers."""
        self._scoring = test_features
        try:
            return super().predict(test_features.dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        finally:
            self._scoring = None

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ) -> EvalLoopOutput:
        features = self._scoring
        if features is None:
            return super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
        # The windows carry no labels, so the stock loop would keep no logits: the answers need them.
        output = super().evaluation_loop(dataloader, description, False, ignore_keys, metric_key_prefix)
        start_logits, end_logits = output.predictions[:2]
        self.answers = answers_from_logits(features, start_logits, end_logits, self.answer_options)
        if all(example.labelled for example in features.examples):
            scores = score_answers(features, self.answers, self.answer_options.version_2)
            output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in scores.items()})
        return output
