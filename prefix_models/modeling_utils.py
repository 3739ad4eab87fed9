"""What every prefix / prompt model class is built from: :class:`PrefixPreTrainedModel`, the backbone
plus the tuning method component (``methods/``, chosen by ``config.prefix_method``: it builds the prefix
or prompt encoder) plus the task's head, and ``get_prompt``, the one place that builds what a batch gets.

The class is the index of what a prefix model can do; each concept's code has one home, which its methods
call: named tasks in ``named_prefixes.py``, what trains in ``training_state.py``, checkpoints in
``checkpoints.py``, the backbone's application of the method in ``attachment.py``. The task classes
(``modeling_tasks.py``, ``modeling_causal_lm.py``, ``modeling_seq2seq.py``) add the head and ``forward``.

A named class (``named_classes.py``) is a task class + the backbone's ``*PreTrainedModel`` (a decoder LM:
the family's stock ``*ForCausalLM``), plus two class attributes: ``config_class`` (which also fixes the
method, prefix or prompt) and ``backbone_class`` (None where the stock class builds the backbone).
``base_model_prefix`` (``"bert"``, ``"model"``), inherited from transformers, names the attribute that holds
the backbone, as in transformers, so stock checkpoints load into it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from . import checkpoints, named_prefixes, training_state
from .attachment import attach, prefix_disabled
from .checkpoints.peft import save_peft_adapter
from .configuration import our_model_types, validate_prefix_config
from .errors import InputError
from .methods import tuning_method
from .methods.prefix_tuning.encoder import PrefixKeyValues
from .methods.prefix_tuning.injection import use_attention_implementation
from .named_prefixes import DEFAULT_PREFIX, PrefixNames, Route

__all__ = ["PrefixPreTrainedModel"]


class PrefixPreTrainedModel(PreTrainedModel):
    """Backbone + prefix (or prompt) encoder + the task's head, if any; the task classes say which head
    and write ``forward``. What each part does lives in its own module; the methods here name it."""

    backbone_class: ClassVar[type[PreTrainedModel] | None]
    # How the backbone applies the method (attachment.Role): "encoder_only" or "decoder_only".
    backbone_role: ClassVar[str] = "encoder_only"
    config_class: ClassVar[type[PreTrainedConfig]]
    # The task heads average their loss over the local batch. Trainer would otherwise see the
    # **kwargs of forward, assume the loss is normalised by the global item count it passes in,
    # and multiply it by the number of processes: gradients doubled under 2-way data parallelism.
    accepts_loss_kwargs: ClassVar[bool] = False
    # Whether the forward can shift real tokens' positions as peft does (virtual_token_positions="peft").
    _peft_positions_supported: ClassVar[bool] = False
    # The attribute holding the task head (``classifier``, ``qa_outputs``) and its class (``task_heads/``);
    # None for language models.
    head_attribute: ClassVar[str | None] = None
    head_class: ClassVar[type[nn.Module] | None] = None
    # The stock Auto class that builds this task's models once prefix_models is imported (auto.py registers them
    # with it; a save names it in config.json's auto_map).
    stock_auto_class: ClassVar[type | None] = None
    # The task in ``defaults.TASKS``: which defaults a fresh model takes from its checkpoint (defaults.py).
    prefix_task: ClassVar[str | None] = None

    def __init__(self, config: PreTrainedConfig, tokenizer: Any = None, _defer_prompt_init: bool = False):
        config = self._as_prefix_config(config)
        validate_prefix_config(config)
        if config.shared_prefix:
            raise InputError(
                "shared_prefix marks a named task that runs its model's own prefix (add_head); a model's own config "
                "has shared_prefix=False"
            )
        if config.virtual_token_positions != "none" and not self._peft_positions_supported:
            raise InputError(
                f"virtual_token_positions={config.virtual_token_positions!r} (peft's positions) is for "
                f"decoder language models; {type(self).__name__} takes 'none'"
            )
        super().__init__(config)
        if self.backbone_class is not None:  # else the stock class (a decoder's *ForCausalLM) built it
            setattr(self, self.base_model_prefix, self.backbone_class(config))
        # The method is a component (methods/): it builds its parameters here, and the backbone applies it
        # on every call, whoever makes the call (attachment.py).
        self.tuning = tuning_method(config.prefix_method)
        self.tuning.build(self, config)
        self._attach_backbones()
        # Further named tasks on the same backbone (named_prefixes.py), filled by _post_init_prefix / load_prefix.
        self.prefix_bank = nn.ModuleDict()
        # Prompt init from vocabulary rows needs loaded word embeddings: from_pretrained defers it.
        self._prompt_tokenizer = None if _defer_prompt_init else tokenizer
        self._defer_prompt_init = _defer_prompt_init
        if self.head_attribute:
            self.num_labels = config.num_labels
            setattr(self, self.head_attribute, self.build_head(config))
        self._post_init_prefix()

    def build_head(self, config: PreTrainedConfig) -> nn.Module | None:
        """A new head (``head_class``) for a task with this config."""
        return self.head_class(config) if self.head_class is not None else None

    def _attach_backbones(self) -> None:
        attach(self, self.base_model, self.backbone_role)

    @contextmanager
    def disable_prefix(self) -> Iterator[None]:
        """Run the plain backbone inside the block: no prefix, no prompt (peft's ``disable_adapter()``),
        e.g. ``with model.disable_prefix(): reference = model(**batch).logits``.

        Yields:
            Nothing; on leaving the block the model runs its prefix (or prompt) again.
        """
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

    def _post_init_prefix(self) -> None:
        """Finish construction: the named tasks the config lists, transformers' weight init, then freeze the
        backbone, then the prompt init."""
        named_prefixes.build_prefix_bank(self)
        self.post_init()
        self._keys_to_ignore_on_load_missing |= self._new_by_design()
        self.freeze_backbone()
        self.tuning.finish(self)
        self._prompt_tokenizer = None

    def _new_by_design(self) -> set[str]:
        """What no stock checkpoint holds, as key patterns: every part outside the frozen, pretrained ones (the
        prefix or prompt encoder, the task head, named prefixes). transformers' load report leaves these out of
        its MISSING list (``_keys_to_ignore_on_load_missing``), so that it names only real problems: a backbone
        tensor the checkpoint lacks, or one the model does not know."""
        frozen = self.frozen_modules()
        return {rf"^{re.escape(name)}\." for name, _ in self.named_children() if name not in frozen}

    def _adjust_missing_and_unexpected_keys(self, loading_info: Any) -> None:
        # transformers drops the _keys_to_ignore_on_load_missing from the missing keys it reports and returns;
        # from_pretrained still needs to know which new parts the checkpoint lacked, to start them itself (a prefix
        # from text, a prompt from the vocabulary): kept in new_keys_not_loaded.
        patterns = [re.compile(pattern) for pattern in self._new_by_design()]
        self.new_keys_not_loaded = {
            key for key in loading_info.missing_keys if any(pattern.search(key) for pattern in patterns)
        }
        super()._adjust_missing_and_unexpected_keys(loading_info)

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

        Args:
            batch_size: The number of examples the prefix (or prompt) is built for.
            prefix_names: One task name (or position in ``prefix_names``) per example, or a routed batch;
                None gives every row the model's own prefix.

        Returns:
            Prefix tuning: a tuple with one ``(key, value)`` pair per layer. Prompt tuning: the soft tokens.

        Raises:
            InputError: A name that is not one of ``prefix_names``, or a list whose length is not ``batch_size``.
        """
        device = self.base_model.get_input_embeddings().weight.device
        return self.tuning.get_prompt(self, batch_size, self.route_prefixes(prefix_names, batch_size, device))

    # -- named tasks on one backbone (named_prefixes.py) -------------------------------------------
    @property
    def prefix_names(self) -> list[str]:
        """Every prefix this model can route to: its own (``"default"``) first, then the loaded ones by name
        (sorted: config.json sorts its keys, so this order survives save and reload, and with it the
        positions ``prefix_names`` may be given as)."""
        return [DEFAULT_PREFIX, *sorted(self.prefix_bank.keys())]

    def prefix_config(self, name: str = DEFAULT_PREFIX) -> PreTrainedConfig:
        """The config of the task ``name`` (its ``pre_seq_len``, ``num_labels``, ``id2label``, ...)."""
        named_prefixes.check_known(self, name)
        return self.config if name == DEFAULT_PREFIX else self.prefix_bank[name].config

    def task_modules(self, name: str) -> dict[str, nn.Module]:
        """``{"prefix_encoder": ..., "classifier": ...}`` of the task ``name``: what trains for it."""
        return named_prefixes.task_modules(self, name)

    def add_prefix(self, name: str, tokenizer: Any = None, **config_fields: Any) -> None:
        """Add a new task ``name``, freshly initialised, to train beside the others.

        Its config is the model's own with ``config_fields`` changed (``pre_seq_len``, ``num_labels``,
        ``id2label``, ``problem_type``, ``prefix_projection``, ``classifier_pooling``, ...). It starts as its
        config's ``prefix_init`` / ``prompt_init`` says; a text init reads its text with ``tokenizer``.

        Args:
            name: The new task's name: letters, digits, ``_`` or ``-``, not one the model already has.
            tokenizer: Reads the init text when the task starts from text (``prefix_init="text"`` or
                ``prompt_init="text"``).
            **config_fields: Fields of the model's config that differ for this task.

        Raises:
            InputError: A name that is taken or not allowed, a keyword that is not a config field, or a field value
                the config refuses.
        """
        named_prefixes.add_prefix(self, name, tokenizer, **config_fields)

    def add_head(self, name: str, **config_fields: Any) -> None:
        """Add a new task ``name`` that runs this model's own prefix (or prompt) with a fresh head of its own.

        Every task added this way shares the one prefix: mixed batches train it on all their examples, and each
        head on its own task's only (P-tuning v2's multi-task pre-training). ``config_fields`` set the head's
        labels (``num_labels``, ``id2label``, ``problem_type``, ``classifier_pooling``, ...); fields that shape
        the prefix are refused. ``save_prefix(name, ...)`` writes the shared prefix with this task's head, a
        one-task checkpoint like any other.

        Args:
            name: The new task's name: letters, digits, ``_`` or ``-``, not one the model already has.
            **config_fields: The head's label fields (``num_labels``, ``id2label``, ``label2id``, ``problem_type``,
                ``classifier_pooling``, ...).

        Raises:
            InputError: A name that is taken or not allowed, a model without a task head (language models), a
                keyword that is not a config field, or a field that shapes the prefix (use ``add_prefix``).
        """
        named_prefixes.add_head(self, name, **config_fields)

    def load_prefix(
        self, path: str | os.PathLike, name: str, ignore_mismatched_base: bool = False, **kwargs: Any
    ) -> None:
        """Add the prefix (or prompt) and head saved in ``path`` as the task ``name``.

        ``path`` is a one-task prefix checkpoint (``save_pretrained`` or ``save_prefix``) of the same base
        weights (its ``base_model_fingerprint``; ``ignore_mismatched_base=True`` loads it on other weights) and
        method, or a peft adapter. Everything is checked before the model changes; hub keyword arguments
        (``revision``, ``token``, ...) are passed on. The new task's parameters are trainable.

        Args:
            path: A local folder or hub id holding the task.
            name: The name the task gets in this model (``prefix_names``).
            ignore_mismatched_base: Load a prefix whose base weights differ from this model's, with a warning.
            **kwargs: Hub options (``revision``, ``token``, ``cache_dir``, ...).

        Raises:
            InputError: A name that is taken, a folder that holds no one-task prefix (or several tasks), another
                method, task kind, position convention or backbone shape, other base weights (unless
                ``ignore_mismatched_base``), or tensors that do not fit. The model is left as it was.
        """
        named_prefixes.load_prefix(self, path, name, ignore_mismatched_base, **kwargs)

    def save_prefix(self, name: str, save_directory: str | os.PathLike) -> None:
        """Write the task ``name`` alone as a prefix checkpoint (config + prefix + head; the base by
        reference), which ``from_pretrained``, the Auto classes and ``load_prefix`` read.

        Args:
            name: The task to write (``"default"`` is the model's own; an ``add_head`` task is written with the
                shared prefix and its own head).
            save_directory: The folder to write; created if missing.

        Raises:
            InputError: An unknown task name, or a model built from a config, which has no base to point at (use
                ``save_pretrained``).
        """
        named_prefixes.save_prefix(self, name, save_directory)

    def save_peft_adapter(self, save_directory: str | os.PathLike, prefix_name: str = DEFAULT_PREFIX) -> None:
        """Write the task ``prefix_name`` as a peft adapter folder (decoder LMs; see ``checkpoints/peft.py``)."""
        save_peft_adapter(self, save_directory, prefix_name)

    def delete_prefix(self, name: str) -> None:
        """Remove a loaded task (the model's own, ``"default"``, stays)."""
        named_prefixes.delete_prefix(self, name)

    def prefix_index(self, prefix_names: PrefixNames) -> torch.Tensor:
        """Names -> their positions in ``prefix_names`` (a 1-D integer tensor is taken as such positions)."""
        return named_prefixes.prefix_index(self, prefix_names)

    def route_prefixes(
        self, prefix_names: PrefixNames | Route | None, batch_size: int, device: torch.device | None = None
    ) -> Route | None:
        """The :class:`~prefix_models.named_prefixes.Route` of a batch (None: every row runs the model's own
        prefix, as without names)."""
        return named_prefixes.route_prefixes(self, prefix_names, batch_size, device)

    # -- what trains (training_state.py) -------------------------------------------------------------
    def frozen_modules(self) -> dict[str, nn.Module]:
        """The pretrained parts that stay frozen and out of prefix checkpoints, by attribute name:
        the backbone (a causal LM adds its pretrained output layer)."""
        return {self.base_model_prefix: self.base_model}

    def freeze_backbone(self) -> None:
        """Stop gradients to every backbone parameter; only the prefix/prompt and the head train (again after
        ``from_pretrained``, which re-creates parameters)."""
        training_state.freeze_backbone(self)

    def upcast_trainable_parameters(self) -> None:
        """Keep what trains in float32 over a bfloat16/float16 backbone."""
        training_state.upcast_trainable_parameters(self)

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def merge_prefix_projection(self) -> None:
        """Fold the reparameterisation MLP into a plain prefix table (outputs unchanged), for the model's
        own prefix and every named one; afterwards ``save_pretrained`` writes only the table."""
        training_state.merge_prefix_projection(self)

    def init_prefix(self, tokenizer: Any = None, task: nn.Module | None = None) -> None:
        """(Re)initialise the prefix as ``config.prefix_init`` says (``text``: the backbone's own keys and
        values of ``config.prefix_init_text``, read with ``tokenizer``; ``random``: transformers' init)."""
        training_state.init_prefix(self, tokenizer, task)

    def init_prompt(self, tokenizer: Any = None, task: nn.Module | None = None) -> None:
        """(Re)initialise the soft prompt as ``config.prompt_init`` says (``random``, ``vocab`` or ``text``)."""
        training_state.init_prompt(self, tokenizer, task)

    # -- checkpoints (checkpoints.py) ----------------------------------------------------------------
    def save_pretrained(
        self, save_directory: str | os.PathLike, *args: Any, save_base_model: bool = False, **kwargs: Any
    ) -> Any:
        """Save the config and what trained (prefix/prompt + head); ``save_base_model=True`` saves everything.

        The config records ``base_model_name_or_path`` so ``from_pretrained`` can rebuild the
        frozen backbone, and ``base_model_fingerprint`` (``checkpoints/fingerprint.py``) so that it
        loads onto those weights only. The full model is written anyway when there is no base to point to (a
        model built from a config) or when backbone parameters were unfrozen and trained.
        """
        return checkpoints.save_pretrained(
            self, super().save_pretrained, save_directory, *args, save_base_model=save_base_model, **kwargs
        )

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args: Any,
        base_model_name_or_path: str | os.PathLike | None = None,
        tokenizer: Any = None,
        prefix_init_from: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> PrefixPreTrainedModel:
        """Load a stock backbone checkpoint (starting prefix tuning), a saved prefix model or a peft adapter.

        A prefix-only checkpoint is recognised by its weights file holding no backbone tensors;
        its backbone is loaded from ``config.base_model_name_or_path`` (or the
        ``base_model_name_or_path`` argument, for a base that moved) and must have the shape
        the prefix was trained for and the weights its ``base_model_fingerprint`` records (a copy or a
        dtype cast of them; ``ignore_mismatched_base=True`` loads it on other weights, with a warning).
        Keyword arguments naming config fields (``pre_seq_len``, ``num_labels``, ...) override the config,
        as in transformers.

        ``prefix_init_from`` (transfer): on a base checkpoint, start the prefix (or prompt) from one saved before,
        a ``save_prefix`` folder, ``run_multitask.py``'s ``prefixes/<task>`` or a run folder saved by
        ``save_pretrained``, with a fresh head for this model's labels. It must be of this model's base weights
        (its fingerprint), method, ``pre_seq_len`` and prefixed layers; a ``prefix_projection`` source starts a
        plain table from the table its MLP computes (``checkpoints.read_init_source``).
        """
        return checkpoints.from_pretrained(
            cls,
            super().from_pretrained,
            pretrained_model_name_or_path,
            *model_args,
            base_model_name_or_path=base_model_name_or_path,
            tokenizer=tokenizer,
            **({} if prefix_init_from is None else {"prefix_init_from": prefix_init_from}),
            **kwargs,
        )
