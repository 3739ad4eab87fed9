"""Prefix attention for the families that compute attention themselves: DeBERTa-v2/v3 and MPNet.

Their attention modules do not dispatch through transformers' ``AttentionInterface`` and their
models do not pass keyword arguments down to them, so ``injection.py`` cannot reach them. Here each
such module's ``forward`` is replaced, on the instance, by one that computes the stock attention
over the real tokens with the layer's prefix keys/values in front, reusing the module's own
projections and relative-position code. Virtual tokens have no position: they get content scores
only (no relative-position term), as in the interface route where they skip the rotary embedding.

The prefix reaches a patched module through its ``_prefix_state`` attribute, which the model sets
before each forward (:func:`attach_prefix`). It is left in place after a training forward, because
gradient checkpointing re-runs the layer during the backward pass; any other forward clears it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch
from torch import nn
from transformers.models.deberta_v2.modeling_deberta_v2 import DisentangledSelfAttention
from transformers.models.mpnet.modeling_mpnet import MPNetSelfAttention

from ...attachment import InstanceForward
from .injection import PrefixState, _prefix_columns

STATE_ATTRIBUTE = "_prefix_state"


def _layer_prefix(module: nn.Module) -> tuple[PrefixState, int, torch.Tensor, torch.Tensor] | None:
    """The state, row and prefix keys/values of ``module``'s layer; None when it runs the stock attention (no
    prefix attached, or a layer left out of ``prefix_layers``)."""
    state: PrefixState | None = getattr(module, STATE_ATTRIBUTE, None)
    layer = None if state is None else state.layer_of(module)
    if layer is None:
        return None
    key, value = state.key_values[layer]
    return state, layer, key, value


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def _deberta_v2_attention(
    self,
    hidden_states,
    attention_mask,
    output_attentions=False,
    query_states=None,
    relative_pos=None,
    rel_embeddings=None,
):
    prefix = _layer_prefix(self)
    if prefix is None:
        return type(self).forward(
            self, hidden_states, attention_mask, output_attentions, query_states, relative_pos, rel_embeddings
        )
    state, layer, prefix_key, prefix_value = prefix
    heads = self.num_attention_heads
    query = self.transpose_for_scores(self.query_proj(hidden_states if query_states is None else query_states), heads)
    key = self.transpose_for_scores(self.key_proj(hidden_states), heads)
    value = self.transpose_for_scores(self.value_proj(hidden_states), heads)
    # (batch, heads, P, head_dim) -> DeBERTa's (batch * heads, P, head_dim)
    batch, _, pre_seq_len, head_dim = prefix_key.shape
    state.record(layer, key.view(batch, heads, -1, head_dim), value.view(batch, heads, -1, head_dim))
    key = torch.cat([prefix_key.reshape(-1, pre_seq_len, head_dim).to(key.dtype), key], dim=1)
    value = torch.cat([prefix_value.reshape(-1, pre_seq_len, head_dim).to(value.dtype), value], dim=1)

    scale_factor = 1 + ("c2p" in self.pos_att_type) + ("p2c" in self.pos_att_type)
    scale = sys.modules[type(self).__module__].scaled_size_sqrt(query, scale_factor).to(query.dtype)
    scores = torch.bmm(query, key.transpose(-1, -2) / scale)
    if self.relative_attention:  # the relative-position terms between real tokens only
        rel_embeddings = self.pos_dropout(rel_embeddings)
        real_key = key[:, pre_seq_len:]
        bias = self.disentangled_attention_bias(query, real_key, relative_pos, rel_embeddings, scale_factor)
        scores = scores + nn.functional.pad(bias, (pre_seq_len, 0))
    scores = scores.view(batch, heads, scores.size(-2), scores.size(-1))
    mask = _prefix_columns(
        attention_mask.bool(),
        state.attention_mask,
        scores.size(-2),
        scores.size(-1) - pre_seq_len,
        pre_seq_len,
        causal=False,
        device=scores.device,
    )
    scores = scores.masked_fill(~mask, torch.finfo(query.dtype).min)
    probs = self.dropout(nn.functional.softmax(scores, dim=-1))
    context = torch.bmm(probs.view(-1, probs.size(-2), probs.size(-1)), value)
    context = context.view(batch, heads, context.size(-2), head_dim).permute(0, 2, 1, 3).contiguous()
    context = context.view(*context.shape[:-2], -1)
    return (context, probs if output_attentions else None)


def _mpnet_attention(self, hidden_states, attention_mask=None, position_bias=None, output_attentions=False, **kwargs):
    prefix = _layer_prefix(self)
    if prefix is None:
        return type(self).forward(self, hidden_states, attention_mask, position_bias, output_attentions, **kwargs)
    state, layer, prefix_key, prefix_value = prefix
    shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
    query = self.q(hidden_states).view(shape).transpose(1, 2)
    real_key, real_value = (
        self.k(hidden_states).view(shape).transpose(1, 2),
        self.v(hidden_states).view(shape).transpose(1, 2),
    )
    state.record(layer, real_key, real_value)
    key = torch.cat([prefix_key.to(hidden_states.dtype), real_key], dim=2)
    value = torch.cat([prefix_value.to(hidden_states.dtype), real_value], dim=2)
    pre_seq_len = prefix_key.shape[2]

    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
    if position_bias is not None:  # relative positions between real tokens only
        scores = scores + nn.functional.pad(position_bias, (pre_seq_len, 0))
    mask = _prefix_columns(
        attention_mask,
        state.attention_mask,
        query.shape[2],
        key.shape[2] - pre_seq_len,
        pre_seq_len,
        causal=False,
        device=scores.device,
    )
    if mask is not None:
        scores = scores + _additive(mask, scores.dtype)
    probs = self.dropout(nn.functional.softmax(scores, dim=-1))
    context = torch.matmul(probs, value).permute(0, 2, 1, 3).contiguous()
    output = self.o(context.view(*context.shape[:-2], self.all_head_size))
    return (output, probs) if output_attentions else (output,)


PATCHES: dict[type[nn.Module], Callable] = {
    DisentangledSelfAttention: _deberta_v2_attention,
    MPNetSelfAttention: _mpnet_attention,
}


def patch_attention(backbone: nn.Module) -> list[nn.Module]:
    """Give every attention module of a self-computing family the prefix forward; returns them."""
    patched = []
    for module in backbone.modules():
        forward = PATCHES.get(type(module))
        if forward is not None:
            module.forward = InstanceForward(forward, module)
            setattr(module, STATE_ATTRIBUTE, None)
            patched.append(module)
    return patched


def attach_prefix(modules: list[nn.Module], state: PrefixState | None) -> None:
    """Hand ``state`` to the patched modules for the next forward (``None`` detaches it)."""
    for module in modules:
        setattr(module, STATE_ATTRIBUTE, state)
