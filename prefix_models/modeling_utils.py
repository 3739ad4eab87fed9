"""What every prefix / prompt model class is built from: the backbone, the tuning method component
(``methods.py``, chosen by ``config.prefix_method``: it builds the prefix or prompt encoder) and
``get_prompt``, the one place that builds what a batch gets. Freezing lives in ``training_state.py``,
checkpoints in ``checkpoints.py``, the forward of each model kind in ``modeling_encoder.py``,
``modeling_causal_lm.py`` and ``modeling_seq2seq.py``.

A concrete class is a task mixin + the backbone's ``*PreTrainedModel`` (a decoder LM: the family's stock
``*ForCausalLM``; ``families.py``), plus three class attributes: ``config_class`` (which also fixes the
method, prefix or prompt), ``backbone_class`` (None where the stock class builds the backbone) and,
inherited from transformers, ``base_model_prefix`` (``"bert"``, ``"model"``): the attribute that holds
the backbone, named as in transformers so stock checkpoints load into it. The backbone module applies
the method on every call (``attachment.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from .attachment import attach, prefix_disabled
from .checkpoints import CheckpointMixin
from .configuration import our_model_types, validate_prefix_config
from .errors import InputError
from .injection import (
    use_attention_implementation,
)
from .methods import tuning_method
from .named_prefixes import NamedPrefixMixin, PrefixNames, Route
from .prompt import PrefixKeyValues
from .training_state import TrainingStateMixin

__all__ = ["PrefixModelMixin"]


class PrefixModelMixin(NamedPrefixMixin, TrainingStateMixin, CheckpointMixin):
    """Backbone + prefix (or prompt) encoder; the task mixins add the head and ``forward``."""

    backbone_class: ClassVar[type[PreTrainedModel] | None]
    # How the backbone applies the method (attachment.py): "encoder" or "decoder".
    backbone_role: ClassVar[str] = "encoder"
    config_class: ClassVar[type[PreTrainedConfig]]
    # The task heads average their loss over the local batch. Trainer would otherwise see the
    # **kwargs of forward, assume the loss is normalised by the global item count it passes in,
    # and multiply it by the number of processes: gradients doubled under 2-way data parallelism.
    accepts_loss_kwargs: ClassVar[bool] = False
    # Whether the forward can shift real tokens' positions as peft does (virtual_token_positions="peft").
    _peft_positions_supported: ClassVar[bool] = False

    def __init__(self, config: PreTrainedConfig, tokenizer: Any = None, _defer_prompt_init: bool = False):
        config = self._as_prefix_config(config)
        validate_prefix_config(config)
        if config.virtual_token_positions != "none" and not self._peft_positions_supported:
            raise InputError(f"virtual_token_positions={config.virtual_token_positions!r} (peft's positions) is for "
                             f"decoder language models; {type(self).__name__} takes 'none'")  # fmt: skip
        super().__init__(config)
        if self.backbone_class is not None:  # else the stock class (a decoder's *ForCausalLM) built it
            setattr(self, self.base_model_prefix, self.backbone_class(config))
        # The method is a component (methods.py): it builds its parameters here, and the backbone applies it
        # on every call, whoever makes the call (attachment.py).
        self.tuning = tuning_method(config.prefix_method)
        self.tuning.build(self, config)
        self._attach_backbones()
        # Further named tasks on the same backbone (named_prefixes.py), filled by post_init_prefix / load_prefix.
        self.prefix_bank = nn.ModuleDict()
        # Prompt init from vocabulary rows needs loaded word embeddings: from_pretrained defers it.
        self._prompt_tokenizer = None if _defer_prompt_init else tokenizer
        self._defer_prompt_init = _defer_prompt_init

    def _attach_backbones(self) -> None:
        attach(self, self.base_model, self.backbone_role)

    @contextmanager
    def disable_prefix(self) -> Iterator[None]:
        """Run the plain backbone inside the block: no prefix, no prompt (peft's ``disable_adapter()``),
        e.g. ``with model.disable_prefix(): reference = model(**batch).logits``."""
        with prefix_disabled(self):
            yield

    # peft's name, for code written against peft models (TRL's reference-model switch among them).
    disable_adapter = disable_prefix

    @property
    def prefix_method(self) -> str:
        """``"prefix"`` (deep prompt tuning, every layer) or ``"prompt"`` (input layer only): the config's field."""
        return self.config.prefix_method

    @classmethod
    def _as_prefix_config(cls, config: PreTrainedConfig) -> PreTrainedConfig:
        # Accept the backbone's own config (BertConfig) for convenience: lift it to ours.
        if not isinstance(config, cls.config_class):
            if getattr(config, "model_type", None) not in our_model_types(cls.config_class.base_model_type):
                raise InputError(
                    f"{cls.__name__} needs a {cls.config_class.__name__} (or a {cls.config_class.base_model_type} "
                    f"config), got {type(config).__name__} with model_type {getattr(config, 'model_type', None)!r}"
                )
            values = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "transformers_version")}
            # The attention implementation is private state that to_dict() leaves out: carry it over.
            config = cls.config_class(**values, attn_implementation=config._attn_implementation)
        validate_prefix_config(config)
        named = cls.config_class.prefix_method
        if config.prefix_method != named:
            # The class names stand for their method (*Prefix* / *Prompt*); the Auto classes pick by the config.
            other = cls.__name__.replace(named.capitalize(), config.prefix_method.capitalize(), 1)
            raise InputError(
                f"{cls.__name__} is the {named}-tuning class; this config (or checkpoint) has prefix_method="
                f"{config.prefix_method!r}: use {other}, or an AutoPrefixModelFor* class"
            )
        return config

    def post_init_prefix(self) -> None:
        """Finish construction: the named tasks the config lists, transformers' weight init, then freeze the
        backbone, then the prompt init."""
        self._build_prefix_bank()
        self.post_init()
        self.freeze_backbone()
        self.tuning.finish(self)
        self._prompt_tokenizer = None

    def set_attn_implementation(self, attn_implementation: str | dict, **kwargs: Any) -> None:
        """As in transformers; a prefix model maps ``"sdpa"`` / ``"eager"`` to the implementations that add
        the prefix (``prefix_sdpa`` / ``prefix_eager``) and refuses those that cannot host one."""
        if isinstance(attn_implementation, dict) or self.tuning.attention_implementation("sdpa") is None:
            return super().set_attn_implementation(attn_implementation, **kwargs)
        use_attention_implementation(self, self.tuning.attention_implementation(attn_implementation))

    def get_prompt(
        self, batch_size: int, prefix_names: PrefixNames | Route | None = None
    ) -> PrefixKeyValues | torch.Tensor:
        """What the model adds to a batch of ``batch_size`` examples, built here and nowhere else (the
        P-tuning v2 reference's name for it).

        Prefix tuning: per layer, the prefix's ``(key, value)``, each ``(batch, kv_heads, pre_seq_len,
        head_dim)``, after the prefix dropout: ``get_prompt(b)[layer]`` is layer ``layer``'s pair.
        Prompt tuning: the soft tokens, ``(batch, pre_seq_len, hidden_size)``.
        With ``prefix_names`` (one per example) each row gets its task's, left-padded to the longest.
        """
        device = self.base_model.get_input_embeddings().weight.device
        return self.tuning.get_prompt(self, batch_size, self.route_prefixes(prefix_names, batch_size, device))
