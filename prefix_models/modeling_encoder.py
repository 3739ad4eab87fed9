"""The forward through a frozen encoder with a prefix or a prompt, and the pooling the sequence-level
heads read: what the four encoder task classes (``modeling_tasks.py``) share, as functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .named_prefixes import Route, take_prefix_names


def pool_features(
    backbone: nn.Module, sequence_output: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str
) -> torch.Tensor:
    """One vector per example for the sequence-level heads, from the real tokens' features.

    ``"pooler"``: the backbone's pooler on the first real token (BERT's tanh layer; what
    ``BertForSequenceClassification`` and P-tuning v2 read), or that token as is where the backbone
    has no pooler. ``"cls"``: the first real token's hidden state. ``"mean"``: the mean over the real
    tokens (padding excluded). With a frozen backbone the pooler stays as pretrained, and sentence-
    embedding checkpoints (sentence-transformers) never trained theirs: they were trained through a mean.
    """
    if pooling == "mean":
        if attention_mask is None:
            return sequence_output.mean(dim=1)
        weights = attention_mask.to(sequence_output.dtype).unsqueeze(-1)
        return (sequence_output * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    pooler = getattr(backbone, "pooler", None) if pooling == "pooler" else None
    if isinstance(pooler, nn.Linear):  # ALBERT: a bare linear layer on the first token, then its activation
        return backbone.pooler_activation(pooler(sequence_output[:, 0]))
    return pooler(sequence_output) if pooler is not None else sequence_output[:, 0]


@dataclass
class Encoded:
    """Backbone features of the real tokens only (no virtual-token positions), and their padding mask."""

    sequence_output: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None
    attentions: tuple[torch.Tensor, ...] | None
    attention_mask: torch.Tensor | None

    def pooled(self, backbone: nn.Module, pooling: str, rows: torch.Tensor | None = None) -> torch.Tensor:
        """One vector per example (of ``rows``, if given), pooled as ``pooling`` says (:func:`pool_features`):
        computed only by the heads that read it, with each task's own pooling."""
        if rows is None:
            return pool_features(backbone, self.sequence_output, self.attention_mask, pooling)
        mask = self.attention_mask[rows] if self.attention_mask is not None else None
        return pool_features(backbone, self.sequence_output[rows], mask, pooling)


def batch_route(model: Any, prefix_names: Any, reference: torch.Tensor | None, kwargs: dict[str, Any]) -> Route | None:
    """The batch's route (``prefix_names``, or peft's ``adapter_names`` popped from ``kwargs``)."""
    prefix_names = take_prefix_names(prefix_names, kwargs)
    if reference is None:  # encode() names the missing input
        return None
    return model.route_prefixes(prefix_names, reference.shape[0], reference.device)


# ``encode`` and ``pooled_features`` are methods of each encoder task class (``modeling_tasks.py``).


def encode(self: Any, *, route: Route | None = None, **inputs: Any) -> Encoded:
    """Run the backbone (which adds the prefix or prompt) on ``inputs`` (its own, :data:`~.inputs.ENCODER_INPUTS`
    and others, by name) and return the real tokens' features.

    ``prefix_attention_mask`` (``(batch, pre_seq_len)``, default ones) masks virtual tokens;
    zeros make the model its plain backbone plus head. ``route`` gives each example its named prefix.
    """
    outputs = self.base_model(**inputs, prefix_names=route, return_dict=True)
    return Encoded(outputs.last_hidden_state, outputs.hidden_states, outputs.attentions, inputs.get("attention_mask"))


def pooled_features(self: Any, encoded: Encoded, rows: torch.Tensor | None = None, config: Any = None) -> torch.Tensor:
    """What a sequence-level head reads (for ``rows``): pooled as the task's config (default: the model's) says."""
    return encoded.pooled(self.base_model, (config or self.config).classifier_pooling, rows)
