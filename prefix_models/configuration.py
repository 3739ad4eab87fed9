"""Prefix hyper-parameters as fields of the Hugging Face config, and their validation.

Each backbone config class (``BertConfig``, ``RobertaConfig``, ...) has two siblings, one per method
(``BertPrefixConfig`` and ``BertPromptConfig``, in ``named_classes.py``). They add the fields of
:class:`PrefixConfigMixin`, so the fields load, save and override like any other config field::

    BertPrefixForSequenceClassification.from_pretrained(path, pre_seq_len=16, num_labels=3)

Each sibling has its own ``model_type`` (``bert_prefix``, ``bert_prompt``) so that a saved prefix
checkpoint tells the stock ``AutoModelFor*`` classes which of our classes to build.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from transformers import PreTrainedConfig

from .errors import InputError

PREFIX_METHODS = ("prefix", "prompt")
PROMPT_INITS = ("random", "vocab", "text")
PREFIX_INITS = ("random", "text")
# What prefix_init="text" reads when no prefix_init_text is given: neutral words, so that the prefix starts
# as keys and values the backbone produces for real text rather than as noise.
DEFAULT_PREFIX_INIT_TEXT = "Read the following text and consider what it says."
CLASSIFIER_POOLINGS = ("pooler", "cls", "mean")
# "none": virtual tokens take no position; "peft": real tokens start at pre_seq_len, as peft runs them.
VIRTUAL_TOKEN_POSITIONS = ("none", "peft")
# The attention kinds a prefix reaches. An encoder-only or decoder-only model has one, its self-attention
# (SELF_ATTENTION); an encoder-decoder has three, encoder self-, decoder self- and cross-attention
# (ATTENTION_KINDS, the values prefix_kinds takes).
SELF_ATTENTION = "self"
ATTENTION_KINDS = ("encoder", "decoder", "cross")


@dataclass(repr=False, kw_only=True)
class PrefixConfigMixin:
    """The prefix/prompt-tuning fields a prefix config adds to its backbone's config (``BertPrefixConfig`` is
    ``PrefixConfigMixin`` + ``BertConfig``); ``hidden_dropout_prob`` is also the dropout applied to the prefix.

    A plain backbone checkpoint (``model_type`` ``bert``) reads into the prefix config as is: that is how
    prefix tuning starts. A checkpoint of another model type is refused by name.
    """

    # Which tuning method the model runs (methods/): "prefix" (every layer) or "prompt" (input layer).
    prefix_method: str = "prefix"
    pre_seq_len: int = 16
    prefix_projection: bool = False
    prefix_hidden_size: int = 512
    prompt_init: str = "random"
    prompt_init_text: str | None = None
    # Prefix tuning: start the prefix as the backbone's own keys/values of a text (Li & Liang), or random.
    prefix_init: str = "random"
    prefix_init_text: str | None = None
    # What the sequence-level heads (classification, multiple choice) read: see modeling_encoder.pool_features.
    classifier_pooling: str = "pooler"
    # Encoder-decoders: which attention kinds get a prefix (None: all of ATTENTION_KINDS).
    prefix_kinds: list[str] | None = None
    # Which layers carry a prefix (None: all). Indices count from 0 at the bottom; negative ones from the top
    # (-1 is the last), so [-3, -2, -1] is "the top 3" of every stack, whatever its depth. Layers left out run
    # the stock attention, and with nothing trainable below the lowest one no activations are kept there.
    prefix_layers: list[int] | None = None
    # Where real tokens sit relative to the virtual ones (checkpoints/peft.py): decoders only.
    virtual_token_positions: str = "none"
    # Further named prefixes on the same backbone (named_prefixes.py): name -> that task's config (a diff dict).
    prefix_tasks: dict[str, dict] | None = None
    # A named task's own: it runs the model's own prefix (shared by every such task) with a head of its own
    # (``add_head``; multi-task pre-training). Always False on a model's own config and in a saved prefix.
    shared_prefix: bool = False
    # Where the frozen backbone comes from; a prefix-only checkpoint reloads it from here.
    base_model_name_or_path: str | None = None
    # ... and the GGUF file in it, for a base loaded from GGUF (which cannot be re-saved).
    base_model_gguf_file: str | None = None
    # Which weights that base holds (checkpoints/fingerprint.py): a prefix loads onto equal weights only.
    base_model_fingerprint: dict[str, Any] | None = None

    # The backbone's own model type (``bert``): a class attribute, never serialised.
    base_model_type: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every prefix config class is found by its backbone's config and method (make_prefix_config_class):
        # the named ones (named_classes.py) as they are defined; the first class for a pair keeps it.
        super().__init_subclass__(**kwargs)
        stock = next(k for k in cls.__mro__ if issubclass(k, PreTrainedConfig) and not issubclass(k, PrefixConfigMixin))
        _CONFIG_CLASSES.setdefault((stock, cls.prefix_method), cls)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> tuple[dict, dict]:
        # A plain backbone checkpoint says model_type "bert"; reading it into BertPrefixConfig is the
        # normal way to start prefix tuning, so take it as ours instead of letting transformers warn
        # that the model types differ.
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        found = config_dict.get("model_type")
        if found in our_model_types(cls.base_model_type):
            if found != cls.base_model_type and "prefix_method" not in config_dict:
                # A save that predates the method field: the model type says which it was.
                config_dict = {**config_dict, "prefix_method": found.rsplit("_", 1)[1]}
            config_dict = {**config_dict, "model_type": cls.model_type}
        elif found is not None and not kwargs.get("gguf_file"):
            # Otherwise transformers only warns, and the backbone is built from the wrong config with
            # every pretrained tensor missing: a random model that trains as if nothing were wrong.
            raise InputError(
                f"{pretrained_model_name_or_path} holds a {found!r} checkpoint; the {cls.base_model_type} "
                f"{cls.prefix_method} classes ({cls.__name__}) load {cls.base_model_type!r} checkpoints and their "
                f"own {cls.model_type!r} saves. The AutoPrefixModelFor* classes pick the class from the "
                "checkpoint's model_type"
            )
        return config_dict, kwargs


# Field name -> (annotation, default): the fields above.
PREFIX_FIELDS: dict[str, tuple[Any, Any]] = {
    field.name: (field.type, field.default) for field in fields(PrefixConfigMixin)
}
# (stock config class, method) -> its prefix config class: the named classes, and those made on demand for
# backbones without one (decoders accepted by capability).
_CONFIG_CLASSES: dict[tuple[type, str], type[PreTrainedConfig]] = {}


def make_prefix_config_class(base: type[PreTrainedConfig], method: str = "prefix") -> type[PreTrainedConfig]:
    """``{Base}PrefixConfig``: the config of a backbone with prefixes, ``base`` plus the prefix fields
    (the method among them, ``prefix_method``) and its own model type (``bert_prefix``).

    ``method="prompt"`` gives its sibling ``{Base}PromptConfig``: the same config with ``prefix_method``
    defaulting to ``"prompt"`` and the model type ``bert_prompt``, under which prompt models are saved, so the
    stock Auto classes find the prompt classes. The named classes (``named_classes.py``) are returned as they
    are; other backbones get a class made here, once.
    """
    if method not in PREFIX_METHODS:
        raise InputError(f"method must be one of {PREFIX_METHODS}, got {method!r}")
    if (base, method) not in _CONFIG_CLASSES:  # each class made registers itself (__init_subclass__)
        stem = base.__name__.removesuffix("Config")
        prefix = _CONFIG_CLASSES.get((base, "prefix")) or type(
            f"{stem}PrefixConfig",
            (PrefixConfigMixin, base),
            {"__module__": __name__, "model_type": f"{base.model_type}_prefix", "base_model_type": base.model_type},
        )
        if method == "prompt":
            type(
                f"{stem}PromptConfig",
                (prefix,),
                {
                    "__module__": __name__,
                    "__annotations__": {"prefix_method": "str"},
                    "model_type": f"{base.model_type}_prompt",
                    "prefix_method": "prompt",
                },
            )
    return _CONFIG_CLASSES[base, method]


def our_model_types(base_model_type: str) -> tuple[str, ...]:
    """The model types a backbone's prefix configs read: its own and its saved prefix/prompt types."""
    return (base_model_type, *(f"{base_model_type}_{method}" for method in PREFIX_METHODS))


def attention_layer_counts(config: PreTrainedConfig) -> dict[str, int]:
    """How many attention layers of each kind the backbone has, in the order prefix rows take them: one kind
    (:data:`SELF_ATTENTION`) for encoder-only and decoder-only models; an encoder-decoder's encoder self-,
    decoder self- and cross-attention (:data:`ATTENTION_KINDS`)."""
    if not getattr(config, "is_encoder_decoder", False):
        return {SELF_ATTENTION: config.num_hidden_layers}
    decoder_layers = getattr(config, "num_decoder_layers", None) or getattr(config, "decoder_layers", None)
    return {"encoder": config.num_hidden_layers, "decoder": decoder_layers, "cross": decoder_layers}


def resolve_prefix_layers(prefix_layers: list[int] | None, num_layers: int) -> tuple[int, ...]:
    """The layer indices (ascending, non-negative) that ``prefix_layers`` picks in a stack of ``num_layers``."""
    if prefix_layers is None:
        return tuple(range(num_layers))
    return tuple(sorted(index % num_layers for index in prefix_layers))


def top_layers(count: int) -> list[int]:
    """``prefix_layers`` for the top ``count`` layers of every stack: ``[-count, ..., -1]``."""
    if not _is_int(count) or count <= 0:
        raise InputError(f"top_layers needs a positive number of layers, got {count!r}")
    return list(range(-count, 0))


def _check_prefix_layers(config: PreTrainedConfig, method: str) -> None:
    layers = getattr(config, "prefix_layers", None)
    if layers is None:
        return
    if method != "prefix":
        raise InputError(
            "prefix_layers applies to prefix tuning (keys and values at chosen layers); a prompt sits "
            "before the input layer only. Leave prefix_layers unset (None)"
        )
    counts = attention_layer_counts(config)
    depth = min(counts.values())
    stacks = ", ".join(f"{kind}: {count}" for kind, count in counts.items()) if len(counts) > 1 else f"{depth}"
    allowed = (
        f"distinct layer indices in [{-depth}, {depth - 1}] (the model has {stacks} layers; negative "
        "indices count from the top, -1 being the last), or None for every layer"
    )
    if not isinstance(layers, (list, tuple)) or not layers or not all(_is_int(index) for index in layers):
        raise InputError(f"prefix_layers must be a non-empty list of {allowed}; got {layers!r}")
    outside = [index for index in layers if not -depth <= index < depth]
    if outside:
        raise InputError(f"prefix_layers has {outside}, out of range: it takes {allowed}")
    for kind, count in counts.items():
        resolved = [index % count for index in layers]
        if len(set(resolved)) != len(resolved):
            repeated = sorted({index for index in resolved if resolved.count(index) > 1})
            where = f" of the {kind} stack" if len(counts) > 1 else ""
            raise InputError(
                f"prefix_layers names layer{'s' if len(repeated) > 1 else ''} {repeated}{where} more "
                f"than once ({layers}); it takes {allowed}"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate_prefix_config(config: PreTrainedConfig) -> None:
    """Raise a ``ValueError`` naming the field and what is allowed, before any weights are built."""
    method = getattr(config, "prefix_method", "prefix")
    if method not in PREFIX_METHODS:
        raise InputError(f"prefix_method must be one of {PREFIX_METHODS}, got {method!r}")
    pre_seq_len = getattr(config, "pre_seq_len", None)
    if not _is_int(pre_seq_len) or pre_seq_len <= 0:
        raise InputError(f"pre_seq_len must be a positive integer (the number of virtual tokens), got {pre_seq_len!r}")

    dropout = getattr(config, "hidden_dropout_prob", 0.0)
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise InputError(f"hidden_dropout_prob must be a number in [0, 1), got {dropout!r}")

    projection = getattr(config, "prefix_projection", False)
    if not isinstance(projection, bool):
        raise InputError(f"prefix_projection must be True or False, got {projection!r}")
    if projection:
        if method != "prefix":
            raise InputError(
                "prefix_projection applies to prefix tuning (the *Prefix* classes) only; "
                "prompt tuning has no reparameterisation. Set prefix_projection=False."
            )
        hidden = getattr(config, "prefix_hidden_size", None)
        if not _is_int(hidden) or hidden <= 0:
            raise InputError(
                "prefix_projection=True needs prefix_hidden_size, the width of the reparameterisation MLP, "
                f"to be a positive integer; got {hidden!r}"
            )

    prefix_init = getattr(config, "prefix_init", "random")
    if prefix_init not in PREFIX_INITS:
        raise InputError(f"prefix_init must be one of {PREFIX_INITS}, got {prefix_init!r}")
    if prefix_init == "text":
        if method != "prefix":
            raise InputError(
                'prefix_init="text" starts a prefix from the backbone\'s keys and values; prompt tuning '
                'has prompt_init="text" (word embeddings). Leave prefix_init unset'
            )
        if projection:
            raise InputError(
                'prefix_init="text" sets the prefix table itself; with prefix_projection=True the prefix '
                "is an MLP's output. Pick one"
            )
        text = getattr(config, "prefix_init_text", None)
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise InputError(f"prefix_init_text must be a non-empty text (or None for the default); got {text!r}")

    pooling = getattr(config, "classifier_pooling", "pooler")
    if pooling not in CLASSIFIER_POOLINGS:
        raise InputError(f"classifier_pooling must be one of {CLASSIFIER_POOLINGS}, got {pooling!r}")

    kinds = getattr(config, "prefix_kinds", None)
    if kinds is not None:
        if not getattr(config, "is_encoder_decoder", False) or method != "prefix":
            raise InputError(
                "prefix_kinds applies to prefix tuning of encoder-decoder models (T5, BART); a prompt "
                "sits before the encoder's input. Leave it unset (None)"
            )
        if (
            isinstance(kinds, str)
            or not isinstance(kinds, (list, tuple))
            or not kinds
            or not set(kinds) <= set(ATTENTION_KINDS)
        ):
            raise InputError(f"prefix_kinds must be a non-empty list drawn from {list(ATTENTION_KINDS)}, got {kinds!r}")
    _check_prefix_layers(config, method)
    positions = getattr(config, "virtual_token_positions", "none")
    if positions not in VIRTUAL_TOKEN_POSITIONS:
        raise InputError(f"virtual_token_positions must be one of {VIRTUAL_TOKEN_POSITIONS}, got {positions!r}")
    tasks = getattr(config, "prefix_tasks", None)
    if tasks is not None and (
        not isinstance(tasks, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in tasks.items())
    ):
        raise InputError(
            "prefix_tasks must map each named prefix to its task's config (a dict); it is written by load_prefix, "
            f"not by hand. Got {tasks!r:.200}"
        )
    if method == "prompt":
        init = getattr(config, "prompt_init", "random")
        if init not in PROMPT_INITS:
            raise InputError(f"prompt_init must be one of {PROMPT_INITS}, got {init!r}")
        text = getattr(config, "prompt_init_text", None)
        if init == "text" and (not isinstance(text, str) or not text.strip()):
            raise InputError(
                f'prompt_init="text" needs prompt_init_text, the text whose embeddings start the prompt; got {text!r}'
            )


# -- which attention layer reads which prefix row --------------------------------------------------


def prefixed_layers(config: PreTrainedConfig) -> dict[str, tuple[int, ...]]:
    """For each attention kind that carries a prefix, the layers of its stack that do, in the order the
    prefix rows hold them.

    An encoder-only or decoder-only model has one kind (``SELF_ATTENTION``). An encoder-decoder (T5, BART) has encoder
    self-attention, decoder self-attention and cross-attention, each switchable with
    ``config.prefix_kinds`` (default: all three). ``config.prefix_layers`` picks the layers of every kind
    (default: all).
    """
    seq2seq = getattr(config, "is_encoder_decoder", False)
    kinds = (getattr(config, "prefix_kinds", None) or ATTENTION_KINDS) if seq2seq else (SELF_ATTENTION,)
    layers = getattr(config, "prefix_layers", None)
    return {
        kind: resolve_prefix_layers(layers, count)
        for kind, count in attention_layer_counts(config).items()
        if kind in kinds
    }


def prefix_layout(config: PreTrainedConfig) -> dict[str, int]:
    """How many attention layers of each kind carry a prefix (:func:`prefixed_layers`), in row order."""
    return {kind: len(layers) for kind, layers in prefixed_layers(config).items()}


def attention_slot(config: PreTrainedConfig, kind: str, layer: int) -> int:
    """A backbone attention layer's place among all of them (kinds in :func:`attention_layer_counts` order):
    what ``methods/prefix_tuning/injection.tag_attention_layers`` marks each attention module with."""
    offset = 0
    for other, count in attention_layer_counts(config).items():
        if other == kind:
            return offset + layer
        offset += count
    raise KeyError(kind)


def prefix_rows(config: PreTrainedConfig) -> dict[int, int]:
    """Attention slot -> the row of ``get_prompt``'s layers that feeds it, for the slots that carry a prefix."""
    slots = [
        attention_slot(config, kind, layer) for kind, layers in prefixed_layers(config).items() for layer in layers
    ]
    return {slot: row for row, slot in enumerate(slots)}


def kv_geometry(config: PreTrainedConfig) -> tuple[int, int, int]:
    """``(num_layers, num_kv_heads, head_dim)`` of the attention the prefix feeds (``num_layers``
    counts the prefixed attention layers: those of ``prefix_layers``, of every kind on an encoder-decoder).

    Models with grouped-query attention keep fewer key/value heads than query heads; the prefix
    must match the key/value side.
    """
    num_heads = config.num_attention_heads
    num_kv_heads = getattr(config, "num_key_value_heads", None) or num_heads
    # T5 names its head width d_kv (it need not be hidden_size / heads).
    head_dim = getattr(config, "head_dim", None) or getattr(config, "d_kv", None) or config.hidden_size // num_heads
    return sum(prefix_layout(config).values()), num_kv_heads, head_dim
