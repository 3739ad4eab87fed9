"""The two tuning methods as components: what each adds to a frozen backbone and how it changes a forward.

A model holds one, ``model.tuning``, chosen by its config's ``prefix_method`` field:

* :class:`PrefixTuning` (P-tuning v2 / prefix tuning): a ``PrefixEncoder`` whose keys and values enter
  every attention layer (``injection.py``, ``attention_patches.py``).
* :class:`PromptTuning`: a ``PromptEncoder`` whose soft tokens go before the input embeddings.

Each builds its parameters on the model (``prefix_encoder`` / ``prompt_encoder``, the names saved
checkpoints use), finishes construction, builds what a batch gets (``get_prompt``), and turns a
forward's backbone inputs into :class:`Prepared` inputs that :meth:`TuningMethod.run` feeds the
backbone. The forwards (``modeling_encoder.py``, ``modeling_causal_lm.py``, ``modeling_seq2seq.py``)
never ask which method they run: the backbone module applies it (``attachment.py`` calls ``prepare``
and ``run`` on every call of the backbone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .attachment import Role, stock_forward
from .attention_patches import attach_prefix, patch_attention
from .encoders import PrefixEncoder, PromptEncoder, prefix_rows
from .errors import InputError
from .injection import (
    PrefixState,
    check_prefix_reached,
    prefix_attention_implementation,
    tag_attention_layers,
    use_attention_implementation,
)
from .named_prefixes import Route, routed_virtual_tokens
from .prompt import (
    backbone_inputs,
    check_prefix_attention_mask,
    extend_attention_mask,
    prefix_key_values,
    prompt_inputs,
)


@dataclass
class Prepared:
    """Backbone keyword arguments for one forward, and what the forward needs to know about them."""

    inputs: dict[str, Any]
    # Leading output positions that are virtual tokens (prompt tuning), dropped from the outputs.
    drop: int = 0
    state: PrefixState | None = field(default=None, repr=False)


class TuningMethod:
    """The interface both methods implement."""

    name: ClassVar[str]
    # The model attribute (and checkpoint key prefix) of the method's encoder.
    encoder_attribute: ClassVar[str]

    def make_encoder(self, config: Any) -> nn.Module:
        """A new encoder (prefix table or soft prompt) for a task with this config."""
        raise NotImplementedError

    def build(self, model: nn.Module, config: Any) -> None:
        raise NotImplementedError

    def finish(self, model: nn.Module) -> None:
        """After transformers' weight init and freezing."""

    def attention_implementation(self, requested: str) -> str | None:
        """The implementation the backbone must run for ``requested`` (None: as requested)."""
        return None

    def cached_tokens(self, model: nn.Module, route: Route | None = None) -> int:
        """Virtual tokens a decoder's generation cache holds before the real ones."""
        return 0

    def get_prompt(self, model: nn.Module, batch_size: int, route: Route | None = None) -> Any:
        """What a batch gets: the model's own prefix for every row, or each row's task's (``route``)."""
        raise NotImplementedError

    def prepare(
        self,
        model: nn.Module,
        role: Role,
        inputs: dict[str, Any],
        batch_size: int,
        prefix_attention_mask: torch.Tensor | None,
        soft_cached: bool = False,
        route: Route | None = None,
    ) -> Prepared:
        raise NotImplementedError

    def run(
        self,
        model: nn.Module,
        forward: Callable[..., Any],
        prepared: Prepared,
        skipped_layers: Iterable[int] = (),
        **kwargs: Any,
    ) -> Any:
        """``forward(**prepared.inputs, **kwargs)`` (a backbone's stock forward); ``skipped_layers`` are prefix
        layers this call does not run (the decoder's, in an encoder-decoder's encoder stack)."""
        return forward(**prepared.inputs, **kwargs)


class PrefixTuning(TuningMethod):
    """Per-layer keys and values in front of every attention layer's own."""

    name = "prefix"
    encoder_attribute = "prefix_encoder"

    def make_encoder(self, config: Any) -> nn.Module:
        return PrefixEncoder(config)

    def build(self, model: nn.Module, config: Any) -> None:
        # Tell each attention layer its index, so it picks its own prefix (injection.py).
        tag_attention_layers(model.base_model, config)
        # DeBERTa-v2 and MPNet compute attention themselves: their attention gets a prefix forward.
        model._patched_attention = patch_attention(model.base_model)
        model.prefix_encoder = self.make_encoder(config)
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
        prepared = self.prepare(model, "encoder_only", inputs, 1, masked)
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

    def prepare(
        self,
        model: nn.Module,
        role: Role,
        inputs: dict[str, Any],
        batch_size: int,
        prefix_attention_mask: torch.Tensor | None,
        soft_cached: bool = False,
        route: Route | None = None,
    ) -> Prepared:
        if route is None:
            check_prefix_attention_mask(prefix_attention_mask, batch_size, model.config.pre_seq_len)
            state = PrefixState(model.get_prompt(batch_size), prefix_attention_mask, rows=prefix_rows(model.config))
        else:
            state = PrefixState(
                model.get_prompt(batch_size, prefix_names=route),
                route.combined_mask(prefix_attention_mask),
                rows=route.rows,
            )
        return Prepared({**inputs, "prefix_state": state}, state=state)

    def run(
        self,
        model: nn.Module,
        forward: Callable[..., Any],
        prepared: Prepared,
        skipped_layers: Iterable[int] = (),
        **kwargs: Any,
    ) -> Any:
        attach_prefix(model._patched_attention, prepared.state)
        try:
            outputs = forward(**prepared.inputs, **kwargs)
        finally:
            # Gradient checkpointing re-runs layers in the backward pass: they need the prefix then.
            if not (model.training and model.is_activation_checkpointing):
                attach_prefix(model._patched_attention, None)
        prepared.state.layers_seen.update(skipped_layers)
        check_prefix_reached(prepared.state, model.config)
        return outputs


class PromptTuning(TuningMethod):
    """Soft tokens before the input embeddings (an encoder-decoder's: before the source)."""

    name = "prompt"
    encoder_attribute = "prompt_encoder"

    def make_encoder(self, config: Any) -> nn.Module:
        return PromptEncoder(config)

    def build(self, model: nn.Module, config: Any) -> None:
        model.prompt_encoder = self.make_encoder(config)

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

    def prepare(
        self,
        model: nn.Module,
        role: Role,
        inputs: dict[str, Any],
        batch_size: int,
        prefix_attention_mask: torch.Tensor | None,
        soft_cached: bool = False,
        route: Route | None = None,
    ) -> Prepared:
        pre_seq_len = model.config.pre_seq_len if route is None else route.length
        if route is not None:  # shorter prompts are left-padded with masked soft tokens
            prefix_attention_mask = route.combined_mask(prefix_attention_mask)
        get_prompt = model.get_prompt if route is None else lambda size: model.get_prompt(size, prefix_names=route)
        if role == "encoder_only":  # positions and token types as the plain encoder gives its real tokens
            prepared = prompt_inputs(
                model.base_model, get_prompt(batch_size), prefix_attention_mask=prefix_attention_mask, **inputs
            )
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
            return Prepared(prepared, drop=pre_seq_len)
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


METHODS: dict[str, TuningMethod] = {method.name: method for method in (PrefixTuning(), PromptTuning())}


def tuning_method(name: str) -> TuningMethod:
    if name not in METHODS:
        raise InputError(f"prefix_method must be one of {tuple(METHODS)}, got {name!r}")
    return METHODS[name]
