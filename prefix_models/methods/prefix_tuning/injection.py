"""How prefix keys/values reach a frozen backbone: in front of the keys and values of every attention layer.

The backbone runs under an attention implementation of ours, ``prefix_sdpa`` or ``prefix_eager``,
registered with transformers' ``AttentionInterface`` (and, under the same names, with its
``AttentionMaskInterface``, so the backbone still builds its padding / causal masks for them).
Every attention layer that dispatches through the interface then calls :func:`_prefix_attention`,
which

1. finds the layer's ``(key, value)`` in the :class:`PrefixState` the model passed down as the
   ``prefix_state`` keyword argument (transformers forwards unknown keyword arguments from the
   model's ``forward`` to the attention function),
2. concatenates them before the real tokens' keys and values (after rotary embeddings were applied
   to the real ones: virtual tokens have no position),
3. prepends the virtual tokens' columns to the 4-D mask (``prefix_attention_mask`` zeros switch them
   off), and
4. calls the stock ``sdpa`` function or the model's own eager function.

Nothing of the prefix enters a cache or takes a position, so decoders keep their whole context,
generation caches hold real tokens only, each example of a batch may carry its own prefix, and
gradient checkpointing replays a layer with the same keyword arguments, hence the same prefix.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedConfig, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

from ...configuration import SELF_ATTENTION, attention_layer_counts, attention_slot
from ...errors import InputError

# The stock implementation a user asks for -> ours, which hosts a prefix.
PREFIX_ATTENTION = {"sdpa": "prefix_sdpa", "eager": "prefix_eager"}
# The attribute that tells an attention module which layer's prefix is its own.
LAYER_ATTRIBUTE = "_prefix_layer_index"


@dataclass(eq=False)
class PrefixState:
    """What one forward adds to the attention layers: ``key_values[row]`` is ``(key, value)``, each
    ``(batch, kv_heads, pre_seq_len, head_dim)``; ``rows`` maps an attention module's slot (its tag,
    :func:`tag_attention_layers`) to its row, and slots it leaves out (``prefix_layers``, ``prefix_kinds``)
    run the stock attention; ``attention_mask`` (``(batch, pre_seq_len)``, 1 = attend, default all ones)
    masks virtual tokens.

    ``layers_seen`` records which rows were taken, so the model can tell a forward in which the prefix
    never reached the attention (another attention implementation set afterwards) from a real one.
    """

    key_values: Sequence[tuple[torch.Tensor, torch.Tensor]]
    attention_mask: torch.Tensor | None = None
    # None: slot i takes row i (every layer carries a prefix).
    rows: dict[int, int] | None = None
    layers_seen: set[int] = field(default_factory=set)
    # When a dict: each prefixed layer's real keys and values of this forward are kept here, by row
    # (prefix_init="text").
    recorded: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None
    _untagged_calls: int = 0

    def record(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Keep row ``layer``'s real keys/values ``(batch, kv_heads, seq, head_dim)``, if recording."""
        if self.recorded is not None:
            self.recorded[layer] = (key.detach(), value.detach())

    def layer_of(self, module: nn.Module) -> int | None:
        """The row of ``module``'s prefix in ``key_values``, or None for a layer without one."""
        slot = getattr(module, LAYER_ATTRIBUTE, None)
        if slot is None:
            # ALBERT runs one shared attention module for every layer, in order; it has no gradient
            # checkpointing, so the call order within a forward is the layer index.
            slot = self._untagged_calls
            self._untagged_calls += 1
        row = slot if self.rows is None else self.rows.get(slot)
        if row is None:  # a layer left out of prefix_layers / prefix_kinds
            return None
        if row >= len(self.key_values):
            raise InputError(
                f"attention layer {slot} has no prefix: the prefix holds {len(self.key_values)} layers "
                "(num_hidden_layers of the config it was built for)"
            )
        self.layers_seen.add(row)
        return row


def _prefix_columns(
    mask: torch.Tensor | None,
    prefix_mask: torch.Tensor | None,
    query_length: int,
    key_length: int,
    pre_seq_len: int,
    causal: bool,
    device: torch.device,
) -> torch.Tensor | None:
    """The backbone's 4-D mask over real keys with the virtual tokens' columns in front.

    A ``None`` mask stays ``None`` when it means "attend to everything" and no virtual token is
    masked. For causal sdpa a ``None`` mask means ``is_causal``, whose diagonal torch aligns
    top-left: with keys longer than queries that would hide real tokens, so the causal mask is
    built here aligned bottom-right (query ``i`` sees real key ``j`` when ``j <= i + keys - queries``).
    """
    if mask is None:
        if not causal and prefix_mask is None:
            return None
        mask = torch.ones(query_length, key_length, dtype=torch.bool, device=device)
        if causal:
            mask = mask.tril(key_length - query_length)
        mask = mask[None, None]
    attend = (
        torch.ones(1, 1, 1, pre_seq_len, dtype=torch.bool, device=mask.device)
        if prefix_mask is None
        else prefix_mask.to(device=mask.device).bool()[:, None, None, :]
    )
    if mask.dtype == torch.bool:
        columns = attend
    else:  # an additive mask (eager): 0 where attended, the dtype's minimum where not
        columns = torch.zeros(attend.shape, dtype=mask.dtype, device=mask.device)
        columns = columns.masked_fill(~attend, torch.finfo(mask.dtype).min)
    batch = max(mask.shape[0], columns.shape[0])
    columns = columns.expand(batch, mask.shape[1], mask.shape[2], pre_seq_len)
    return torch.cat([columns, mask.expand(batch, -1, -1, -1)], dim=-1)


@cache
def _eager_function(module_class: type) -> Callable:
    # Each transformers model file defines its own eager attention (GPT-2's upcasting, Gemma-2's
    # soft-capping, ...): use the module's own, as the stock "eager" path does.
    function = getattr(sys.modules[module_class.__module__], "eager_attention_forward", None)
    if function is None:
        raise InputError(f"{module_class.__name__} has no eager attention function to host a prefix; use sdpa")
    return function


def _make_prefix_attention(base: str) -> Callable:
    def prefix_attention(
        module: nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        prefix_state: PrefixState | None = None,
        **kwargs: Any,
    ):
        layer = prefix_state.layer_of(module) if prefix_state is not None else None
        if layer is not None:
            prefix_state.record(layer, key, value)
            prefix_key, prefix_value = prefix_state.key_values[layer]
            pre_seq_len = prefix_key.shape[2]
            is_causal = kwargs.get("is_causal")
            causal = (
                base == "sdpa"
                and attention_mask is None
                and query.shape[2] > 1
                and (is_causal if is_causal is not None else getattr(module, "is_causal", True))
            )
            attention_mask = _prefix_columns(
                attention_mask,
                prefix_state.attention_mask,
                query.shape[2],
                key.shape[2],
                pre_seq_len,
                causal,
                key.device,
            )
            if kwargs.get("position_bias") is not None:  # T5: no relative-position bias toward virtual tokens
                kwargs["position_bias"] = nn.functional.pad(kwargs["position_bias"], (pre_seq_len, 0))
            key = torch.cat([prefix_key.to(key.dtype), key], dim=2)
            value = torch.cat([prefix_value.to(value.dtype), value], dim=2)
        function = sdpa_attention_forward if base == "sdpa" else _eager_function(type(module))
        return function(module, query, key, value, attention_mask, **kwargs)

    prefix_attention.__name__ = f"prefix_{base}_attention"
    return prefix_attention


def _register() -> None:
    for base, name in PREFIX_ATTENTION.items():
        AttentionInterface.register(name, _make_prefix_attention(base))
        # The same masks as the stock implementation; without this the backbone builds none.
        AttentionMaskInterface.register(name, sdpa_mask if base == "sdpa" else eager_mask)


_register()


def prefix_attention_implementation(requested: str | None) -> str:
    """Ours for a requested implementation (``sdpa`` -> ``prefix_sdpa``), or a clear error."""
    requested = requested or "sdpa"
    if requested in PREFIX_ATTENTION.values():
        return requested
    if requested not in PREFIX_ATTENTION:
        allowed = ", ".join(repr(name) for name in PREFIX_ATTENTION)
        raise InputError(
            f"attn_implementation={requested!r} cannot host a prefix; prefix tuning supports {allowed} "
            "(flash-attention, flex and paged attention are not supported)"
        )
    return PREFIX_ATTENTION[requested]


def tag_attention_layers(backbone: PreTrainedModel, config: PreTrainedConfig) -> bool:
    """Mark every attention module with its slot (:func:`~prefix_models.configuration.attention_slot`), which
    :class:`PrefixState` maps to its prefix row, so the attention function finds it without counting calls
    (counting breaks when gradient checkpointing replays a layer).

    Encoders and decoder LMs: every module of block ``i`` (the backbone's first ``nn.ModuleList`` of
    ``num_hidden_layers`` blocks) gets ``i``; returns False where there is no such list (ALBERT shares one
    layer across all of them; calls are counted there). Encoder-decoders: the encoder self-attention,
    decoder self-attention and cross-attention of block ``i`` get the slot of ``i`` in their kind.
    """
    counts = attention_layer_counts(config)
    if SELF_ATTENTION in counts:
        blocks = _blocks(backbone, counts[SELF_ATTENTION])
        for index, block in enumerate(blocks or ()):
            for submodule in block.modules():
                setattr(submodule, LAYER_ATTRIBUTE, index)
        return blocks is not None
    stacks = (
        (backbone.get_encoder(), "encoder", counts["encoder"]),
        (backbone.get_decoder(), "decoder", counts["decoder"]),
    )
    for stack, self_kind, layers in stacks:
        for index, block in enumerate(_blocks(stack, layers) or ()):
            for name, module in block.named_modules():
                if type(module).__name__.endswith("Attention") and any(hasattr(module, p) for p in ("q", "q_proj")):
                    kind = "cross" if ("EncDec" in name or "encoder_attn" in name) else self_kind
                    setattr(module, LAYER_ATTRIBUTE, attention_slot(config, kind, index))
    return True


def _blocks(module: nn.Module, count: int) -> nn.ModuleList | None:
    for child in module.modules():
        if isinstance(child, nn.ModuleList) and len(child) == count and count > 0:
            return child
    return None


def use_attention_implementation(model: PreTrainedModel, implementation: str) -> None:
    """Run every attention of ``model`` (its config and all nested sub-configs: T5 keeps one per stack)
    under ``implementation``."""
    seen: set[int] = set()
    for module in model.modules():
        config = getattr(module, "config", None)
        stack = [config] if config is not None else []
        while stack:
            config = stack.pop()
            if id(config) in seen:
                continue
            seen.add(id(config))
            config._attn_implementation_internal = implementation
            stack.extend(getattr(config, key) for key in config.sub_configs if getattr(config, key, None) is not None)


def check_prefix_reached(state: PrefixState, config: Any) -> None:
    """After a forward: every layer took its prefix, or the error says why not (instead of a model
    that silently runs without its prefix)."""
    if len(state.layers_seen) != len(state.key_values):
        implementation, allowed = config._attn_implementation, " or ".join(map(repr, PREFIX_ATTENTION))
        if implementation in PREFIX_ATTENTION.values():
            raise InputError(
                f"the prefix reached {len(state.layers_seen)} of {len(state.key_values)} attention layers although "
                f"the backbone runs attn_implementation={implementation!r}: its layers do not pass keyword "
                "arguments down to their attention, so this model cannot host a prefix"
            )
        raise InputError(
            f"the prefix reached {len(state.layers_seen)} of {len(state.key_values)} attention layers: the backbone "
            f"runs attn_implementation={implementation!r}. Prefix models run {allowed} "
            "(model.set_attn_implementation('sdpa'))"
        )
