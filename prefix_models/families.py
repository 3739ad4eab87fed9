"""Which backbones prefix models exist for, and the source of their named classes.

One row per family says which transformers classes make it up. Every named class is the same
composition: a task class (``modeling_tasks.py``, ``modeling_causal_lm.py``, ``modeling_seq2seq.py``) +
the family's ``*PreTrainedModel`` (weight init, ``base_model_prefix``: the attribute stock checkpoints
load the backbone into; for decoder LMs the family's stock LM class, whose forward, head and loss they
run) + a config class carrying the method (``BertPrefixConfig``, ``BertPromptConfig``). The names are
those a transformers user would guess::

    BertPrefixForSequenceClassification, DebertaV2PromptForTokenClassification,
    Qwen2PrefixForCausalLM, GPT2PrefixLMHeadModel (GPT-2's LM class name, as in transformers),
    T5PrefixForConditionalGeneration, BartPrefixForConditionalGeneration, ...

They are written out as class statements in ``named_classes.py``, generated from the tables here:
after changing a table, run ``python -m prefix_models generate`` (``tests/test_named_classes.py``
checks that the file is what the tables give). Decoders outside the tables are accepted by
capability (:func:`decoder_family_by_capability`); their classes are made when a checkpoint asks.

A family is supported when its attention dispatches through transformers' ``AttentionInterface``
(where ``methods/prefix_tuning/injection.py`` adds the prefix) or, for DeBERTa-v2 and MPNet, which
compute attention themselves, through the replacement attention in ``methods/prefix_tuning/attention_patches.py``.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import transformers as tf
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration import make_prefix_config_class
from .modeling_causal_lm import PrefixModelForCausalLM
from .modeling_seq2seq import PrefixModelForSeq2SeqLM
from .modeling_tasks import (
    PrefixModelForMultipleChoice,
    PrefixModelForQuestionAnswering,
    PrefixModelForSequenceClassification,
    PrefixModelForTokenClassification,
)


@dataclass(frozen=True)
class Family:
    """A backbone family: the class-name stem and its transformers classes."""

    name: str
    config: type[PreTrainedConfig]
    backbone: type[PreTrainedModel]
    # The class ours derive from: the family's *PreTrainedModel, or a decoder's stock LM class.
    pretrained: type[PreTrainedModel]
    # Decoders whose LM class is not named *ForCausalLM (GPT-2's GPT2LMHeadModel): our class's name.
    lm_class_name: str | None = None


def _family(name: str, backbone: str = "Model", pretrained: str = "PreTrainedModel", **fields: Any) -> Family:
    """The family ``name`` by transformers' class naming: ``{name}Config``, ``{name}{backbone}``, ..."""
    return Family(
        name, getattr(tf, f"{name}Config"), getattr(tf, name + backbone), getattr(tf, name + pretrained), **fields
    )


ENCODER_FAMILIES = tuple(
    _family(name)
    for name in ("Bert", "Roberta", "XLMRoberta", "Electra", "DistilBert", "Albert", "ModernBert", "DebertaV2", "MPNet")
)
# Decoders: ``pretrained`` is the family's stock LM class, whose forward, head and loss the prefix LM runs.
DECODER_FAMILIES = (
    _family("GPT2", pretrained="LMHeadModel", lm_class_name="GPT2PrefixLMHeadModel"),
    *(_family(name, pretrained="ForCausalLM") for name in ("Llama", "Qwen2", "Mistral", "Gemma", "Gemma2")),
)
# Encoder-decoders: the backbone is the whole ForConditionalGeneration (encoder, decoder, LM head), frozen.
SEQ2SEQ_FAMILIES = tuple(_family(name, backbone="ForConditionalGeneration") for name in ("T5", "MT5", "Bart"))
ENCODER_TASKS = {
    "SequenceClassification": PrefixModelForSequenceClassification,
    "TokenClassification": PrefixModelForTokenClassification,
    "MultipleChoice": PrefixModelForMultipleChoice,
    "QuestionAnswering": PrefixModelForQuestionAnswering,
}

__all__: list[str] = ["DECODER_FAMILIES", "ENCODER_FAMILIES", "ENCODER_TASKS", "SEQ2SEQ_FAMILIES", "Family"]
# Classes made on demand for decoders outside DECODER_FAMILIES (decoder_family_by_capability).
CAPABILITY_CLASSES: dict[str, type[PreTrainedModel]] = {}
NAMED_CLASSES_FILE = os.path.join(os.path.dirname(__file__), "named_classes.py")
NAMED_CLASS_INDEX_FILE = os.path.join(os.path.dirname(__file__), "named_class_index.py")


def decoder_family_by_capability(model_type: str) -> Family | None:
    """A ``Family`` for a decoder LM not listed above whose attention can host a prefix; else None.

    That is: transformers has a ``*ForCausalLM`` and a base model for ``model_type``, and the LM's modeling
    file dispatches attention through ``AttentionInterface`` (where ``methods/prefix_tuning/injection.py`` adds
    the prefix), and the backbone's forward and its decoder layers pass keyword arguments on: the prefix
    reaches the attention as one (``prefix_state``), and Falcon, StableLM and Nemotron drop them on the way
    (:func:`_passes_keyword_arguments_on`). The LM's own forward runs over the prefixed backbone, so whatever it
    does after the backbone (Granite's logit scaling, Cohere's logit scale) stays. The backbone also checks,
    every call, that the prefix reached every layer.
    """
    config_class = tf.CONFIG_MAPPING[model_type] if model_type in tf.CONFIG_MAPPING else None
    lm_class = tf.MODEL_FOR_CAUSAL_LM_MAPPING.get(config_class, None) if config_class is not None else None
    backbone = tf.MODEL_MAPPING.get(config_class, None) if config_class is not None else None
    if lm_class is None or backbone is None or getattr(config_class, "is_encoder_decoder", False):
        return None
    modeling_file = vars(sys.modules[lm_class.__module__])
    if "ALL_ATTENTION_FUNCTIONS" not in modeling_file:
        return None  # attention of its own (BLOOM, MPT): nowhere for the prefix to enter
    layers = [
        member
        for member in modeling_file.values()
        if isinstance(member, type) and issubclass(member, GradientCheckpointingLayer)
    ]
    if not _passes_keyword_arguments_on(backbone.forward) or not any(
        _passes_keyword_arguments_on(layer.forward) for layer in layers
    ):
        return None  # prefix_state would be dropped before it reached the attention
    if not isinstance(getattr(lm_class, "base_model_prefix", None), str) or not lm_class.__name__.endswith(
        "ForCausalLM"
    ):
        return None
    return Family(lm_class.__name__.removesuffix("ForCausalLM"), config_class, backbone, lm_class)


def _passes_keyword_arguments_on(function: Any) -> bool:
    """Whether ``function``'s body makes a call with ``**kwargs``, the route ``prefix_state`` takes down to the
    attention. Read from the source, because a layer that drops them would fail only at its first forward; no
    source, no support."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(
        keyword.arg is None for node in ast.walk(tree) if isinstance(node, ast.Call) for keyword in node.keywords
    )


def define_decoder_classes(family: Family) -> None:
    """``{Name}PrefixForCausalLM`` and ``{Name}PromptForCausalLM`` for a decoder accepted by capability, kept in
    :data:`CAPABILITY_CLASSES` (the named decoders' classes are in ``named_classes.py``)."""
    for method in ("prefix", "prompt"):
        name = f"{family.name}{method.capitalize()}ForCausalLM"
        if name not in CAPABILITY_CLASSES:
            CAPABILITY_CLASSES[name] = type(
                name,
                (PrefixModelForCausalLM, family.pretrained),
                {
                    "__module__": __name__,
                    "__qualname__": name,
                    "__doc__": f"{family.pretrained.__name__} with {method} tuning. {PrefixModelForCausalLM.__doc__}",
                    "config_class": make_prefix_config_class(family.config, method),
                },
            )
            _inherit_key_renames(name, family.pretrained)


def _inherit_key_renames(name: str, stock: type) -> None:
    """transformers renames a family's old checkpoint keys (GPT-NeoX's ``embed_out`` -> ``lm_head``) by the stock
    class's name; give ours the same renames, or a stock checkpoint would load with its output layer missing."""
    try:
        from transformers.conversion_mapping import (
            get_checkpoint_conversion_mapping,
            register_checkpoint_conversion_mapping,
        )
    except ImportError:  # a transformers without renames has nothing to inherit
        return
    renames = get_checkpoint_conversion_mapping(stock.__name__)
    if renames:
        register_checkpoint_conversion_mapping(name, renames, overwrite=True)


# -- the source of named_classes.py ----------------------------------------------------------------------


def _model_class(name: str, task: type, family: Family, method: str, backbone: bool) -> list[str]:
    base = family.backbone if backbone else family.pretrained
    lines = [
        f"class {name}({task.__name__}, {family.pretrained.__name__}):",
        f'    """{base.__name__} with {method} tuning: ``{task.__name__}``."""',
        "",
        f"    config_class = {family.name}{method.capitalize()}Config",
    ]
    if backbone:
        lines.append(f"    backbone_class = {family.backbone.__name__}")
    return lines


def _config_classes(family: Family) -> list[list[str]]:
    stock = family.config.__name__
    return [
        [
            f"class {family.name}PrefixConfig(PrefixConfigMixin, {stock}):",
            f'    """{stock} plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""',
            "",
            f'    model_type = "{family.config.model_type}_prefix"',
            f'    base_model_type = "{family.config.model_type}"',
        ],
        [
            f"class {family.name}PromptConfig({family.name}PrefixConfig):",
            f'    """{family.name}PrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""',
            "",
            f'    model_type = "{family.config.model_type}_prompt"',
            '    prefix_method: str = "prompt"',
        ],
    ]


def named_classes_source() -> str:
    """The text of ``named_classes.py``: a config pair per family and a model class per family, task and method."""
    blocks: list[list[str]] = []
    for family in ENCODER_FAMILIES:
        blocks += _config_classes(family)
        for method in ("prefix", "prompt"):
            for task_name, task in ENCODER_TASKS.items():
                name = f"{family.name}{method.capitalize()}For{task_name}"
                blocks.append(_model_class(name, task, family, method, backbone=True))
    for family in DECODER_FAMILIES:
        blocks += _config_classes(family)
        for method in ("prefix", "prompt"):
            name = (family.lm_class_name or f"{family.name}PrefixForCausalLM").replace("Prefix", method.capitalize())
            blocks.append(_model_class(name, PrefixModelForCausalLM, family, method, backbone=False))
    for family in SEQ2SEQ_FAMILIES:
        blocks += _config_classes(family)
        for method in ("prefix", "prompt"):
            name = f"{family.name}{method.capitalize()}ForConditionalGeneration"
            blocks.append(_model_class(name, PrefixModelForSeq2SeqLM, family, method, backbone=True))
    used = "\n".join(line for block in blocks for line in block)
    families = (*ENCODER_FAMILIES, *DECODER_FAMILIES, *SEQ2SEQ_FAMILIES)
    stock = {cls.__name__ for f in families for cls in (f.config, f.backbone, f.pretrained)}
    stock = sorted((name for name in stock if re.search(rf"\b{name}\b", used)), key=str.lower)
    tasks = sorted({task.__name__ for task in ENCODER_TASKS.values()})
    names = [block[0].split("(")[0].removeprefix("class ") for block in blocks]
    header = [
        '"""The named prefix and prompt classes, one per backbone family, task and method, and their configs.',
        "",
        "Generated from the tables in ``families.py`` by ``python -m prefix_models generate``; edit those, not",
        'this file (``tests/test_named_classes.py`` checks that the two agree)."""',
        "",
        "from transformers import (",
        *(f"    {name}," for name in stock),
        ")",
        "",
        "from .configuration import PrefixConfigMixin",
        "from .modeling_causal_lm import PrefixModelForCausalLM",
        "from .modeling_seq2seq import PrefixModelForSeq2SeqLM",
        "from .modeling_tasks import (",
        *(f"    {name}," for name in tasks),
        ")",
        "",
        "__all__ = [",
        *(f'    "{name}",' for name in names),
        "]",
    ]
    body = "\n\n\n".join("\n".join(block) for block in blocks)
    return "\n".join(header) + "\n\n\n" + body + "\n"


def named_class_index_source() -> str:
    """The text of ``named_class_index.py``: the named classes by name, per model type and stock Auto class, which
    ``import prefix_models`` registers without building them (``registration.py``)."""
    configs: dict[str, str] = {}
    autos: dict[str, dict[str, str]] = {}

    def add(family: Family, task: type, class_names: dict[str, str]) -> None:
        for method, class_name in class_names.items():
            model_type = f"{family.config.model_type}_{method}"
            configs[model_type] = f"{family.name}{method.capitalize()}Config"
            autos.setdefault(task.stock_auto_class.__name__, {})[model_type] = class_name

    for family in ENCODER_FAMILIES:
        for task_name, task in ENCODER_TASKS.items():
            add(family, task, {m: f"{family.name}{m.capitalize()}For{task_name}" for m in ("prefix", "prompt")})
    for family in DECODER_FAMILIES:
        lm_name = family.lm_class_name or f"{family.name}PrefixForCausalLM"
        class_names = {m: lm_name.replace("Prefix", m.capitalize()) for m in ("prefix", "prompt")}
        add(family, PrefixModelForCausalLM, class_names)
    for family in SEQ2SEQ_FAMILIES:
        class_names = {m: f"{family.name}{m.capitalize()}ForConditionalGeneration" for m in ("prefix", "prompt")}
        add(family, PrefixModelForSeq2SeqLM, class_names)
    lines = [
        '"""The named classes by name: which one each model type and stock Auto class builds. ``import prefix_models``',
        "registers these names with transformers' Auto classes (``registration.py``) without building a class; the",
        "classes themselves are in ``named_classes.py``.",
        "",
        "Generated from the tables in ``families.py`` by ``python -m prefix_models generate``; edit those, not",
        'this file (``tests/test_lazy_import.py`` checks that the two agree)."""',
        "",
        "# model_type -> its config class",
        "CONFIG_CLASSES = {",
        *(f'    "{model_type}": "{name}",' for model_type, name in configs.items()),
        "}",
        "# stock Auto class -> {model_type: the named class it builds}",
        "AUTO_CLASSES = {",
    ]
    for auto, classes in autos.items():
        lines += [f'    "{auto}": {{', *(f'        "{t}": "{name}",' for t, name in classes.items()), "    },"]
    return "\n".join(lines) + "\n}\n"


def write_named_classes() -> str:
    """Rewrite ``named_classes.py`` and ``named_class_index.py`` from the tables; returns the first's path."""
    with open(NAMED_CLASSES_FILE, "w", encoding="utf-8") as handle:
        handle.write(named_classes_source())
    with open(NAMED_CLASS_INDEX_FILE, "w", encoding="utf-8") as handle:
        handle.write(named_class_index_source())
    return NAMED_CLASSES_FILE
