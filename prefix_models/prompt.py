"""The tensors a prefix or prompt is made of, and the inputs, masks and positions around them.

* :func:`prefix_key_values` turns the ``PrefixEncoder`` output into, for each layer, keys and values
  ``(batch, kv_heads, pre_seq_len, head_dim)``: what a model's ``get_prompt`` returns and what the
  attention layers put in front of their own (``injection.py``).
* :func:`prompt_inputs` builds an encoder's inputs for prompt tuning (soft tokens prepended to the
  input embeddings; real tokens keep their positions, :func:`real_position_ids`, and token types).
* :func:`extend_attention_mask` prepends the virtual tokens' columns to a padding mask; the
  ``check_*`` functions reject masks and inputs of the wrong shape or length by name;
  :func:`backbone_inputs` passes a backbone only the inputs it takes.
"""

from __future__ import annotations

import inspect
from functools import cache

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from .encoders import kv_geometry
from .errors import InputError

PrefixKeyValues = tuple[tuple[torch.Tensor, torch.Tensor], ...]


def prefix_key_values(
    prefix: torch.Tensor, batch_size: int, config: PreTrainedConfig, dropout: nn.Module
) -> PrefixKeyValues:
    """Per-layer ``(key, value)``, each ``(batch, kv_heads, pre_seq_len, head_dim)``, after ``dropout``.

    ``prefix`` is the ``(pre_seq_len, 2 * layers * kv_heads * head_dim)`` encoder output (or one per row,
    ``(batch, pre_seq_len, width)``). Dropout
    runs on the batch-expanded prefix, so each example sees its own dropout mask.
    """
    _, num_kv_heads, head_dim = kv_geometry(config)
    # The layer count is the prefix's own: a routed task may sit on other layers than the model's config
    # (prefix_layers); the key/value geometry is the backbone's either way.
    num_layers = prefix.shape[-1] // (2 * num_kv_heads * head_dim)
    pre_seq_len = prefix.shape[-2]
    # One prefix for every row, or (batch, P, width): each row its own (named prefixes, routed per example).
    kv = dropout(prefix if prefix.dim() == 3 else prefix.unsqueeze(0).expand(batch_size, -1, -1))
    # (batch, P, 2L, heads, head_dim) -> (2L, batch, heads, P, head_dim): entry 2i is layer i's keys.
    kv = kv.view(batch_size, pre_seq_len, 2 * num_layers, num_kv_heads, head_dim).permute(2, 0, 3, 1, 4)
    return tuple((kv[2 * layer], kv[2 * layer + 1]) for layer in range(num_layers))


def backbone_inputs(backbone: nn.Module, **inputs: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The given inputs that the backbone's ``forward`` takes; giving one it has no use for (DistilBERT
    and ModernBERT have no token types) is an error rather than silently dropped."""
    accepted = _forward_parameters(type(backbone))
    unused = [name for name, value in inputs.items() if value is not None and name not in accepted]
    if unused:
        raise InputError(
            f"{type(backbone).__name__} takes no {', '.join(unused)}; leave {'it' if len(unused) == 1 else 'them'} "
            "out (its tokenizer does not produce them)"
        )
    return {name: value for name, value in inputs.items() if value is not None}


@cache
def _forward_parameters(backbone_class: type) -> frozenset[str]:
    return frozenset(inspect.signature(backbone_class.forward).parameters)


def check_padding_mask(attention_mask: torch.Tensor | None, batch_size: int, seq_len: int) -> None:
    if attention_mask is not None and tuple(attention_mask.shape) != (batch_size, seq_len):
        raise InputError(
            "attention_mask must be a 2-D padding mask of shape (batch, seq_len) = "
            f"({batch_size}, {seq_len}) for prefix/prompt models; got shape {tuple(attention_mask.shape)}"
        )


def check_prefix_attention_mask(prefix_attention_mask: torch.Tensor | None, batch_size: int, pre_seq_len: int) -> None:
    if prefix_attention_mask is not None and tuple(prefix_attention_mask.shape) != (batch_size, pre_seq_len):
        raise InputError(
            f"prefix_attention_mask must have shape (batch, pre_seq_len) = ({batch_size}, {pre_seq_len}); "
            f"got {tuple(prefix_attention_mask.shape)}"
        )


def extend_attention_mask(
    attention_mask: torch.Tensor | None,
    pre_seq_len: int,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    prefix_attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(batch, pre_seq_len + seq_len)``: the virtual tokens' mask (ones unless given), then the padding mask.

    A ``prefix_attention_mask`` of zeros switches the prefix off: the model is then exactly its
    plain backbone plus head, which is how the tests pin the mechanism.
    """
    check_padding_mask(attention_mask, batch_size, seq_len)
    if attention_mask is None:
        attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long, device=device)
    check_prefix_attention_mask(prefix_attention_mask, batch_size, pre_seq_len)
    if prefix_attention_mask is None:
        prefix_attention_mask = attention_mask.new_ones(batch_size, pre_seq_len)
    return torch.cat(
        [prefix_attention_mask.to(device=attention_mask.device, dtype=attention_mask.dtype), attention_mask], dim=1
    )


def _padding_aware(backbone: PreTrainedModel) -> bool:
    # RoBERTa-style embeddings (RoBERTa, XLM-R, MPNet) count positions from padding_idx + 1 and give
    # padding its own slot.
    return hasattr(getattr(backbone, "embeddings", None), "create_position_ids_from_inputs_embeds")


def first_position(backbone: PreTrainedModel) -> int:
    """The position id the plain backbone gives its first real token."""
    return backbone.embeddings.padding_idx + 1 if _padding_aware(backbone) else 0


def check_sequence_length(backbone: PreTrainedModel, seq_len: int) -> None:
    """Fail clearly, before any compute, when real tokens would run past the position table."""
    limit = backbone.config.max_position_embeddings - first_position(backbone)
    if seq_len > limit:
        raise InputError(
            f"input has {seq_len} tokens but this model's position table (max_position_embeddings="
            f"{backbone.config.max_position_embeddings}) allows at most {limit}; truncate the inputs "
            f"(e.g. tokenizer(..., truncation=True, max_length={limit}))"
        )


def real_position_ids(
    backbone: PreTrainedModel, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
) -> torch.Tensor:
    """Position ids of the real tokens exactly as the backbone computes them without a prefix."""
    reference = input_ids if input_ids is not None else inputs_embeds
    batch_size, seq_len = reference.shape[:2]
    check_sequence_length(backbone, seq_len)
    if _padding_aware(backbone):
        first = backbone.embeddings.padding_idx + 1
        if input_ids is not None:  # real tokens count up from first; padding keeps padding_idx
            real = input_ids.ne(first - 1).long()
            return real.cumsum(dim=1) * real + first - 1
        return torch.arange(first, first + seq_len, device=reference.device).unsqueeze(0).expand(batch_size, -1)
    return torch.arange(seq_len, device=reference.device).unsqueeze(0).expand(batch_size, -1)


def prompt_inputs(
    backbone: PreTrainedModel,
    prompt: torch.Tensor,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    prefix_attention_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Backbone keyword arguments with ``prompt`` (``(P, hidden)``, or ``(batch, P, hidden)``)
    prepended to the real tokens.

    Real tokens keep their word embeddings, token types and positions; the soft tokens get token
    type 0 (where the backbone has token types) and the first position (a fixed additive offset
    that training absorbs).
    """
    if inputs_embeds is None:
        inputs_embeds = backbone.get_input_embeddings()(input_ids)
    batch_size, seq_len = inputs_embeds.shape[:2]
    pre_seq_len = prompt.shape[-2]
    device = inputs_embeds.device
    if position_ids is None:
        position_ids = real_position_ids(backbone, input_ids, inputs_embeds)
    position_ids = position_ids.expand(batch_size, -1)
    prompt_positions = torch.full((batch_size, pre_seq_len), first_position(backbone), device=device)
    soft = prompt.to(inputs_embeds.dtype).expand(batch_size, -1, -1)
    inputs = {
        "inputs_embeds": torch.cat([soft, inputs_embeds], dim=1),
        "attention_mask": extend_attention_mask(
            attention_mask, pre_seq_len, batch_size, seq_len, device, prefix_attention_mask
        ),
        "position_ids": torch.cat([prompt_positions, position_ids.to(device)], dim=1),
    }
    if token_type_ids is not None or "token_type_ids" in _forward_parameters(type(backbone)):
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        soft_types = token_type_ids.new_zeros(batch_size, pre_seq_len)
        inputs["token_type_ids"] = torch.cat([soft_types, token_type_ids], dim=1)
    return backbone_inputs(backbone, **inputs)
