"""``AutoPrefixModelFor*``: pick the prefix/prompt class from a checkpoint's ``model_type``.

``import prefix_models`` registers the named classes with the stock transformers Auto classes by name
(``registration.py``), so a saved prefix model loads with ``AutoModelForSequenceClassification`` /
``AutoModelForTokenClassification`` / ``AutoModelForCausalLM`` / ... and with ``pipeline(...)``; classes made
later (decoders accepted by capability) are registered here, by :func:`register_with_transformers`.

A fresh model takes the defaults its checkpoint decides (``defaults.checkpoint_defaults``: a sentence-transformers
checkpoint's own pooling) in the classes' ``from_pretrained``, as the scripts' models do; a keyword given wins.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from transformers import (
    AutoConfig,
    PreTrainedConfig,
    PreTrainedModel,
)

from . import families, named_classes
from .checkpoints import HUB_KWARGS, checkpoint_kind
from .configuration import PREFIX_METHODS
from .errors import InputError
from .modeling_causal_lm import PrefixModelForCausalLM
from .modeling_seq2seq import PrefixModelForSeq2SeqLM
from .modeling_tasks import (
    PrefixModelForMultipleChoice,
    PrefixModelForQuestionAnswering,
    PrefixModelForSequenceClassification,
    PrefixModelForTokenClassification,
)


def _classes_for(task_class: type[PreTrainedModel]) -> dict[tuple[str, str], type[PreTrainedModel]]:
    """``{(backbone model_type, method): class}`` for one task: the named classes (``named_classes.py``) and
    those made for decoders accepted by capability."""
    candidates = [
        *(getattr(named_classes, name) for name in named_classes.__all__),
        *families.CAPABILITY_CLASSES.values(),
    ]
    return {
        (model_class.config_class.base_model_type, model_class.config_class.prefix_method): model_class
        for model_class in candidates
        if isinstance(model_class, type) and issubclass(model_class, task_class)
    }


class _AutoPrefixModel:
    """Dispatch ``from_pretrained`` / ``from_config`` on ``model_type`` and ``method``."""

    _task_class: ClassVar[type[PreTrainedModel]]
    _more_supported: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any):
        raise OSError(f"{type(self).__name__} is built with from_pretrained(...) or from_config(...)")

    @classmethod
    def supported_model_types(cls) -> list[str]:
        return sorted({model_type for model_type, _ in _classes_for(cls._task_class)})

    @classmethod
    def model_class(
        cls, model_type: str, method: str | None = None, saved_method: str | None = None
    ) -> type[PreTrainedModel]:
        """The class for a config's ``model_type`` (``bert``, or a saved ``bert_prefix``) and method
        (``saved_method``: the ``prefix_method`` a saved config carries)."""
        for candidate in PREFIX_METHODS:
            if model_type.endswith(f"_{candidate}"):
                model_type = model_type.removesuffix(f"_{candidate}")
                saved_method = saved_method or candidate
        if method is not None and method not in PREFIX_METHODS:
            raise InputError(f"method must be one of {PREFIX_METHODS}, got {method!r}")
        if saved_method and method and method != saved_method:
            raise InputError(
                f"this checkpoint was saved by a {saved_method}-tuning model; method={method!r} cannot load it "
                f"(use method={saved_method!r} or leave method unset)"
            )
        method = method or saved_method or "prefix"
        classes = _classes_for(cls._task_class)
        if cls._task_class is PrefixModelForCausalLM and (model_type, method) not in classes:
            # A decoder not in families.DECODER_FAMILIES, accepted where its attention can host a prefix.
            family = families.decoder_family_by_capability(model_type)
            if family is not None:
                families.define_decoder_classes(family)
                register_with_transformers()
                classes = _classes_for(cls._task_class)
        methods = sorted(m for t, m in classes if t == model_type)
        if methods and method not in methods:
            raise InputError(
                f"{cls.__name__} supports method={' or '.join(map(repr, methods))} for model_type {model_type!r}, "
                f"not method={method!r}"
            )
        if (model_type, method) not in classes:
            raise InputError(
                f"model_type {model_type!r} is not supported by {cls.__name__}; supported model types: "
                f"{', '.join(cls.supported_model_types())}{cls._more_supported}"
            )
        return classes[(model_type, method)]

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args: Any,
        method: str | None = None,
        **kwargs: Any,
    ) -> PreTrainedModel:
        """Load a backbone checkpoint with a fresh prefix (``method="prefix"`` by default, or
        ``"prompt"``), or a saved prefix/prompt model; other keyword arguments as the class's
        ``from_pretrained`` (config fields such as ``pre_seq_len`` and ``num_labels`` included).

        A fresh model's config fields left unset take what the checkpoint decides (``prefix_models.defaults``):
        a sentence-transformers checkpoint's head reads the pooling it was trained with (``classifier_pooling``
        ``"mean"`` or ``"cls"``; its pooler layer was never trained), as ``run_glue.py`` does."""
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        model_type, saved_method = checkpoint_kind(
            os.fspath(pretrained_model_name_or_path),
            kwargs.get("config"),
            hub_kwargs,
            kwargs.get("base_model_name_or_path"),
        )
        model_class = cls.model_class(model_type, method, saved_method)
        return model_class.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    @classmethod
    def from_config(cls, config: PreTrainedConfig, method: str | None = None, **kwargs: Any) -> PreTrainedModel:
        """A randomly initialised model (no pretrained weights) for ``config``."""
        return cls.model_class(config.model_type, method, getattr(config, "prefix_method", None))(config, **kwargs)


class AutoPrefixModelForSequenceClassification(_AutoPrefixModel):
    """Sentence and sentence-pair classification (GLUE, SuperGLUE, or regression with ``num_labels=1``) on any
    encoder family (``families.ENCODER_FAMILIES``): ``BertPrefixForSequenceClassification``, ..."""

    _task_class = PrefixModelForSequenceClassification


class AutoPrefixModelForTokenClassification(_AutoPrefixModel):
    """One label per token (NER, POS) on any encoder family: ``RobertaPrefixForTokenClassification``, ..."""

    _task_class = PrefixModelForTokenClassification


class AutoPrefixModelForMultipleChoice(_AutoPrefixModel):
    """Inputs of shape ``(batch, num_choices, seq_len)``, one score per choice (COPA, SWAG), on any encoder
    family: ``BertPrefixForMultipleChoice``, ..."""

    _task_class = PrefixModelForMultipleChoice


class AutoPrefixModelForQuestionAnswering(_AutoPrefixModel):
    """Extractive question answering (SQuAD): span start and end logits per token, on any encoder family:
    ``BertPrefixForQuestionAnswering``, ..."""

    _task_class = PrefixModelForQuestionAnswering


class AutoPrefixModelForCausalLM(_AutoPrefixModel):
    """Decoder LMs with a prefix or prompt: GPT-2, Llama, Qwen2, Mistral, Gemma, Gemma-2 (``families.py``),
    and, found by capability, any other decoder whose attention dispatches through transformers'
    ``AttentionInterface`` (Qwen3, Phi-3, OLMo-2, Granite, Cohere, ...;
    ``families.decoder_family_by_capability``)."""

    _task_class = PrefixModelForCausalLM
    _more_supported = (
        ", and any other decoder whose attention dispatches through transformers' AttentionInterface and whose "
        "layers pass keyword arguments down to it (not BLOOM or MPT, which compute attention themselves, nor "
        "Falcon, StableLM or Nemotron, whose layers drop them)"
    )


class AutoPrefixModelForSeq2SeqLM(_AutoPrefixModel):
    """Encoder-decoders with a prefix on encoder self-, decoder self- and cross-attention: T5 (mT5,
    Flan-T5 configs) and BART (``families.SEQ2SEQ_FAMILIES``)."""

    _task_class = PrefixModelForSeq2SeqLM
    _task = "seq2seq_lm"


AUTO_PREFIX_CLASSES = (
    AutoPrefixModelForSeq2SeqLM,
    AutoPrefixModelForCausalLM,
    AutoPrefixModelForSequenceClassification,
    AutoPrefixModelForTokenClassification,
    AutoPrefixModelForMultipleChoice,
    AutoPrefixModelForQuestionAnswering,
)


def register_with_transformers() -> None:
    """Teach the stock ``AutoConfig`` / ``AutoModelFor*`` classes our model types."""
    for auto in AUTO_PREFIX_CLASSES:
        for model_class in _classes_for(auto._task_class).values():
            config_class = model_class.config_class
            AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
            auto._task_class.stock_auto_class.register(config_class, model_class, exist_ok=True)
