"""Which backbones prefix models exist for, and their named classes.

One row per family says which transformers classes make it up; every class here is the same
composition, written once: a task mixin (``modeling_tasks.py``, or ``modeling_causal_lm.py``) +
the family's ``*PreTrainedModel`` (weight init, ``base_model_prefix``: the attribute stock
checkpoints load the backbone into; for decoder LMs the family's stock LM class, whose forward, head
and loss they run) + a config class carrying the method (``BertPrefixConfig``,
``BertPromptConfig``; ``configuration.py``). The names are those a transformers user would guess::

    BertPrefixForSequenceClassification, DebertaV2PromptForTokenClassification,
    Qwen2PrefixForCausalLM, GPT2PrefixLMHeadModel (GPT-2's LM class name, as in transformers),
    T5PrefixForConditionalGeneration, BartPrefixForConditionalGeneration, ...

A family is supported when its attention dispatches through transformers' ``AttentionInterface``
(where ``injection.py`` adds the prefix) or, for DeBERTa-v2 and MPNet, which compute attention
themselves, through the replacement attention in ``attention_patches.py``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import transformers as tf
from transformers import PreTrainedConfig, PreTrainedModel

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


ENCODER_FAMILIES = (
    Family("Bert", tf.BertConfig, tf.BertModel, tf.BertPreTrainedModel),
    Family("Roberta", tf.RobertaConfig, tf.RobertaModel, tf.RobertaPreTrainedModel),
    Family("XLMRoberta", tf.XLMRobertaConfig, tf.XLMRobertaModel, tf.XLMRobertaPreTrainedModel),
    Family("Electra", tf.ElectraConfig, tf.ElectraModel, tf.ElectraPreTrainedModel),
    Family("DistilBert", tf.DistilBertConfig, tf.DistilBertModel, tf.DistilBertPreTrainedModel),
    Family("Albert", tf.AlbertConfig, tf.AlbertModel, tf.AlbertPreTrainedModel),
    Family("ModernBert", tf.ModernBertConfig, tf.ModernBertModel, tf.ModernBertPreTrainedModel),
    Family("DebertaV2", tf.DebertaV2Config, tf.DebertaV2Model, tf.DebertaV2PreTrainedModel),
    Family("MPNet", tf.MPNetConfig, tf.MPNetModel, tf.MPNetPreTrainedModel),
)
# Decoders: ``pretrained`` is the family's stock LM class, whose forward, head and loss the prefix LM runs.
DECODER_FAMILIES = (
    Family("GPT2", tf.GPT2Config, tf.GPT2Model, tf.GPT2LMHeadModel, "GPT2PrefixLMHeadModel"),
    Family("Llama", tf.LlamaConfig, tf.LlamaModel, tf.LlamaForCausalLM),
    Family("Qwen2", tf.Qwen2Config, tf.Qwen2Model, tf.Qwen2ForCausalLM),
    Family("Mistral", tf.MistralConfig, tf.MistralModel, tf.MistralForCausalLM),
    Family("Gemma", tf.GemmaConfig, tf.GemmaModel, tf.GemmaForCausalLM),
    Family("Gemma2", tf.Gemma2Config, tf.Gemma2Model, tf.Gemma2ForCausalLM),
)
SEQ2SEQ_FAMILIES = (
    # backbone: the whole ForConditionalGeneration (encoder, decoder, LM head), frozen.
    Family("T5", tf.T5Config, tf.T5ForConditionalGeneration, tf.T5PreTrainedModel),
    Family("MT5", tf.MT5Config, tf.MT5ForConditionalGeneration, tf.MT5PreTrainedModel),
    Family("Bart", tf.BartConfig, tf.BartForConditionalGeneration, tf.BartPreTrainedModel),
)
ENCODER_TASKS = {
    "SequenceClassification": PrefixModelForSequenceClassification,
    "TokenClassification": PrefixModelForTokenClassification,
    "MultipleChoice": PrefixModelForMultipleChoice,
    "QuestionAnswering": PrefixModelForQuestionAnswering,
}

__all__: list[str] = ["DECODER_FAMILIES", "ENCODER_FAMILIES", "ENCODER_TASKS", "SEQ2SEQ_FAMILIES", "Family"]


def _define(name: str, bases: tuple[type, ...], attributes: dict) -> type:
    """Create ``name`` in this module (importable and picklable by that name)."""
    cls = type(name, bases, {"__module__": __name__, "__qualname__": name, **attributes})
    globals()[name] = cls
    __all__.append(name)
    return cls


def _config(family: Family, method: str) -> type[PreTrainedConfig]:
    config = make_prefix_config_class(family.config, method)
    config.__module__ = __name__
    globals()[config.__name__] = config
    __all__.append(config.__name__)
    return config


def decoder_family_by_capability(model_type: str) -> Family | None:
    """A ``Family`` for a decoder LM not listed above whose attention can host a prefix; else None.

    That is: transformers has a ``*ForCausalLM`` and a base model for ``model_type``, and the LM's modeling
    file dispatches attention through ``AttentionInterface`` (where ``injection.py`` adds the prefix). The
    LM's own forward runs over the prefixed backbone, so whatever it does after the backbone (Granite's
    logit scaling, Cohere's logit scale) stays. The backbone also checks, every call, that the prefix
    reached every layer.
    """
    config_class = tf.CONFIG_MAPPING[model_type] if model_type in tf.CONFIG_MAPPING else None
    lm_class = tf.MODEL_FOR_CAUSAL_LM_MAPPING.get(config_class, None) if config_class is not None else None
    backbone = tf.MODEL_MAPPING.get(config_class, None) if config_class is not None else None
    if lm_class is None or backbone is None or getattr(config_class, "is_encoder_decoder", False):
        return None
    if "ALL_ATTENTION_FUNCTIONS" not in vars(sys.modules[lm_class.__module__]):
        return None  # attention of its own (Falcon): nowhere for the prefix to enter
    if not isinstance(getattr(lm_class, "base_model_prefix", None), str) or not lm_class.__name__.endswith(
        "ForCausalLM"
    ):
        return None
    return Family(lm_class.__name__.removesuffix("ForCausalLM"), config_class, backbone, lm_class)


def define_decoder_classes(family: Family) -> None:
    """``{Name}PrefixForCausalLM`` and ``{Name}PromptForCausalLM`` for ``family``, in this module."""
    for method in ("prefix", "prompt"):
        name = (family.lm_class_name or f"{family.name}PrefixForCausalLM").replace("Prefix", method.capitalize())
        if name in globals():
            continue
        _define(
            name,
            (PrefixModelForCausalLM, family.pretrained),
            {
                "__doc__": f"{family.pretrained.__name__} with {method} tuning. {PrefixModelForCausalLM.__doc__}",
                "config_class": _config(family, method),
            },
        )


for _family in ENCODER_FAMILIES:
    for _method in ("prefix", "prompt"):
        _config_class = _config(_family, _method)
        for _task, _mixin in ENCODER_TASKS.items():
            _define(
                f"{_family.name}{_method.capitalize()}For{_task}",
                (_mixin, _family.pretrained),
                {
                    "__doc__": f"{_family.backbone.__name__} with {_method} tuning. {_mixin.__doc__}",
                    "config_class": _config_class,
                    "backbone_class": _family.backbone,
                },
            )

for _family in DECODER_FAMILIES:
    define_decoder_classes(_family)

for _family in SEQ2SEQ_FAMILIES:
    for _method in ("prefix", "prompt"):
        _define(
            f"{_family.name}{_method.capitalize()}ForConditionalGeneration",
            (PrefixModelForSeq2SeqLM, _family.pretrained),
            {
                "__doc__": f"{_family.backbone.__name__} with {_method} tuning. {PrefixModelForSeq2SeqLM.__doc__}",
                "config_class": _config(_family, _method),
                "backbone_class": _family.backbone,
            },
        )
