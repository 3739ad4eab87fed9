"""Prefix tuning for decoder-only language models: training with the causal-LM loss and ``generate()``.

The prefix reaches the decoder the same way it reaches an encoder: ``get_prompt`` builds its
per-layer keys/values and the attention layers put them in front of the real tokens'
(``injection.py``). What a decoder adds:

* **Positions** come from the padding mask (``cumsum - 1``), so left-padded batches work and real
  tokens keep the positions they have without a prefix (virtual tokens take none).
* **Generation**: the cache ``generate()`` keeps holds real tokens only; every step adds the
  prefix again inside the attention, so nothing about the prefix shifts positions or cache
  lengths, and beam search (which expands the batch) gets one prefix per beam.

Concrete classes (``families.py``) only name the backbone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Cache, DynamicCache, GenerationMixin, PreTrainedConfig
from transformers.loss.loss_utils import ForCausalLMLoss
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils import can_return_tuple

from .errors import InputError
from .modeling_utils import PrefixModelMixin, cache_argument_name
from .named_prefixes import PrefixNames, names_as_positions, take_prefix_names

_LOSS_KWARGS = ("num_items_in_batch", "ignore_index", "shift_labels")
# transformers 5.x model outputs call the cache ``cache``; earlier 5.x releases ``past_key_values``.
_OUTPUT_CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def causal_position_ids(attention_mask: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Positions of the last ``seq_len`` tokens: the count of real tokens before each (left padding
    gets position 1, as transformers does, and is masked anyway)."""
    positions = attention_mask.long().cumsum(-1) - 1
    positions = positions.masked_fill(attention_mask == 0, 1)
    return positions[:, -seq_len:]


def context_length(config: PreTrainedConfig) -> int | None:
    return getattr(config, "max_position_embeddings", None)


class PrefixModelForCausalLM(PrefixModelMixin, GenerationMixin):
    """A frozen decoder and its frozen output layer, with a trainable prefix; trains with the
    causal-LM loss on real tokens only and generates with ``generate()``."""

    _peft_positions_supported = True

    # The loss takes Trainer's num_items_in_batch (tokens across devices and accumulation steps).
    accepts_loss_kwargs = True

    def __init__(self, config: PreTrainedConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.lm_head = nn.Linear(self.config.hidden_size, self.config.vocab_size, bias=False)
        self.post_init_prefix()

    @classmethod
    def can_generate(cls) -> bool:
        # transformers looks for GenerationMixin among a class's direct bases; here it is one level up.
        return True

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        self.lm_head = new_embeddings

    def frozen_modules(self) -> dict[str, nn.Module]:
        # The output layer is pretrained (often tied to the input embeddings): frozen, never saved.
        return {**super().frozen_modules(), "lm_head": self.lm_head}

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
        """``(batch, 1)``: how far peft's positions move each row's real tokens (its prefix length)."""
        if self.config.virtual_token_positions != "peft":
            return None
        if route is None:
            return torch.full((batch_size, 1), self.config.pre_seq_len, device=device)
        return route.mask.sum(1, keepdim=True)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        prefix_attention_mask: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        prefix_names: PrefixNames | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """As ``GPT2LMHeadModel.forward`` / ``LlamaForCausalLM.forward``: ``labels`` (``-100`` ignored)
        are shifted inside; ``attention_mask`` covers the real tokens (past ones included during
        generation); ``prefix_attention_mask`` (``(batch, pre_seq_len)``) can switch virtual tokens off;
        ``prefix_names`` (one per example) gives each example its named prefix (``named_prefixes.py``).
        """
        cache = kwargs.pop("past_key_values", cache)
        loss_kwargs = {key: kwargs.pop(key) for key in _LOSS_KWARGS if key in kwargs}
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("You must specify exactly one of input_ids or inputs_embeds")
        reference = input_ids if input_ids is not None else inputs_embeds
        batch_size, seq_len = reference.shape[:2]
        route = self.route_prefixes(take_prefix_names(prefix_names, kwargs), batch_size, reference.device)
        if use_cache is None:  # a cache is for generation; training needs none
            use_cache = bool(self.config.use_cache) and not self.training
        if use_cache and self.is_gradient_checkpointing and self.training and torch.is_grad_enabled():
            use_cache = False  # a growing cache would be written twice when checkpointed layers are replayed

        cached = cache.get_seq_length() if cache is not None else 0
        # Prompt tuning: the soft tokens go through the layers once, on the first forward, and then
        # sit in the generation cache before the real tokens.
        virtual = self.tuning.cached_tokens(self, route)
        soft_cached = virtual > 0 and cached > 0
        past = cached - virtual if soft_cached else cached
        total = past + seq_len
        # Virtual tokens take no positions and never enter the cache: the whole context stays for
        # real tokens (unless they run at peft's positions, after the virtual tokens).
        shift = self._position_shift(route, batch_size, reference.device)
        limit = context_length(self.config)
        if limit is not None and total + (int(shift.max()) if shift is not None else 0) > limit:
            taken = "the prefix takes none" if shift is None else "peft's positions put the virtual tokens first"
            raise InputError(
                f"{total} tokens are longer than the model's context ({limit} positions; {taken}); "
                "shorten the input (or max_new_tokens)"
            )
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, total, dtype=torch.long, device=reference.device)
        elif attention_mask.dim() != 2 or tuple(attention_mask.shape) != (batch_size, total):
            raise InputError(
                f"attention_mask must be (batch, past + new tokens) = ({batch_size}, {total}) for the real tokens "
                f"(the prefix is added by the model); got shape {tuple(attention_mask.shape)}"
            )
        if position_ids is None:
            position_ids = causal_position_ids(attention_mask, seq_len)
            if shift is not None:
                position_ids = position_ids + shift
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        inputs = {"input_ids": input_ids, "inputs_embeds": inputs_embeds, "attention_mask": attention_mask,
                  "position_ids": position_ids}  # fmt: skip
        prepared = self.tuning.prepare(self, "decoder", inputs, batch_size, prefix_attention_mask, soft_cached, route)
        outputs = self.tuning.run(
            self,
            self.base_model,
            prepared,
            use_cache=use_cache,
            return_dict=True,
            **{cache_argument_name(type(self.base_model)): cache},
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state[:, prepared.drop :]  # virtual tokens predict nothing
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(hidden_states)
        softcap = getattr(self.config, "final_logit_softcapping", None)
        if softcap is not None:  # Gemma-2 squashes its logits, as Gemma2ForCausalLM does
            logits = torch.tanh(logits / softcap) * softcap
        loss = None
        if labels is not None:
            loss = ForCausalLMLoss(logits, labels, vocab_size=self.config.vocab_size, **loss_kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{_OUTPUT_CACHE_FIELD: cache if use_cache else None},
        )
