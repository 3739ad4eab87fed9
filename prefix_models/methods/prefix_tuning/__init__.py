"""Prefix tuning (P-tuning v2): a ``PrefixEncoder`` whose keys and values enter the attention layers.

* ``encoder.py``: the parameters (``PrefixEncoder``, a table or the reparameterisation MLP) and
  :func:`~.encoder.prefix_key_values`, which shapes them into per-layer keys and values;
* ``injection.py``: the attention implementations that put them in front of each layer's own
  (transformers' ``AttentionInterface``), and the per-forward :class:`~.injection.PrefixState`;
* ``attention_patches.py``: the same for DeBERTa-v2 and MPNet, which compute attention themselves;
* here, :class:`PrefixTuning`, the method component that ties them to a model's forward.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ...attachment import BackboneCall, stock_forward
from ...configuration import prefix_rows
from ...inputs import backbone_inputs, check_prefix_attention_mask
from ...named_prefixes import Route, routed_virtual_tokens
from ..base import Prepared, TuningMethod
from .attention_patches import attach_prefix, patch_attention
from .encoder import PrefixEncoder, prefix_key_values
from .injection import (
    PrefixState,
    check_prefix_reached,
    prefix_attention_implementation,
    tag_attention_layers,
    use_attention_implementation,
)


class PrefixTuning(TuningMethod):
    """Per-layer keys and values in front of every attention layer's own."""

    name = "prefix"
    encoder_attribute = "prefix_encoder"
    encoder_class = PrefixEncoder

    def build(self, model: nn.Module, config: Any) -> None:
        # Tell each attention layer its index, so it picks its own prefix (injection.py).
        tag_attention_layers(model.base_model, config)
        # DeBERTa-v2 and MPNet compute attention themselves: their attention gets a prefix forward.
        model._patched_attention = patch_attention(model.base_model)
        super().build(model, config)
        # Encoders share their hidden dropout with the prefix, as the reference does; decoders
        # have no such field and take it as a prefix-only setting (default 0).
        model.prefix_dropout = nn.Dropout(getattr(config, "hidden_dropout_prob", 0.0))

    def finish(self, model: nn.Module) -> None:
        # The backbone's attention runs through ours, which adds the prefix keys/values.
        use_attention_implementation(model, prefix_attention_implementation(model.config._attn_implementation))
        # A prefix started from text needs the loaded backbone: from_pretrained defers it.
        if model.config.prefix_init == "text" and not model._defer_prompt_init:
            model.init_prefix(model._prompt_tokenizer)

    @torch.no_grad()
    def table_from_text(self, model: nn.Module, token_ids: torch.Tensor) -> torch.Tensor:
        """A prefix table (one row per token of ``token_ids``) holding the backbone's own keys and values of
        that text, read with the prefix masked out: virtual token ``t`` starts as what token ``t`` of the
        text puts in front of every layer's attention."""
        input_ids = token_ids.unsqueeze(0).to(model.get_input_embeddings().weight.device)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        if model._peft_positions_supported:  # a decoder LM reads the text at its plain positions 0..P-1
            inputs["position_ids"] = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        else:
            inputs = backbone_inputs(model.base_model, **inputs)
        # The model's own prefix runs masked out (its length, not the text's: a task added later may be longer).
        masked = torch.zeros(1, model.config.pre_seq_len, dtype=torch.long, device=input_ids.device)
        prepared = self.prepare(model, BackboneCall("encoder_only", inputs, 1, masked))
        prepared.state.recorded = {}
        training = model.training
        model.eval()  # no dropout in what is recorded
        try:
            self.run(model, stock_forward(model.base_model), prepared, return_dict=True)
        finally:
            model.train(training)
        layers = [prepared.state.recorded[layer] for layer in range(len(prepared.state.key_values))]
        # (1, kv_heads, P, head_dim) per layer -> rows laid out as prefix_key_values reads them.
        rows = [tensor[0].transpose(0, 1).reshape(tensor.shape[2], -1) for pair in layers for tensor in pair]
        return torch.stack(rows, dim=1).reshape(len(token_ids), -1)

    def attention_implementation(self, requested: str) -> str:
        return prefix_attention_implementation(requested)

    def get_prompt(self, model: nn.Module, batch_size: int, route: Route | None = None) -> Any:
        prefix = model.prefix_encoder() if route is None else routed_virtual_tokens(model, route)
        prefix = prefix.to(model.base_model.get_input_embeddings().weight.dtype)
        return prefix_key_values(prefix, batch_size, model.config, model.prefix_dropout)

    def prepare(self, model: nn.Module, call: BackboneCall) -> Prepared:
        route, mask, batch_size = call.route, call.prefix_attention_mask, call.batch_size
        if route is None:
            check_prefix_attention_mask(mask, batch_size, model.config.pre_seq_len)
            state = PrefixState(model.get_prompt(batch_size), mask, rows=prefix_rows(model.config))
        else:
            state = PrefixState(
                model.get_prompt(batch_size, prefix_names=route), route.combined_mask(mask), rows=route.rows
            )
        return Prepared({**call.inputs, "prefix_state": state}, state=state)

    @contextmanager
    def running(self, model: nn.Module, prepared: Prepared, skipped_layers: Iterable[int]) -> Iterator[None]:
        """The prefix handed to the attention patches for the forward; afterwards, every layer checked to have
        taken its prefix."""
        attach_prefix(model._patched_attention, prepared.state)
        try:
            yield
        finally:
            # Gradient checkpointing re-runs layers in the backward pass: they need the prefix then.
            if not (model.training and model.is_activation_checkpointing):
                attach_prefix(model._patched_attention, None)
        prepared.state.layers_seen.update(skipped_layers)
        check_prefix_reached(prepared.state, model.config)
