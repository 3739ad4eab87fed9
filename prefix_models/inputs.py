"""The inputs, masks and positions around the virtual tokens, which both methods use.

* :data:`ENCODER_INPUTS`: the stock inputs of an encoder backbone, in the order the task forwards take them
  (:func:`encoder_inputs` names them);
* :func:`real_position_ids`: the positions the plain backbone gives the real tokens, which they keep;
* :func:`extend_attention_mask` prepends the virtual tokens' columns to a padding mask; the
  ``check_*`` functions reject masks and inputs of the wrong shape or length by name;
  :func:`backbone_inputs` passes a backbone only the inputs it takes;
* :func:`after_left_padding` moves a decoder's soft tokens behind each row's left padding.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import TYPE_CHECKING

import torch
from torch import nn

from .errors import InputError

if TYPE_CHECKING:  # annotations only: importing this module (the scripts' --help does) builds no model class
    from transformers import PreTrainedModel

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


def encoder_inputs(*values: torch.Tensor | None) -> dict[str, torch.Tensor | None]:
    """``{"input_ids": ..., "attention_mask": ..., ...}``: the :data:`ENCODER_INPUTS`, given in that order."""
    return dict(zip(ENCODER_INPUTS, values, strict=True))


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


def after_left_padding(attention_mask: torch.Tensor | None, virtual: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Where ``virtual`` soft tokens go in rows that start with padding: right before the first real token.

    A decoder's sliding-window attention counts the distance between tokens by their places in the sequence,
    so soft tokens in front of a row's left padding would sit further from its real tokens than in the row
    alone. Returns ``(order, real)``: ``order`` (``(batch, virtual + seq_len)``) rearranges a sequence laid
    out as ``[virtual, attention_mask's columns]`` into ``[leading padding, virtual, the rest]``, and ``real``
    (``(batch, seq_len)``) gives the places the mask's columns take there. None when no row starts with
    padding (the layout is then unchanged).
    """
    if attention_mask is None:
        return None
    leading = attention_mask.long().cumsum(1).eq(0).sum(1, keepdim=True)
    if not bool(leading.any()):
        return None
    places = torch.arange(virtual + attention_mask.shape[1], device=attention_mask.device).unsqueeze(0)
    order = torch.where(
        places < leading, places + virtual, torch.where(places < leading + virtual, places - leading, places)
    )
    columns = places[:, : attention_mask.shape[1]]
    return order, torch.where(columns < leading, columns, columns + virtual)


def take_places(sequence: torch.Tensor, places: torch.Tensor) -> torch.Tensor:
    """``sequence`` (``(batch, length, ...)``) at ``places`` (``(batch, n)`` indices into its second dim)."""
    index = places.view(*places.shape, *[1] * (sequence.dim() - 2)).expand(-1, -1, *sequence.shape[2:])
    return torch.gather(sequence, 1, index.to(sequence.device))
