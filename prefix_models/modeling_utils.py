"""What every prefix / prompt model class shares: construction, freezing, the forward through
the frozen backbone, prefix-only checkpoints.

A concrete class is ``Task mixin`` (``modeling_tasks.py``) + the backbone's ``*PreTrainedModel``,
plus three class attributes: ``config_class`` (which also fixes the method, prefix or prompt),
``backbone_class`` and, inherited from transformers, ``base_model_prefix`` (``"bert"``,
``"roberta"``): the attribute that holds the backbone, named as in transformers so stock
checkpoints load into it.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from transformers import AutoTokenizer, PreTrainedConfig, PreTrainedModel
from transformers import logging as hf_logging
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, cached_file

from .attention_patches import attach_prefix, patch_attention
from .configuration import validate_prefix_config
from .encoders import PrefixEncoder, PromptEncoder
from .errors import InputError
from .injection import (
    PrefixState,
    check_prefix_reached,
    prefix_attention_implementation,
    tag_attention_layers,
    use_attention_implementation,
)
from .prompt import (
    PrefixKeyValues,
    backbone_inputs,
    check_padding_mask,
    check_prefix_attention_mask,
    check_sequence_length,
    prefix_key_values,
    prompt_inputs,
)

logger = logging.getLogger(__name__)

HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies",
              "gguf_file")  # fmt: skip
# Backbone dimensions a prefix is tied to: a prefix trained on one shape cannot run on another.
_SHAPE_FIELDS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads")


@cache
def cache_argument_name(backbone_class: type) -> str:
    """The keyword the installed transformers uses for the attention cache.

    transformers 5.x calls it ``cache`` (``past_key_values`` is a deprecated alias); older
    releases only know ``past_key_values``.
    """
    parameters = inspect.signature(backbone_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def pool_features(
    backbone: nn.Module, sequence_output: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str
) -> torch.Tensor:
    """One vector per example for the sequence-level heads, from the real tokens' features.

    ``"pooler"``: the backbone's pooler on the first real token (BERT's tanh layer; what
    ``BertForSequenceClassification`` and P-tuning v2 read), or that token as is where the backbone
    has no pooler. ``"cls"``: the first real token's hidden state. ``"mean"``: the mean over the real
    tokens (padding excluded). With a frozen backbone the pooler stays as pretrained, and sentence-
    embedding checkpoints (sentence-transformers) never trained theirs: they were trained through a mean.
    """
    if pooling == "mean":
        if attention_mask is None:
            return sequence_output.mean(dim=1)
        weights = attention_mask.to(sequence_output.dtype).unsqueeze(-1)
        return (sequence_output * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    pooler = getattr(backbone, "pooler", None) if pooling == "pooler" else None
    if isinstance(pooler, nn.Linear):  # ALBERT: a bare linear layer on the first token, then its activation
        return backbone.pooler_activation(pooler(sequence_output[:, 0]))
    return pooler(sequence_output) if pooler is not None else sequence_output[:, 0]


@dataclass
class Encoded:
    """Backbone features of the real tokens only (no virtual-token positions)."""

    sequence_output: torch.Tensor
    pooled_output: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None
    attentions: tuple[torch.Tensor, ...] | None


class PrefixModelMixin:
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

    # ----------------------------------------------------------------------------------------
    # Training state
    # ----------------------------------------------------------------------------------------
    def frozen_modules(self) -> dict[str, nn.Module]:
        """The pretrained parts that stay frozen and out of prefix checkpoints, by attribute name:
        the backbone (a causal LM adds its pretrained output layer)."""
        return {self.base_model_prefix: self.base_model}

    def freeze_backbone(self) -> None:
        """Stop gradients to every backbone parameter; only the prefix/prompt and the head train.

        Called after construction *and* after ``from_pretrained`` loads weights: transformers 5
        re-creates parameters while loading, which drops a ``requires_grad=False`` set earlier.
        """
        modules = self.frozen_modules()
        for module in modules.values():
            module.requires_grad_(False)
        # Checkpoints hold only what trains; the same set tells Trainer that, on resume, missing
        # backbone keys are expected.
        self._keys_to_ignore_on_save = {f"{name}.{key}" for name, module in modules.items()
                                        for key in module.state_dict()}  # fmt: skip

    def set_attn_implementation(self, attn_implementation: str | dict, **kwargs: Any) -> None:
        """As in transformers; a prefix model maps ``"sdpa"`` / ``"eager"`` to the implementations that add
        the prefix (``prefix_sdpa`` / ``prefix_eager``) and refuses those that cannot host one."""
        if self.prefix_method != "prefix":
            return super().set_attn_implementation(attn_implementation, **kwargs)
        if isinstance(attn_implementation, dict):
            raise InputError("a prefix model takes one attn_implementation for all its attention ('sdpa' or 'eager')")
        use_attention_implementation(self, prefix_attention_implementation(attn_implementation))

    def upcast_trainable_parameters(self) -> None:
        """Keep what trains (prefix/prompt, head) in float32 when the frozen backbone was loaded in
        bfloat16/float16: optimizer updates to half-precision parameters are lost to rounding.
        The prefix is cast to the backbone's dtype on its way into the cache."""
        for parameter in self.parameters():
            if parameter.requires_grad and parameter.dtype in (torch.float16, torch.bfloat16):
                parameter.data = parameter.data.float()

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @torch.no_grad()
    def init_prompt(self, tokenizer: Any = None) -> None:
        """(Re)initialise the soft prompt as ``config.prompt_init`` says.

        ``random`` keeps transformers' normal init; ``vocab`` copies randomly sampled rows of the
        word embeddings; ``text`` copies the embeddings of ``config.prompt_init_text`` (tokenised
        with ``tokenizer``), truncated or repeated to ``pre_seq_len``.
        """
        init = self.config.prompt_init
        word_embeddings = self.base_model.get_input_embeddings()
        if word_embeddings.weight.is_meta:
            return
        if init == "vocab":
            self.prompt_encoder.init_from_vocab(word_embeddings)
        elif init == "text":
            if tokenizer is None:
                raise InputError(
                    'prompt_init="text" needs a tokenizer to turn prompt_init_text into token ids: pass '
                    "tokenizer=... to the model constructor or to from_pretrained"
                )
            token_ids = tokenizer(self.config.prompt_init_text, add_special_tokens=False)["input_ids"]
            if len(token_ids) == 0:
                raise InputError(f"prompt_init_text {self.config.prompt_init_text!r} tokenises to no tokens")
            self.prompt_encoder.init_from_token_ids(word_embeddings, torch.tensor(token_ids))

    def merge_prefix_projection(self) -> None:
        """Fold the reparameterisation MLP into a plain prefix table (outputs unchanged).

        Afterwards inference skips the MLP and ``save_pretrained`` writes only the table.
        """
        if self.prefix_method != "prefix":
            raise InputError("merge_prefix_projection applies to prefix models; prompt models have no projection")
        self.prefix_encoder.merge_projection()
        self.config.prefix_projection = False

    # ----------------------------------------------------------------------------------------
    # Forward through the frozen backbone
    # ----------------------------------------------------------------------------------------
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

    def encode(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        prefix_attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Encoded:
        """Run the backbone with the prefix (or prompt) and return features of the real tokens.

        ``prefix_attention_mask`` (``(batch, pre_seq_len)``, default ones) masks virtual tokens;
        zeros make the model its plain backbone plus head.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("You must specify exactly one of input_ids or inputs_embeds")
        backbone = self.base_model
        reference = input_ids if input_ids is not None else inputs_embeds
        batch_size, seq_len = reference.shape[:2]
        pre_seq_len = self.config.pre_seq_len

        inputs = backbone_inputs(
            backbone,
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
        )
        if self.prefix_method == "prefix":
            check_sequence_length(backbone, seq_len)
            check_padding_mask(attention_mask, batch_size, seq_len)
            state = self.prefix_state(batch_size, prefix_attention_mask)
            attach_prefix(self._patched_attention, state)
            try:
                outputs = backbone(**inputs, prefix_state=state, return_dict=True, **kwargs)
            finally:
                # Gradient checkpointing re-runs layers in the backward pass: they need the prefix then.
                if not (self.training and self.is_gradient_checkpointing):
                    attach_prefix(self._patched_attention, None)
            check_prefix_reached(state, self.config)
            sequence_output, hidden_states = outputs.last_hidden_state, outputs.hidden_states
        else:
            inputs = prompt_inputs(backbone, self.get_prompt(batch_size), prefix_attention_mask=prefix_attention_mask,
                                   **inputs)  # fmt: skip
            outputs = backbone(**inputs, return_dict=True, **kwargs)
            # Drop the soft-token positions so token-level outputs line up with the labels.
            sequence_output = outputs.last_hidden_state[:, pre_seq_len:]
            hidden_states = outputs.hidden_states
            if hidden_states is not None:
                hidden_states = tuple(h[:, pre_seq_len:] for h in hidden_states)

        pooling = getattr(self.config, "classifier_pooling", "pooler")
        pooled_output = pool_features(backbone, sequence_output, attention_mask, pooling)
        return Encoded(sequence_output, pooled_output, hidden_states, outputs.attentions)

    # ----------------------------------------------------------------------------------------
    # Checkpoints
    # ----------------------------------------------------------------------------------------
    def save_pretrained(
        self, save_directory: str | os.PathLike, *args: Any, save_base_model: bool = False, **kwargs: Any
    ):
        """Save the config and what trained (prefix/prompt + head); ``save_base_model=True`` saves everything.

        The config records ``base_model_name_or_path`` so ``from_pretrained`` can rebuild the
        frozen backbone. The full model is written anyway when there is no base to point to (a
        model built from a config) or when backbone parameters were unfrozen and trained.
        """
        full = save_base_model
        if not full and not self.config.base_model_name_or_path:
            logger.warning(
                "This model was not loaded with from_pretrained, so no base model is known to point to; "
                "saving the full model (backbone included) so the checkpoint can be reloaded."
            )
            full = True
        if not full and any(p.requires_grad for m in self.frozen_modules().values() for p in m.parameters()):
            logger.warning("Backbone parameters are trainable: saving the full model so nothing trained is lost.")
            full = True
        ignored = self._keys_to_ignore_on_save
        if full:
            self._keys_to_ignore_on_save = set()
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self._keys_to_ignore_on_save = ignored

    @classmethod
    def _load_backbone(cls, source: str, *model_args: Any, config: PreTrainedConfig, **kwargs: Any):
        """transformers' ``from_pretrained`` of our class on the backbone weights in ``source``."""
        gguf_file = kwargs.get("gguf_file")
        with _gguf_model_type(config, gguf_file):
            model, info = super().from_pretrained(
                source, *model_args, config=config, output_loading_info=True, _defer_prompt_init=True, **kwargs
            )
        if gguf_file:
            model.config.__dict__.pop("model_type", None)  # the loaded copy of the config, too
            if all(p.is_floating_point() for p in model.parameters()):
                # transformers dequantised the GGUF weights into plain float tensors: the model is an
                # ordinary one, and calling it quantized would only stop Trainer and save_pretrained.
                model.hf_quantizer = None
                model.is_quantized = False
                model.config.__dict__.pop("quantization_config", None)
        return model, info

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args: Any,
        base_model_name_or_path: str | os.PathLike | None = None,
        tokenizer: Any = None,
        **kwargs: Any,
    ):
        """Load a stock backbone checkpoint (starting prefix tuning) or a saved prefix model.

        A prefix-only checkpoint is recognised by its weights file holding no backbone tensors;
        its backbone is loaded from ``config.base_model_name_or_path`` (or the
        ``base_model_name_or_path`` argument, for a base that moved) and must have the shape
        the prefix was trained for. Keyword arguments naming config fields (``pre_seq_len``,
        ``num_labels``, ...) override the config, as in transformers.
        """
        path = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        want_info = kwargs.pop("output_loading_info", False)
        config = kwargs.pop("config", None)
        local_config = os.path.join(path, hub_kwargs.get("subfolder", ""), "config.json")
        if (
            config is None
            and os.path.isdir(path)
            and not hub_kwargs.get("gguf_file")
            and not os.path.isfile(local_config)
        ):
            raise InputError(
                f"{path} has no config.json: a model folder needs the config beside its weights (save_pretrained "
                "writes both); copy it back or pass config=..."
            )
        if config is None:
            config, kwargs = cls.config_class.from_pretrained(path, return_unused_kwargs=True, **kwargs)
            kwargs.update(hub_kwargs)
        config = cls._as_prefix_config(config)
        if "hidden_dropout_prob" in kwargs:  # the prefix dropout, also for configs without the field (decoders)
            config.hidden_dropout_prob = kwargs.pop("hidden_dropout_prob")
        validate_prefix_config(config, cls.config_class.prefix_method)
        if cls.config_class.prefix_method == "prompt" and config.prompt_init == "text" and tokenizer is None:
            tokenizer = _try_tokenizer(path, hub_kwargs)

        adapter_files = _prefix_only_weights_files(path, cls.base_model_prefix, hub_kwargs)
        if adapter_files is None:
            if not config.base_model_name_or_path:
                config.base_model_name_or_path = os.path.abspath(path) if os.path.isdir(path) else path
                # A GGUF base (weights dequantised on load) is found again through its file name.
                config.base_model_gguf_file = hub_kwargs.get("gguf_file")
            model, info = cls._load_backbone(path, *model_args, config=config, **kwargs)
            missing = set(info["missing_keys"])
        else:
            base = os.fspath(base_model_name_or_path or config.base_model_name_or_path or "")
            if not base:
                raise InputError(
                    f"{path} holds a prefix-only checkpoint but its config names no base_model_name_or_path; "
                    "pass base_model_name_or_path=... to from_pretrained"
                )
            config.base_model_name_or_path = base
            if getattr(config, "base_model_gguf_file", None):
                kwargs.setdefault("gguf_file", config.base_model_gguf_file)
                hub_kwargs = {**hub_kwargs, "gguf_file": kwargs["gguf_file"]}
            _check_base_shape(config, base, path, hub_kwargs)
            adapter_state = {key: tensor for file in adapter_files for key, tensor in load_file(file).items()}
            # The backbone's load report would call the prefix and head "newly initialised"; they
            # are loaded from the checkpoint right below, so keep that report quiet.
            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            try:
                model, info = cls._load_backbone(base, *model_args, config=config, **kwargs)
            finally:
                hf_logging.set_verbosity(verbosity)
            _load_adapter_state(model, adapter_state, path)
            missing = set(info["missing_keys"]) - set(adapter_state)
        _check_backbone_loaded(model, missing, base_model_name_or_path or config.base_model_name_or_path or path)
        model.freeze_backbone()
        model.upcast_trainable_parameters()
        if model.prefix_method == "prompt" and any(key.startswith("prompt_encoder.") for key in missing):
            model.init_prompt(tokenizer)
        if want_info:
            info["missing_keys"] = sorted(missing)
            return model, info
        return model


def _check_backbone_loaded(model: PrefixModelMixin, missing: set[str], source: str) -> None:
    """Every pretrained tensor of the frozen parts was in the checkpoint: a frozen tensor left at its
    random init would never train. The one exception is a pooler the model never reads (token-level
    heads, or ``classifier_pooling`` ``cls`` / ``mean``): token-classification checkpoints save none."""
    frozen = {f"{name}.{key}" for name, module in model.frozen_modules().items() for key in module.state_dict()}
    absent = sorted(key for key in missing if key in frozen)
    reads_pooler = getattr(model, "reads_pooled_output", False) and model.config.classifier_pooling == "pooler"
    pooler = f"{model.base_model_prefix}.pooler."
    unread = [key for key in absent if key.startswith(pooler) and not reads_pooler]
    absent = [key for key in absent if key not in unread]
    if not absent:
        return
    shown = ", ".join(absent[:5]) + (f", ... ({len(absent)} in all)" if len(absent) > 5 else "")
    hint = (" The checkpoint has no pooler: pass classifier_pooling='cls' (or 'mean') to read the hidden states "
            "instead" if all(key.startswith(pooler) for key in absent) else "")  # fmt: skip
    raise InputError(
        f"{source} does not hold every pretrained tensor {type(model).__name__} needs; these would start random "
        f"and stay frozen: {shown}.{hint}"
    )


@contextmanager
def _gguf_model_type(config: PreTrainedConfig, gguf_file: str | None):
    """transformers maps GGUF tensor names by ``config.model_type``: show it the backbone's type
    (``llama``) while loading, not ours (``llama_prefix``)."""
    if not gguf_file:
        yield
        return
    config.model_type = config.base_model_type
    try:
        yield
    finally:
        del config.model_type  # back to the class attribute


def _try_tokenizer(path: str, hub_kwargs: dict[str, Any]) -> Any:
    try:
        return AutoTokenizer.from_pretrained(path, **hub_kwargs)
    except (OSError, ValueError):
        return None  # init_prompt then raises the clear error, if the prompt needs initialising


def _prefix_only_weights_files(path: str, backbone_prefix: str, hub_kwargs: dict[str, Any]) -> list[str] | None:
    """The checkpoint's weights files (one, or every shard of a sharded save) if it is a prefix-only
    save, else None.

    A prefix-only save holds prefix/prompt encoder tensors and no backbone tensors; a stock
    backbone checkpoint holds no encoder tensors, a full save holds both. A sharded save is judged
    by its index, which names every tensor.
    """
    if hub_kwargs.get("gguf_file"):
        return None  # a GGUF file is a full (base) model
    lookup = {**hub_kwargs, "_raise_exceptions_for_missing_entries": False}
    try:
        index = cached_file(path, SAFE_WEIGHTS_INDEX_NAME, **lookup)
        weights = None if index else cached_file(path, SAFE_WEIGHTS_NAME, **lookup)
    except OSError:
        return None  # let transformers raise its usual, detailed error
    if index:
        try:
            with open(index, encoding="utf-8") as handle:
                weight_map = json.load(handle)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{index} is not a readable safetensors index ({error!r}); nothing was loaded. Re-save the model"
            ) from error
        if not _is_prefix_only(weight_map, backbone_prefix):
            return None
        shards = []
        for name in sorted(set(weight_map.values())):
            try:
                shard = cached_file(path, name, **lookup)
            except OSError:
                shard = None
            if shard is None:
                raise InputError(f"the prefix checkpoint {path} lists the shard {name} in its index, but the file "
                                 "is missing; nothing was loaded. Copy it back or re-save the model")  # fmt: skip
            _safetensors_keys(shard)  # a truncated shard is a clear error here
            shards.append(shard)
        return shards
    if weights is None:
        return None
    return [weights] if _is_prefix_only(_safetensors_keys(weights), backbone_prefix) else None


def _safetensors_keys(weights: str) -> list[str]:
    try:
        with safe_open(weights, framework="pt") as handle:
            return list(handle.keys())
    except Exception as error:  # safetensors raises its own error types for a bad header
        raise InputError(
            f"{weights} is not a readable safetensors file (truncated or corrupted: {error}); nothing was loaded. "
            "Re-save the model, or load an earlier checkpoint"
        ) from error


def _is_prefix_only(keys: Any, backbone_prefix: str) -> bool:
    has_encoder = any(key.startswith(("prefix_encoder.", "prompt_encoder.")) for key in keys)
    has_backbone = any(key.startswith(f"{backbone_prefix}.") for key in keys)
    return has_encoder and not has_backbone


def _check_base_shape(config: PreTrainedConfig, base: str, path: str, hub_kwargs: dict[str, Any]) -> None:
    try:
        base_dict, _ = PreTrainedConfig.get_config_dict(base, **hub_kwargs)
    except OSError as error:
        raise InputError(
            f"the prefix checkpoint {path} needs its base model {base!r}, which could not be loaded ({error}); "
            "pass base_model_name_or_path=... to from_pretrained to point at it"
        ) from error
    # Configs may store a field under its own name (GPT-2: n_layer for num_hidden_layers).
    names = {field: type(config).attribute_map.get(field, field) for field in _SHAPE_FIELDS}
    mismatched = [
        f"{field}: prefix trained for {getattr(config, field, None)}, base has {base_dict.get(name)}"
        for field, name in names.items()
        if name in base_dict and base_dict.get(name) != getattr(config, field, None)
    ]
    if mismatched:
        raise InputError(f"the prefix saved in {path} does not fit the base model {base!r}: " + "; ".join(mismatched))


def _load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor], path: str) -> None:
    expected = model.state_dict()
    unexpected = sorted(key for key in state if key not in expected)
    wrong_shape = [
        f"{key}: checkpoint {tuple(state[key].shape)}, model {tuple(expected[key].shape)}"
        for key in state
        if key in expected and state[key].shape != expected[key].shape
    ]
    if unexpected or wrong_shape:
        raise InputError(
            f"the prefix checkpoint in {path} does not match {type(model).__name__} built from its config"
            + (f"; unexpected tensors: {unexpected}" if unexpected else "")
            + (f"; wrong shapes: {wrong_shape}" if wrong_shape else "")
        )
    model.load_state_dict(state, strict=False)
