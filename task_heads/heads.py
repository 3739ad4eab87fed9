"""Dropout + one linear layer per task, with the loss transformers uses for that task."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedConfig

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


def _dropout_prob(config: PreTrainedConfig) -> float:
    classifier_dropout = getattr(config, "classifier_dropout", None)
    return classifier_dropout if classifier_dropout is not None else config.hidden_dropout_prob


class _LinearHead(nn.Module):
    def __init__(self, config: PreTrainedConfig, out_features: int):
        super().__init__()
        self.dropout = nn.Dropout(_dropout_prob(config))
        self.out_proj = nn.Linear(config.hidden_size, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # A half-precision frozen backbone feeds a head that trains in float32.
        return self.out_proj(self.dropout(features.to(self.out_proj.weight.dtype)))


class SequenceClassificationHead(_LinearHead):
    """One vector per example -> ``num_labels`` logits (or one value for regression)."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__(config, config.num_labels)
        self.config = config

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MSE, cross-entropy or BCE by ``config.problem_type``, inferred as transformers does."""
        config, num_labels = self.config, self.config.num_labels
        if config.problem_type is None:
            if num_labels == 1:
                config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                config.problem_type = "single_label_classification"
            else:
                config.problem_type = "multi_label_classification"
        if config.problem_type == "regression":
            if num_labels == 1:
                return F.mse_loss(logits.squeeze(-1), labels.view(-1).to(logits.dtype))
            return F.mse_loss(logits, labels.to(logits.dtype))
        if config.problem_type == "single_label_classification":
            return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
        if config.problem_type == "multi_label_classification":
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {config.problem_type!r}")


class TokenClassificationHead(_LinearHead):
    """One vector per token -> ``num_labels`` logits per token; label ``-100`` is ignored."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__(config, config.num_labels)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


class MultipleChoiceHead(_LinearHead):
    """One vector per (example, choice) -> one score; scores are compared across choices."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__(config, 1)

    def forward(self, features: torch.Tensor, num_choices: int) -> torch.Tensor:  # type: ignore[override]
        return super().forward(features).view(-1, num_choices)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels.view(-1))


class QuestionAnsweringHead(_LinearHead):
    """One vector per token -> span start and end logits."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__(config, 2)

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
        """Mean of start and end cross-entropy; positions outside the sequence are ignored."""
        ignored = start_logits.shape[1]
        start_positions = start_positions.view(-1).clamp(0, ignored)
        end_positions = end_positions.view(-1).clamp(0, ignored)
        start_loss = F.cross_entropy(start_logits, start_positions, ignore_index=ignored)
        end_loss = F.cross_entropy(end_logits, end_positions, ignore_index=ignored)
        return (start_loss + end_loss) / 2
