"""Prompt tuning: a ``PromptEncoder`` whose soft tokens go before the input embeddings (``encoder.py``: the
parameters and :func:`~.encoder.prompt_inputs`; here, :class:`PromptTuning`, the method component)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...attachment import BackboneCall
from ...inputs import after_left_padding, extend_attention_mask, take_places
from ...named_prefixes import Route, routed_virtual_tokens
from ..base import Prepared, TuningMethod
from .encoder import PromptEncoder, prompt_inputs


class PromptTuning(TuningMethod):
    """Soft tokens before the input embeddings (an encoder-decoder's: before the source)."""

    name = "prompt"
    encoder_attribute = "prompt_encoder"
    encoder_class = PromptEncoder

    def finish(self, model: nn.Module) -> None:
        # Prompt init from vocabulary rows needs loaded word embeddings: from_pretrained defers it.
        if not model._defer_prompt_init:
            model.init_prompt(model._prompt_tokenizer)

    def get_prompt(self, model: nn.Module, batch_size: int, route: Route | None = None) -> torch.Tensor:
        if route is not None:
            return routed_virtual_tokens(model, route)
        return model.prompt_encoder().unsqueeze(0).expand(batch_size, -1, -1)

    def cached_tokens(self, model: nn.Module, route: Route | None = None) -> int:
        return model.config.pre_seq_len if route is None else route.length

    def prepare(self, model: nn.Module, call: BackboneCall) -> Prepared:
        role, inputs, batch_size, route = call.role, call.inputs, call.batch_size, call.route
        prefix_attention_mask, soft_cached = call.prefix_attention_mask, call.soft_cached
        pre_seq_len = model.config.pre_seq_len if route is None else route.length
        if route is not None:  # shorter prompts are left-padded with masked soft tokens
            prefix_attention_mask = route.combined_mask(prefix_attention_mask)
        get_prompt = model.get_prompt if route is None else lambda size: model.get_prompt(size, prefix_names=route)
        if role == "encoder_only":  # positions and token types as the plain encoder gives its real tokens
            prepared = prompt_inputs(model.base_model, get_prompt(batch_size), inputs, prefix_attention_mask)
            return Prepared(prepared, drop=pre_seq_len)
        if role == "target":  # the decoder cross-attends to the soft tokens in front of the encoder's output
            return Prepared(_cross_attention_mask(inputs, pre_seq_len, batch_size, prefix_attention_mask))
        mask = inputs.get("attention_mask")
        reference = inputs.get("input_ids") if inputs.get("input_ids") is not None else inputs.get("inputs_embeds")
        if mask is None and reference is None:  # nothing to extend (a reused encoder output, no mask)
            return Prepared(inputs)
        length = mask.shape[1] if mask is not None else reference.shape[1]
        device = mask.device if mask is not None else reference.device
        prepared = {
            **inputs,
            "attention_mask": extend_attention_mask(
                mask, pre_seq_len, batch_size, length, device, prefix_attention_mask
            ),
        }
        # A decoder's soft tokens go behind each row's left padding, where they sit in the row alone (the
        # generation cache keeps them there; the mask of every later step is laid out the same way).
        layout = after_left_padding(mask, pre_seq_len) if role == "decoder_only" else None
        if layout is not None:
            prepared["attention_mask"] = take_places(prepared["attention_mask"], layout[0])
        if soft_cached:  # a decoder's generation cache already holds the soft tokens
            return Prepared(prepared)
        embeds = prepared.pop("inputs_embeds", None)
        if embeds is None:
            embeds = model.get_input_embeddings()(prepared["input_ids"])
        prepared["input_ids"] = None
        prepared["inputs_embeds"] = torch.cat([get_prompt(batch_size).to(embeds.dtype), embeds], dim=1)
        if role == "decoder_only":  # the soft tokens at position 0; the real tokens keep theirs
            positions = prepared["position_ids"]
            soft = positions.new_zeros(batch_size, pre_seq_len)
            if model.config.virtual_token_positions == "peft":  # peft: soft tokens at 0..P-1 (left-padded rows too)
                lengths = route.mask.sum(1, keepdim=True) if route is not None else pre_seq_len
                soft = (torch.arange(pre_seq_len, device=positions.device) - (pre_seq_len - lengths)).clamp(min=0)
                soft = soft.expand(batch_size, -1).to(positions.dtype)
            prepared["position_ids"] = torch.cat([soft, positions], dim=1)
            if layout is None:
                return Prepared(prepared, drop=pre_seq_len)
            order, real = layout
            for key in ("inputs_embeds", "position_ids"):
                prepared[key] = take_places(prepared[key], order)
            return Prepared(prepared, drop=pre_seq_len, real_places=real)
        return Prepared(prepared)


def _cross_attention_mask(
    inputs: dict[str, Any], pre_seq_len: int, batch_size: int, prefix_attention_mask: torch.Tensor | None
) -> dict[str, Any]:
    """A decoder stack's inputs with the soft tokens' columns in front of the encoder mask, where the encoder
    output holds them (``pre_seq_len`` positions more than the mask covers)."""
    encoded, mask = inputs.get("encoder_hidden_states"), inputs.get("encoder_attention_mask")
    if encoded is None or (mask is None and prefix_attention_mask is None):
        return inputs
    real = encoded.shape[1] - pre_seq_len
    if real < 0 or (mask is not None and mask.shape[-1] != real):
        return inputs  # an encoder output without soft tokens (or a mask that covers them already)
    extended = extend_attention_mask(mask, pre_seq_len, batch_size, real, encoded.device, prefix_attention_mask)
    return {**inputs, "encoder_attention_mask": extended}
