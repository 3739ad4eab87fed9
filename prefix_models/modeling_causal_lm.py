"""Prefix and prompt tuning for decoder-only language models: the family's own ``*ForCausalLM`` over a
backbone that carries the method.

A named class (``named_classes.py``) is this task class + the family's stock LM class (``LlamaForCausalLM``,
``GPT2LMHeadModel``, ...), so the forward, the LM head, logit scaling (Granite, Cohere), soft-capping
(Gemma-2), ``logits_to_keep`` and the loss are the family's own. The prefix reaches the decoder through
its backbone module (``model.model``, ``model.transformer``; ``attachment.py``), which also serves every
other caller of it (TRL's fused LM head calls ``model.base_model(...)`` and ``get_output_embeddings()``):

* **Positions** come from the padding mask (``cumsum - 1``), so left-padded batches work and real
  tokens keep the positions they have without a prefix (virtual tokens take none). Given ``position_ids``
  (``generate()`` passes them) number the real tokens the same way; ``virtual_token_positions="peft"``
  moves both kinds behind the virtual tokens, so ``generate()`` and ``forward`` run the same positions.
  A prompt's soft tokens sit right before each row's first real token (after its left padding).
* **Generation**: the cache ``generate()`` keeps holds real tokens only (a prompt's soft tokens once,
  in front); every step adds the prefix again inside the attention, so beam search (which expands the
  batch) gets one prefix per beam.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

from .attachment import context_length
from .errors import InputError
from .modeling_utils import PrefixPreTrainedModel
from .named_prefixes import PrefixNames, names_as_positions, take_prefix_names


class PrefixModelForCausalLM(PrefixPreTrainedModel):
    """A frozen decoder and its frozen output layer (the family's stock LM), with a trainable prefix or
    prompt; trains with the family's causal-LM loss and generates with ``generate()``."""

    # The stock LM class builds the backbone (and the output layer tied to its embeddings).
    backbone_class = None
    backbone_role = "decoder_only"
    prefix_task = "causal_lm"  # its name in defaults.TASKS: what it takes from a checkpoint
    stock_auto_class = AutoModelForCausalLM
    _peft_positions_supported = True
    # The loss takes Trainer's num_items_in_batch (tokens across devices and accumulation steps).
    accepts_loss_kwargs = True

    def _output_layer_name(self) -> str:
        head = self.get_output_embeddings()
        return next(name for name, module in self.named_children() if module is head)

    def frozen_modules(self) -> dict[str, nn.Module]:
        # The output layer is pretrained (often tied to the input embeddings): frozen, never saved.
        return {**super().frozen_modules(), self._output_layer_name(): self.get_output_embeddings()}

    def generate(self, inputs: torch.Tensor | None = None, *args: Any, **kwargs: Any):
        """``GenerationMixin.generate`` with the prefix; the inputs are checked first, because
        generate() would otherwise quietly drop an ``attention_mask`` that does not fit them."""
        input_ids = inputs if inputs is not None else kwargs.get("input_ids")
        mask = kwargs.get("attention_mask")
        if input_ids is not None and input_ids.dim() == 2:
            if mask is not None and tuple(mask.shape) != tuple(input_ids.shape):
                raise InputError(
                    f"attention_mask must be (batch, seq_len) = {tuple(input_ids.shape)} like the input ids (the "
                    f"prefix is added by the model); got shape {tuple(mask.shape)}"
                )
            limit, new = context_length(self.config), kwargs.get("max_new_tokens")
            total = input_ids.shape[1] + (new or 0)
            if limit is not None and new is not None and total > limit:
                raise InputError(
                    f"{input_ids.shape[1]} prompt tokens + max_new_tokens ({new}) = {total} is longer than the "
                    f"model's context ({limit} positions; the prefix takes none)"
                )
        names_as_positions(self, kwargs)
        return super().generate(inputs, *args, **kwargs)

    def _position_shift(self, route: Any, batch_size: int, device: torch.device) -> torch.Tensor | None:
        """``(batch, 1)``: how far peft's positions move each row's real tokens (its prefix length), whether
        their positions are counted from the mask or given (``generate()`` gives them, counted the same way)."""
        if self.config.virtual_token_positions != "peft":
            return None
        if route is None:
            return torch.full((batch_size, 1), self.config.pre_seq_len, device=device)
        return route.mask.sum(1, keepdim=True)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        prefix_attention_mask: torch.Tensor | None = None,
        prefix_names: PrefixNames | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """The family's stock forward (``LlamaForCausalLM.forward``, ...): ``labels`` (``-100`` ignored) are
        shifted inside; ``attention_mask`` covers the real tokens (past ones included during generation);
        ``position_ids``, when given, number the real tokens as the plain model does (peft's positions are
        added to them).
        Named here so that Trainer keeps these columns: ``prefix_attention_mask`` (``(batch, pre_seq_len)``)
        can switch virtual tokens off; ``prefix_names`` (one per example) gives each example its named
        prefix (``named_prefixes.py``). The backbone adds the prefix (``attachment.py``)."""
        prefix_names = take_prefix_names(prefix_names, kwargs)
        if prefix_names is not None:
            kwargs["prefix_names"] = prefix_names
        if prefix_attention_mask is not None:
            kwargs["prefix_attention_mask"] = prefix_attention_mask
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            labels=labels,
            **kwargs,
        )
