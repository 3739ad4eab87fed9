"""The four tasks as mixins: which head sits on which features, and which transformers output.

Each mixin is backbone- and method-agnostic; ``families.py`` combines them with each backbone's
``*PreTrainedModel`` and a config class.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedConfig
from transformers.modeling_outputs import (
    ModelOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils import can_return_tuple

from task_heads import (
    MultipleChoiceHead,
    QuestionAnsweringHead,
    SequenceClassificationHead,
    TokenClassificationHead,
)

from .errors import InputError
from .modeling_encoder import PrefixModelForEncoder


class _PrefixModelForClassification(PrefixModelForEncoder):
    """A linear head on the pooled first real token (sequence tasks) or on every real token."""

    head_class: ClassVar[type[nn.Module]]
    output_class: ClassVar[type[ModelOutput]]
    reads_pooled_output: ClassVar[bool]

    def __init__(self, config: PreTrainedConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.num_labels = self.config.num_labels
        self.classifier = self.head_class(self.config)
        self.post_init_prefix()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> ModelOutput:
        encoded = self.encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        features = encoded.pooled_output if self.reads_pooled_output else encoded.sequence_output
        logits = self.classifier(features)
        loss = self.classifier.loss(logits, labels) if labels is not None else None
        return self.output_class(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


class PrefixModelForSequenceClassification(_PrefixModelForClassification):
    """Pooled first real token -> linear head; regression, single- or multi-label by ``problem_type``."""

    head_class = SequenceClassificationHead
    output_class = SequenceClassifierOutput
    reads_pooled_output = True


class PrefixModelForTokenClassification(_PrefixModelForClassification):
    """Every real token -> linear head; labels ``-100`` are ignored by the loss."""

    head_class = TokenClassificationHead
    output_class = TokenClassifierOutput
    reads_pooled_output = False


def _flatten_choices(tensor: torch.Tensor | None, keep_dims: int = 1) -> torch.Tensor | None:
    # (batch, choices, seq[, hidden]) -> (batch * choices, seq[, hidden])
    if tensor is None:
        return None
    return tensor.reshape(-1, *tensor.shape[-keep_dims:])


class PrefixModelForMultipleChoice(PrefixModelForEncoder):
    """Each (example, choice) pair is encoded with the prefix and scored; softmax over choices."""

    def __init__(self, config: PreTrainedConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.classifier = MultipleChoiceHead(self.config)
        self.post_init_prefix()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MultipleChoiceModelOutput:
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None or reference.dim() < 3:
            raise InputError(
                "multiple-choice inputs must have shape (batch, num_choices, seq_len); got "
                f"{None if reference is None else tuple(reference.shape)}"
            )
        num_choices = reference.shape[1]
        encoded = self.encode(
            _flatten_choices(input_ids),
            _flatten_choices(attention_mask),
            _flatten_choices(token_type_ids),
            _flatten_choices(position_ids),
            _flatten_choices(inputs_embeds, keep_dims=2),
            **kwargs,
        )
        logits = self.classifier(encoded.pooled_output, num_choices)
        loss = self.classifier.loss(logits, labels) if labels is not None else None
        return MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


class PrefixModelForQuestionAnswering(PrefixModelForEncoder):
    """Every real token -> span start and end logits (extractive QA, SQuAD-style)."""

    def __init__(self, config: PreTrainedConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.qa_outputs = QuestionAnsweringHead(self.config)
        self.post_init_prefix()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> QuestionAnsweringModelOutput:
        encoded = self.encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs)
        start_logits, end_logits = self.qa_outputs(encoded.sequence_output)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = self.qa_outputs.loss(start_logits, end_logits, start_positions, end_positions)
        return QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
