"""What every prefix / prompt model class is built from: the backbone, the prefix (or prompt) encoder,
``get_prompt`` (the one place that builds what a batch gets) and the attention implementation that
adds it. Freezing lives in ``training_state.py``, checkpoints in ``checkpoints.py``, the forward of
each model kind in ``modeling_encoder.py``, ``modeling_causal_lm.py`` and ``modeling_seq2seq.py``.

A concrete class is a task mixin + the backbone's ``*PreTrainedModel`` (``families.py``), plus
three class attributes: ``config_class`` (which also fixes the method, prefix or prompt),
``backbone_class`` and, inherited from transformers, ``base_model_prefix`` (``"bert"``,
``"roberta"``): the attribute that holds the backbone, named as in transformers so stock
checkpoints load into it.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from .attention_patches import patch_attention
from .checkpoints import CheckpointMixin
from .configuration import validate_prefix_config
from .encoders import PrefixEncoder, PromptEncoder
from .errors import InputError
from .injection import (
    PrefixState,
    prefix_attention_implementation,
    tag_attention_layers,
    use_attention_implementation,
)
from .prompt import PrefixKeyValues, check_prefix_attention_mask, prefix_key_values
from .training_state import TrainingStateMixin

__all__ = ["PrefixModelMixin", "cache_argument_name"]


@cache
def cache_argument_name(backbone_class: type) -> str:
    """The keyword the installed transformers uses for the attention cache.

    transformers 5.x calls it ``cache`` (``past_key_values`` is a deprecated alias); older
    releases only know ``past_key_values``.
    """
    parameters = inspect.signature(backbone_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


class PrefixModelMixin(TrainingStateMixin, CheckpointMixin):
    """Backbone + prefix (or prompt) encoder; the task mixins add the head and ``forward``."""

    backbone_class: ClassVar[type[PreTrainedModel]]
    config_class: ClassVar[type[PreTrainedConfig]]
    # The task heads average their loss over the local batch. Trainer would otherwise see the
    # **kwargs of forward, assume the loss is normalised by the global item count it passes in,
    # and multiply it by the number of processes: gradients doubled under 2-way data parallelism.
    accepts_loss_kwargs: ClassVar[bool] = False

    def __init__(self, config: PreTrainedConfig, tokenizer: Any = None, _defer_prompt_init: bool = False):
        config = self._as_prefix_config(config)
        validate_prefix_config(config, self.prefix_method)
        super().__init__(config)
        setattr(self, self.base_model_prefix, self.backbone_class(config))
        if self.prefix_method == "prefix":
            # Tell each attention layer its index, so it picks its own prefix (injection.py).
            tag_attention_layers(self.base_model, config)
            # DeBERTa-v2 and MPNet compute attention themselves: their attention gets a prefix forward.
            self._patched_attention = patch_attention(self.base_model)
            self.prefix_encoder = PrefixEncoder(config)
            # Encoders share their hidden dropout with the prefix, as the reference does; decoders
            # (GPT-2, Llama) have no such field and take it as a prefix-only setting (default 0).
            self.prefix_dropout = nn.Dropout(getattr(config, "hidden_dropout_prob", 0.0))
        else:
            self.prompt_encoder = PromptEncoder(config)
        # Prompt init from vocabulary rows needs loaded word embeddings: from_pretrained defers it.
        self._prompt_tokenizer = None if _defer_prompt_init else tokenizer
        self._defer_prompt_init = _defer_prompt_init

    @property
    def prefix_method(self) -> str:
        """``"prefix"`` (deep prompt tuning, every layer) or ``"prompt"`` (input layer only)."""
        return self.config_class.prefix_method

    @classmethod
    def _as_prefix_config(cls, config: PreTrainedConfig) -> PreTrainedConfig:
        # Accept the backbone's own config (BertConfig) for convenience: lift it to ours.
        if isinstance(config, cls.config_class):
            return config
        if getattr(config, "model_type", None) != cls.config_class.base_model_type:
            raise InputError(
                f"{cls.__name__} needs a {cls.config_class.__name__} (or a {cls.config_class.base_model_type} "
                f"config), got {type(config).__name__} with model_type {getattr(config, 'model_type', None)!r}"
            )
        values = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "transformers_version")}
        # The attention implementation is private state that to_dict() leaves out: carry it over.
        return cls.config_class(**values, attn_implementation=config._attn_implementation)

    def post_init_prefix(self) -> None:
        """Finish construction: transformers' weight init, then freeze the backbone, then the prompt init."""
        self.post_init()
        if self.prefix_method == "prefix":
            # The backbone's attention runs through ours, which adds the prefix keys/values.
            use_attention_implementation(self, prefix_attention_implementation(self.config._attn_implementation))
        self.freeze_backbone()
        if self.prefix_method == "prompt" and not self._defer_prompt_init:
            self.init_prompt(self._prompt_tokenizer)
        self._prompt_tokenizer = None

    def set_attn_implementation(self, attn_implementation: str | dict, **kwargs: Any) -> None:
        """As in transformers; a prefix model maps ``"sdpa"`` / ``"eager"`` to the implementations that add
        the prefix (``prefix_sdpa`` / ``prefix_eager``) and refuses those that cannot host one."""
        if self.prefix_method != "prefix":
            return super().set_attn_implementation(attn_implementation, **kwargs)
        if isinstance(attn_implementation, dict):
            raise InputError("a prefix model takes one attn_implementation for all its attention ('sdpa' or 'eager')")
        use_attention_implementation(self, prefix_attention_implementation(attn_implementation))

    def get_prompt(self, batch_size: int) -> PrefixKeyValues | torch.Tensor:
        """What the model adds to a batch of ``batch_size`` examples, built here and nowhere else (the
        P-tuning v2 reference's name for it).

        Prefix tuning: per layer, the prefix's ``(key, value)``, each ``(batch, kv_heads, pre_seq_len,
        head_dim)``, after the prefix dropout: ``get_prompt(b)[layer]`` is layer ``layer``'s pair.
        Prompt tuning: the soft tokens, ``(batch, pre_seq_len, hidden_size)``.
        """
        if self.prefix_method == "prefix":
            prefix = self.prefix_encoder().to(self.base_model.get_input_embeddings().weight.dtype)
            return prefix_key_values(prefix, batch_size, self.config, self.prefix_dropout)
        return self.prompt_encoder().unsqueeze(0).expand(batch_size, -1, -1)

    def prefix_state(self, batch_size: int, prefix_attention_mask: torch.Tensor | None = None) -> PrefixState:
        """What one forward hands the attention layers (``injection.py``): ``get_prompt(batch_size)`` and
        the virtual tokens' mask (``(batch, pre_seq_len)``, checked here; None: all attended)."""
        check_prefix_attention_mask(prefix_attention_mask, batch_size, self.config.pre_seq_len)
        return PrefixState(self.get_prompt(batch_size), prefix_attention_mask)
