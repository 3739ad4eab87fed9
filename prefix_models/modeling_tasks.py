"""The four encoder tasks: which head sits on which features, and which transformers output.

Each task class is backbone- and method-agnostic; ``named_classes.py`` combines it with each backbone's
``*PreTrainedModel`` and a config class. With ``prefix_names`` (one per example) each example also runs
its own task's head (``named_prefixes.py``); per-task losses are averaged weighted by their examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedConfig,
)
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
from .inputs import encoder_inputs
from .modeling_encoder import batch_route, encode, pooled_features
from .modeling_utils import PrefixPreTrainedModel
from .named_prefixes import DEFAULT_PREFIX, PrefixEnsemble, PrefixNames, Route, scatter_rows


def _task_labels(labels: torch.Tensor, config: PreTrainedConfig) -> torch.Tensor:
    """A mixed batch collates every task's labels into one tensor: a regression task's floats make a
    classification task's class ids floats too. Give each task its labels' own kind back."""
    if labels.is_floating_point() and config.num_labels > 1 and config.problem_type != "multi_label_classification":
        return labels.long()
    return labels


# One task's head over its rows: (task name, its rows, or None for every row) -> (outputs, loss or None).
HeadForward = Callable[[str, torch.Tensor | None], tuple[tuple[torch.Tensor, ...], torch.Tensor | None]]


def mixed_batch_heads(
    route: Route | None, batch_size: int, head_forward: HeadForward
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor | None]:
    """Every task's head on its own examples, merged: the one place a routed batch is split by task.

    Without a route the model's own head reads every row. With one, each task's head reads its rows; the
    outputs are scattered back into batch order, as wide as the widest head (``-inf`` past a row's own labels),
    and the losses averaged weighted by each task's examples: the mean loss over the batch.
    """
    if route is None:
        return head_forward(DEFAULT_PREFIX, None)
    parts, losses = [], []
    for name, rows in route.groups():
        outputs, loss = head_forward(name, rows)
        parts.append((rows, outputs))
        if loss is not None:
            losses.append(loss * len(rows))
    merged = tuple(
        scatter_rows([(rows, outputs[i]) for rows, outputs in parts], batch_size) for i in range(len(parts[0][1]))
    )
    return merged, (sum(losses) / batch_size if losses else None)


def _rows(tensor: torch.Tensor | None, rows: torch.Tensor | None) -> torch.Tensor | None:
    return tensor if tensor is None or rows is None else tensor[rows]


def prefix_ensemble(self: Any, members: list[str]) -> PrefixEnsemble:
    """A module that runs each input through every prefix named in ``members`` (one batch) and
    averages their probabilities (:class:`~prefix_models.named_prefixes.PrefixEnsemble`)."""
    return PrefixEnsemble(self, members)


@can_return_tuple
def classification_forward(
    self: Any,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    prefix_names: PrefixNames | None = None,
    **kwargs: Any,
) -> ModelOutput:
    """A linear head on the pooled first real token (sequence tasks) or on every real token.

    ``prefix_names`` (one per example, names or positions in ``model.prefix_names``) routes each
    example to its task's prefix and head; ``logits`` are then as wide as the widest head, ``-inf``
    past a row's own labels."""
    route = batch_route(self, prefix_names, input_ids if input_ids is not None else inputs_embeds, kwargs)
    inputs = encoder_inputs(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
    encoded = self.encode(route=route, **inputs, **kwargs)

    def head_forward(name: str, rows: torch.Tensor | None):
        head, config = self.task_modules(name)["classifier"], self.prefix_config(name)
        if self.reads_pooled_output:
            features = self.pooled_features(encoded, rows, config)
        else:
            features = _rows(encoded.sequence_output, rows)
        logits = head(features)
        task_labels = _rows(labels, rows)
        if task_labels is not None and rows is not None:
            task_labels = _task_labels(task_labels, config)
        return (logits,), (head.loss(logits, task_labels) if task_labels is not None else None)

    (logits,), loss = mixed_batch_heads(route, len(encoded.sequence_output), head_forward)
    return self.output_class(
        loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
    )


class PrefixModelForSequenceClassification(PrefixPreTrainedModel):
    """Pooled first real token -> linear head; regression, single- or multi-label by ``problem_type``."""

    prefix_task = "sequence_classification"  # its name in defaults.TASKS: what it takes from a checkpoint
    stock_auto_class = AutoModelForSequenceClassification
    head_attribute = "classifier"
    head_class = SequenceClassificationHead
    output_class = SequenceClassifierOutput
    reads_pooled_output = True
    encode = encode
    pooled_features = pooled_features
    forward = classification_forward
    prefix_ensemble = prefix_ensemble


class PrefixModelForTokenClassification(PrefixPreTrainedModel):
    """Every real token -> linear head; labels ``-100`` are ignored by the loss."""

    prefix_task = "token_classification"  # its name in defaults.TASKS: what it takes from a checkpoint
    stock_auto_class = AutoModelForTokenClassification
    head_attribute = "classifier"
    head_class = TokenClassificationHead
    output_class = TokenClassifierOutput
    reads_pooled_output = False
    encode = encode
    forward = classification_forward
    prefix_ensemble = prefix_ensemble


def _flatten_choices(tensor: torch.Tensor | None, keep_dims: int = 1) -> torch.Tensor | None:
    # (batch, choices, seq[, hidden]) -> (batch * choices, seq[, hidden])
    if tensor is None:
        return None
    return tensor.reshape(-1, *tensor.shape[-keep_dims:])


class PrefixModelForMultipleChoice(PrefixPreTrainedModel):
    """Each (example, choice) pair is encoded with the prefix and scored; softmax over choices."""

    prefix_task = "multiple_choice"  # its name in defaults.TASKS: what it takes from a checkpoint
    stock_auto_class = AutoModelForMultipleChoice
    head_attribute = "classifier"
    head_class = MultipleChoiceHead
    encode = encode
    pooled_features = pooled_features

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        prefix_names: PrefixNames | None = None,
        **kwargs: Any,
    ) -> MultipleChoiceModelOutput:
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None or reference.dim() < 3:
            raise InputError(
                "multiple-choice inputs must have shape (batch, num_choices, seq_len); got "
                f"{None if reference is None else tuple(reference.shape)}"
            )
        num_choices = reference.shape[1]
        route = batch_route(self, prefix_names, reference, kwargs)  # one name per example, shared by its choices
        inputs = encoder_inputs(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        flat = {
            name: _flatten_choices(value, keep_dims=2 if name == "inputs_embeds" else 1)
            for name, value in inputs.items()
        }
        encoded = self.encode(route=route.repeat(num_choices) if route is not None else None, **flat, **kwargs)

        def head_forward(name: str, rows: torch.Tensor | None):
            head = self.task_modules(name)["classifier"]
            choice_rows = None
            if rows is not None:  # example i's choices are rows i * num_choices ... of the encoded batch
                choice_rows = (rows.unsqueeze(1) * num_choices + torch.arange(num_choices, device=rows.device)).view(-1)
            logits = head(self.pooled_features(encoded, choice_rows, self.prefix_config(name)), num_choices)
            task_labels = _rows(labels, rows)
            return (logits,), (head.loss(logits, task_labels) if task_labels is not None else None)

        (logits,), loss = mixed_batch_heads(route, reference.shape[0], head_forward)
        return MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


class PrefixModelForQuestionAnswering(PrefixPreTrainedModel):
    """Every real token -> span start and end logits (extractive QA, SQuAD-style)."""

    prefix_task = "question_answering"  # its name in defaults.TASKS: what it takes from a checkpoint
    stock_auto_class = AutoModelForQuestionAnswering
    head_attribute = "qa_outputs"
    head_class = QuestionAnsweringHead
    encode = encode

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
        prefix_names: PrefixNames | None = None,
        **kwargs: Any,
    ) -> QuestionAnsweringModelOutput:
        route = batch_route(self, prefix_names, input_ids if input_ids is not None else inputs_embeds, kwargs)
        inputs = encoder_inputs(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        encoded = self.encode(route=route, **inputs, **kwargs)
        has_positions = start_positions is not None and end_positions is not None

        def head_forward(name: str, rows: torch.Tensor | None):
            head = self.task_modules(name)["qa_outputs"]
            start, end = head(_rows(encoded.sequence_output, rows))
            if not has_positions:
                return (start, end), None
            return (start, end), head.loss(start, end, _rows(start_positions, rows), _rows(end_positions, rows))

        (start_logits, end_logits), loss = mixed_batch_heads(route, len(encoded.sequence_output), head_forward)
        return QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
