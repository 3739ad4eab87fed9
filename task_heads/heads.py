"""Dropout + one linear layer per task, with transformers' own loss function for that task."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedConfig
from transformers.loss.loss_utils import ForQuestionAnsweringLoss, ForSequenceClassificationLoss, ForTokenClassification

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# The dropout in front of each family's stock head (transformers' ``{Family}For{Task}``), by task: the config
# fields it reads, the first one set winning; () where the stock head has none (their question answering).
_CLASSIFIER = ("classifier_dropout", "hidden_dropout_prob")
_HEAD_DROPOUT: dict[str, dict[str, tuple[str, ...]]] = {
    "bert": {
        "sequence_classification": _CLASSIFIER,
        "token_classification": _CLASSIFIER,
        "multiple_choice": _CLASSIFIER,
        "question_answering": (),
    },
    "roberta": {
        "sequence_classification": _CLASSIFIER,
        "token_classification": _CLASSIFIER,
        "multiple_choice": ("hidden_dropout_prob",),
        "question_answering": (),
    },
    "electra": {
        "sequence_classification": _CLASSIFIER,
        "token_classification": _CLASSIFIER,
        "multiple_choice": ("summary_last_dropout",),
        "question_answering": (),
    },
    "albert": {
        "sequence_classification": ("classifier_dropout_prob",),
        "token_classification": ("classifier_dropout_prob", "hidden_dropout_prob"),
        "multiple_choice": ("classifier_dropout_prob",),
        "question_answering": (),
    },
    "distilbert": {
        "sequence_classification": ("seq_classif_dropout",),
        "token_classification": ("dropout",),
        "multiple_choice": ("seq_classif_dropout",),
        "question_answering": ("qa_dropout",),
    },
    "deberta-v2": {
        "sequence_classification": ("cls_dropout", "hidden_dropout_prob"),
        "token_classification": ("hidden_dropout_prob",),
        "multiple_choice": ("cls_dropout", "hidden_dropout_prob"),
        "question_answering": (),
    },
    "modernbert": dict.fromkeys(
        ("sequence_classification", "token_classification", "multiple_choice", "question_answering"),
        ("classifier_dropout",),
    ),
    "mpnet": {
        "sequence_classification": ("hidden_dropout_prob",),
        "token_classification": ("hidden_dropout_prob",),
        "multiple_choice": ("hidden_dropout_prob",),
        "question_answering": (),
    },
}
_HEAD_DROPOUT["xlm-roberta"] = _HEAD_DROPOUT["camembert"] = _HEAD_DROPOUT["roberta"]
# A family not in the table: its classifier dropout wherever it keeps one, else its hidden dropout.
_ANY_DROPOUT = (
    "classifier_dropout",
    "classifier_dropout_prob",
    "seq_classif_dropout",
    "hidden_dropout_prob",
    "dropout",
)


def head_dropout(config: PreTrainedConfig, task: str) -> float:
    """The dropout probability the stock ``{Family}For{Task}`` head applies, read from the same config fields."""
    family = getattr(config, "base_model_type", config.model_type)
    fields = _HEAD_DROPOUT.get(family, {}).get(task, _ANY_DROPOUT)
    values = (getattr(config, name, None) for name in fields)
    return next((value for value in values if value is not None), 0.0)


class _LinearHead(nn.Module):
    task: str
    # Outputs per vector; None: the config's num_labels.
    out_features: int | None = None

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.config = config  # the loss reads the task's problem type and label count
        self.dropout = nn.Dropout(head_dropout(config, self.task))
        self.out_proj = nn.Linear(config.hidden_size, self.out_features or config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # A half-precision frozen backbone feeds a head that trains in float32.
        return self.out_proj(self.dropout(features.to(self.out_proj.weight.dtype)))


class SequenceClassificationHead(_LinearHead):
    """One vector per example -> ``num_labels`` logits (or one value for regression)."""

    task = "sequence_classification"

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """transformers' sequence-classification loss: MSE, cross-entropy or BCE by ``config.problem_type``
        (inferred from ``num_labels`` and the labels' dtype when unset, and then kept in the config)."""
        if self.config.problem_type not in (None, *PROBLEM_TYPES):
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {self.config.problem_type!r}")
        if labels.is_floating_point():  # regression / multi-label targets in the logits' (float32) dtype
            labels = labels.to(logits.dtype)
        return ForSequenceClassificationLoss(labels, logits, self.config)


class TokenClassificationHead(_LinearHead):
    """One vector per token -> ``num_labels`` logits per token; label ``-100`` is ignored."""

    task = "token_classification"

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return ForTokenClassification(logits, labels, self.config)


class MultipleChoiceHead(_LinearHead):
    """One vector per (example, choice) -> one score; scores are compared across choices."""

    task = "multiple_choice"
    out_features = 1

    def forward(self, features: torch.Tensor, num_choices: int) -> torch.Tensor:  # type: ignore[override]
        return super().forward(features).view(-1, num_choices)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # transformers' multiple-choice models compute this inline; there is no shared loss function.
        return F.cross_entropy(logits, labels.view(-1))


class QuestionAnsweringHead(_LinearHead):
    """One vector per token -> span start and end logits."""

    task = "question_answering"
    out_features = 2

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        start, end = super().forward(features).split(1, dim=-1)
        return start.squeeze(-1).contiguous(), end.squeeze(-1).contiguous()

    def loss(
        self,
        start_logits: torch.Tensor,
        end_logits: torch.Tensor,
        start_positions: torch.Tensor,
        end_positions: torch.Tensor,
    ) -> torch.Tensor:
        """transformers' span loss: the mean of start and end cross-entropy; positions outside the
        sequence are ignored."""
        return ForQuestionAnsweringLoss(start_logits, end_logits, start_positions, end_positions)
