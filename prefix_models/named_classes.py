"""The named prefix and prompt classes, one per backbone family, task and method, and their configs.

Generated from the tables in ``families.py`` by ``python -m prefix_models generate``; edit those, not
this file (``tests/test_named_classes.py`` checks that the two agree)."""

from transformers import (
    AlbertConfig,
    AlbertModel,
    AlbertPreTrainedModel,
    BartConfig,
    BartForConditionalGeneration,
    BartPreTrainedModel,
    BertConfig,
    BertModel,
    BertPreTrainedModel,
    DebertaV2Config,
    DebertaV2Model,
    DebertaV2PreTrainedModel,
    DistilBertConfig,
    DistilBertModel,
    DistilBertPreTrainedModel,
    ElectraConfig,
    ElectraModel,
    ElectraPreTrainedModel,
    Gemma2Config,
    Gemma2ForCausalLM,
    GemmaConfig,
    GemmaForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    ModernBertConfig,
    ModernBertModel,
    ModernBertPreTrainedModel,
    MPNetConfig,
    MPNetModel,
    MPNetPreTrainedModel,
    MT5Config,
    MT5ForConditionalGeneration,
    MT5PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    RobertaConfig,
    RobertaModel,
    RobertaPreTrainedModel,
    T5Config,
    T5ForConditionalGeneration,
    T5PreTrainedModel,
    XLMRobertaConfig,
    XLMRobertaModel,
    XLMRobertaPreTrainedModel,
)

from .configuration import PrefixConfigMixin
from .modeling_causal_lm import PrefixModelForCausalLM
from .modeling_seq2seq import PrefixModelForSeq2SeqLM
from .modeling_tasks import (
    PrefixModelForMultipleChoice,
    PrefixModelForQuestionAnswering,
    PrefixModelForSequenceClassification,
    PrefixModelForTokenClassification,
)

__all__ = [
    "BertPrefixConfig",
    "BertPromptConfig",
    "BertPrefixForSequenceClassification",
    "BertPrefixForTokenClassification",
    "BertPrefixForMultipleChoice",
    "BertPrefixForQuestionAnswering",
    "BertPromptForSequenceClassification",
    "BertPromptForTokenClassification",
    "BertPromptForMultipleChoice",
    "BertPromptForQuestionAnswering",
    "RobertaPrefixConfig",
    "RobertaPromptConfig",
    "RobertaPrefixForSequenceClassification",
    "RobertaPrefixForTokenClassification",
    "RobertaPrefixForMultipleChoice",
    "RobertaPrefixForQuestionAnswering",
    "RobertaPromptForSequenceClassification",
    "RobertaPromptForTokenClassification",
    "RobertaPromptForMultipleChoice",
    "RobertaPromptForQuestionAnswering",
    "XLMRobertaPrefixConfig",
    "XLMRobertaPromptConfig",
    "XLMRobertaPrefixForSequenceClassification",
    "XLMRobertaPrefixForTokenClassification",
    "XLMRobertaPrefixForMultipleChoice",
    "XLMRobertaPrefixForQuestionAnswering",
    "XLMRobertaPromptForSequenceClassification",
    "XLMRobertaPromptForTokenClassification",
    "XLMRobertaPromptForMultipleChoice",
    "XLMRobertaPromptForQuestionAnswering",
    "ElectraPrefixConfig",
    "ElectraPromptConfig",
    "ElectraPrefixForSequenceClassification",
    "ElectraPrefixForTokenClassification",
    "ElectraPrefixForMultipleChoice",
    "ElectraPrefixForQuestionAnswering",
    "ElectraPromptForSequenceClassification",
    "ElectraPromptForTokenClassification",
    "ElectraPromptForMultipleChoice",
    "ElectraPromptForQuestionAnswering",
    "DistilBertPrefixConfig",
    "DistilBertPromptConfig",
    "DistilBertPrefixForSequenceClassification",
    "DistilBertPrefixForTokenClassification",
    "DistilBertPrefixForMultipleChoice",
    "DistilBertPrefixForQuestionAnswering",
    "DistilBertPromptForSequenceClassification",
    "DistilBertPromptForTokenClassification",
    "DistilBertPromptForMultipleChoice",
    "DistilBertPromptForQuestionAnswering",
    "AlbertPrefixConfig",
    "AlbertPromptConfig",
    "AlbertPrefixForSequenceClassification",
    "AlbertPrefixForTokenClassification",
    "AlbertPrefixForMultipleChoice",
    "AlbertPrefixForQuestionAnswering",
    "AlbertPromptForSequenceClassification",
    "AlbertPromptForTokenClassification",
    "AlbertPromptForMultipleChoice",
    "AlbertPromptForQuestionAnswering",
    "ModernBertPrefixConfig",
    "ModernBertPromptConfig",
    "ModernBertPrefixForSequenceClassification",
    "ModernBertPrefixForTokenClassification",
    "ModernBertPrefixForMultipleChoice",
    "ModernBertPrefixForQuestionAnswering",
    "ModernBertPromptForSequenceClassification",
    "ModernBertPromptForTokenClassification",
    "ModernBertPromptForMultipleChoice",
    "ModernBertPromptForQuestionAnswering",
    "DebertaV2PrefixConfig",
    "DebertaV2PromptConfig",
    "DebertaV2PrefixForSequenceClassification",
    "DebertaV2PrefixForTokenClassification",
    "DebertaV2PrefixForMultipleChoice",
    "DebertaV2PrefixForQuestionAnswering",
    "DebertaV2PromptForSequenceClassification",
    "DebertaV2PromptForTokenClassification",
    "DebertaV2PromptForMultipleChoice",
    "DebertaV2PromptForQuestionAnswering",
    "MPNetPrefixConfig",
    "MPNetPromptConfig",
    "MPNetPrefixForSequenceClassification",
    "MPNetPrefixForTokenClassification",
    "MPNetPrefixForMultipleChoice",
    "MPNetPrefixForQuestionAnswering",
    "MPNetPromptForSequenceClassification",
    "MPNetPromptForTokenClassification",
    "MPNetPromptForMultipleChoice",
    "MPNetPromptForQuestionAnswering",
    "GPT2PrefixConfig",
    "GPT2PromptConfig",
    "GPT2PrefixLMHeadModel",
    "GPT2PromptLMHeadModel",
    "LlamaPrefixConfig",
    "LlamaPromptConfig",
    "LlamaPrefixForCausalLM",
    "LlamaPromptForCausalLM",
    "Qwen2PrefixConfig",
    "Qwen2PromptConfig",
    "Qwen2PrefixForCausalLM",
    "Qwen2PromptForCausalLM",
    "MistralPrefixConfig",
    "MistralPromptConfig",
    "MistralPrefixForCausalLM",
    "MistralPromptForCausalLM",
    "GemmaPrefixConfig",
    "GemmaPromptConfig",
    "GemmaPrefixForCausalLM",
    "GemmaPromptForCausalLM",
    "Gemma2PrefixConfig",
    "Gemma2PromptConfig",
    "Gemma2PrefixForCausalLM",
    "Gemma2PromptForCausalLM",
    "T5PrefixConfig",
    "T5PromptConfig",
    "T5PrefixForConditionalGeneration",
    "T5PromptForConditionalGeneration",
    "MT5PrefixConfig",
    "MT5PromptConfig",
    "MT5PrefixForConditionalGeneration",
    "MT5PromptForConditionalGeneration",
    "BartPrefixConfig",
    "BartPromptConfig",
    "BartPrefixForConditionalGeneration",
    "BartPromptForConditionalGeneration",
]


class BertPrefixConfig(PrefixConfigMixin, BertConfig):
    """BertConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "bert_prefix"
    base_model_type = "bert"


class BertPromptConfig(BertPrefixConfig):
    """BertPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "bert_prompt"
    prefix_method: str = "prompt"


class BertPrefixForSequenceClassification(PrefixModelForSequenceClassification, BertPreTrainedModel):
    """BertModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPrefixForTokenClassification(PrefixModelForTokenClassification, BertPreTrainedModel):
    """BertModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPrefixForMultipleChoice(PrefixModelForMultipleChoice, BertPreTrainedModel):
    """BertModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, BertPreTrainedModel):
    """BertModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPromptForSequenceClassification(PrefixModelForSequenceClassification, BertPreTrainedModel):
    """BertModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = BertPromptConfig
    backbone_class = BertModel


class BertPromptForTokenClassification(PrefixModelForTokenClassification, BertPreTrainedModel):
    """BertModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = BertPromptConfig
    backbone_class = BertModel


class BertPromptForMultipleChoice(PrefixModelForMultipleChoice, BertPreTrainedModel):
    """BertModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = BertPromptConfig
    backbone_class = BertModel


class BertPromptForQuestionAnswering(PrefixModelForQuestionAnswering, BertPreTrainedModel):
    """BertModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = BertPromptConfig
    backbone_class = BertModel


class RobertaPrefixConfig(PrefixConfigMixin, RobertaConfig):
    """RobertaConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "roberta_prefix"
    base_model_type = "roberta"


class RobertaPromptConfig(RobertaPrefixConfig):
    """RobertaPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "roberta_prompt"
    prefix_method: str = "prompt"


class RobertaPrefixForSequenceClassification(PrefixModelForSequenceClassification, RobertaPreTrainedModel):
    """RobertaModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = RobertaPrefixConfig
    backbone_class = RobertaModel


class RobertaPrefixForTokenClassification(PrefixModelForTokenClassification, RobertaPreTrainedModel):
    """RobertaModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = RobertaPrefixConfig
    backbone_class = RobertaModel


class RobertaPrefixForMultipleChoice(PrefixModelForMultipleChoice, RobertaPreTrainedModel):
    """RobertaModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = RobertaPrefixConfig
    backbone_class = RobertaModel


class RobertaPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, RobertaPreTrainedModel):
    """RobertaModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = RobertaPrefixConfig
    backbone_class = RobertaModel


class RobertaPromptForSequenceClassification(PrefixModelForSequenceClassification, RobertaPreTrainedModel):
    """RobertaModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = RobertaPromptConfig
    backbone_class = RobertaModel


class RobertaPromptForTokenClassification(PrefixModelForTokenClassification, RobertaPreTrainedModel):
    """RobertaModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = RobertaPromptConfig
    backbone_class = RobertaModel


class RobertaPromptForMultipleChoice(PrefixModelForMultipleChoice, RobertaPreTrainedModel):
    """RobertaModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = RobertaPromptConfig
    backbone_class = RobertaModel


class RobertaPromptForQuestionAnswering(PrefixModelForQuestionAnswering, RobertaPreTrainedModel):
    """RobertaModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = RobertaPromptConfig
    backbone_class = RobertaModel


class XLMRobertaPrefixConfig(PrefixConfigMixin, XLMRobertaConfig):
    """XLMRobertaConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "xlm-roberta_prefix"
    base_model_type = "xlm-roberta"


class XLMRobertaPromptConfig(XLMRobertaPrefixConfig):
    """XLMRobertaPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "xlm-roberta_prompt"
    prefix_method: str = "prompt"


class XLMRobertaPrefixForSequenceClassification(PrefixModelForSequenceClassification, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = XLMRobertaPrefixConfig
    backbone_class = XLMRobertaModel


class XLMRobertaPrefixForTokenClassification(PrefixModelForTokenClassification, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = XLMRobertaPrefixConfig
    backbone_class = XLMRobertaModel


class XLMRobertaPrefixForMultipleChoice(PrefixModelForMultipleChoice, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = XLMRobertaPrefixConfig
    backbone_class = XLMRobertaModel


class XLMRobertaPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = XLMRobertaPrefixConfig
    backbone_class = XLMRobertaModel


class XLMRobertaPromptForSequenceClassification(PrefixModelForSequenceClassification, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = XLMRobertaPromptConfig
    backbone_class = XLMRobertaModel


class XLMRobertaPromptForTokenClassification(PrefixModelForTokenClassification, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = XLMRobertaPromptConfig
    backbone_class = XLMRobertaModel


class XLMRobertaPromptForMultipleChoice(PrefixModelForMultipleChoice, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = XLMRobertaPromptConfig
    backbone_class = XLMRobertaModel


class XLMRobertaPromptForQuestionAnswering(PrefixModelForQuestionAnswering, XLMRobertaPreTrainedModel):
    """XLMRobertaModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = XLMRobertaPromptConfig
    backbone_class = XLMRobertaModel


class ElectraPrefixConfig(PrefixConfigMixin, ElectraConfig):
    """ElectraConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "electra_prefix"
    base_model_type = "electra"


class ElectraPromptConfig(ElectraPrefixConfig):
    """ElectraPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "electra_prompt"
    prefix_method: str = "prompt"


class ElectraPrefixForSequenceClassification(PrefixModelForSequenceClassification, ElectraPreTrainedModel):
    """ElectraModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = ElectraPrefixConfig
    backbone_class = ElectraModel


class ElectraPrefixForTokenClassification(PrefixModelForTokenClassification, ElectraPreTrainedModel):
    """ElectraModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = ElectraPrefixConfig
    backbone_class = ElectraModel


class ElectraPrefixForMultipleChoice(PrefixModelForMultipleChoice, ElectraPreTrainedModel):
    """ElectraModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = ElectraPrefixConfig
    backbone_class = ElectraModel


class ElectraPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, ElectraPreTrainedModel):
    """ElectraModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = ElectraPrefixConfig
    backbone_class = ElectraModel


class ElectraPromptForSequenceClassification(PrefixModelForSequenceClassification, ElectraPreTrainedModel):
    """ElectraModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = ElectraPromptConfig
    backbone_class = ElectraModel


class ElectraPromptForTokenClassification(PrefixModelForTokenClassification, ElectraPreTrainedModel):
    """ElectraModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = ElectraPromptConfig
    backbone_class = ElectraModel


class ElectraPromptForMultipleChoice(PrefixModelForMultipleChoice, ElectraPreTrainedModel):
    """ElectraModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = ElectraPromptConfig
    backbone_class = ElectraModel


class ElectraPromptForQuestionAnswering(PrefixModelForQuestionAnswering, ElectraPreTrainedModel):
    """ElectraModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = ElectraPromptConfig
    backbone_class = ElectraModel


class DistilBertPrefixConfig(PrefixConfigMixin, DistilBertConfig):
    """DistilBertConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "distilbert_prefix"
    base_model_type = "distilbert"


class DistilBertPromptConfig(DistilBertPrefixConfig):
    """DistilBertPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "distilbert_prompt"
    prefix_method: str = "prompt"


class DistilBertPrefixForSequenceClassification(PrefixModelForSequenceClassification, DistilBertPreTrainedModel):
    """DistilBertModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = DistilBertPrefixConfig
    backbone_class = DistilBertModel


class DistilBertPrefixForTokenClassification(PrefixModelForTokenClassification, DistilBertPreTrainedModel):
    """DistilBertModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = DistilBertPrefixConfig
    backbone_class = DistilBertModel


class DistilBertPrefixForMultipleChoice(PrefixModelForMultipleChoice, DistilBertPreTrainedModel):
    """DistilBertModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = DistilBertPrefixConfig
    backbone_class = DistilBertModel


class DistilBertPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, DistilBertPreTrainedModel):
    """DistilBertModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = DistilBertPrefixConfig
    backbone_class = DistilBertModel


class DistilBertPromptForSequenceClassification(PrefixModelForSequenceClassification, DistilBertPreTrainedModel):
    """DistilBertModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = DistilBertPromptConfig
    backbone_class = DistilBertModel


class DistilBertPromptForTokenClassification(PrefixModelForTokenClassification, DistilBertPreTrainedModel):
    """DistilBertModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = DistilBertPromptConfig
    backbone_class = DistilBertModel


class DistilBertPromptForMultipleChoice(PrefixModelForMultipleChoice, DistilBertPreTrainedModel):
    """DistilBertModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = DistilBertPromptConfig
    backbone_class = DistilBertModel


class DistilBertPromptForQuestionAnswering(PrefixModelForQuestionAnswering, DistilBertPreTrainedModel):
    """DistilBertModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = DistilBertPromptConfig
    backbone_class = DistilBertModel


class AlbertPrefixConfig(PrefixConfigMixin, AlbertConfig):
    """AlbertConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "albert_prefix"
    base_model_type = "albert"


class AlbertPromptConfig(AlbertPrefixConfig):
    """AlbertPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "albert_prompt"
    prefix_method: str = "prompt"


class AlbertPrefixForSequenceClassification(PrefixModelForSequenceClassification, AlbertPreTrainedModel):
    """AlbertModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = AlbertPrefixConfig
    backbone_class = AlbertModel


class AlbertPrefixForTokenClassification(PrefixModelForTokenClassification, AlbertPreTrainedModel):
    """AlbertModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = AlbertPrefixConfig
    backbone_class = AlbertModel


class AlbertPrefixForMultipleChoice(PrefixModelForMultipleChoice, AlbertPreTrainedModel):
    """AlbertModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = AlbertPrefixConfig
    backbone_class = AlbertModel


class AlbertPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, AlbertPreTrainedModel):
    """AlbertModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = AlbertPrefixConfig
    backbone_class = AlbertModel


class AlbertPromptForSequenceClassification(PrefixModelForSequenceClassification, AlbertPreTrainedModel):
    """AlbertModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = AlbertPromptConfig
    backbone_class = AlbertModel


class AlbertPromptForTokenClassification(PrefixModelForTokenClassification, AlbertPreTrainedModel):
    """AlbertModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = AlbertPromptConfig
    backbone_class = AlbertModel


class AlbertPromptForMultipleChoice(PrefixModelForMultipleChoice, AlbertPreTrainedModel):
    """AlbertModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = AlbertPromptConfig
    backbone_class = AlbertModel


class AlbertPromptForQuestionAnswering(PrefixModelForQuestionAnswering, AlbertPreTrainedModel):
    """AlbertModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = AlbertPromptConfig
    backbone_class = AlbertModel


class ModernBertPrefixConfig(PrefixConfigMixin, ModernBertConfig):
    """ModernBertConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "modernbert_prefix"
    base_model_type = "modernbert"


class ModernBertPromptConfig(ModernBertPrefixConfig):
    """ModernBertPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "modernbert_prompt"
    prefix_method: str = "prompt"


class ModernBertPrefixForSequenceClassification(PrefixModelForSequenceClassification, ModernBertPreTrainedModel):
    """ModernBertModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = ModernBertPrefixConfig
    backbone_class = ModernBertModel


class ModernBertPrefixForTokenClassification(PrefixModelForTokenClassification, ModernBertPreTrainedModel):
    """ModernBertModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = ModernBertPrefixConfig
    backbone_class = ModernBertModel


class ModernBertPrefixForMultipleChoice(PrefixModelForMultipleChoice, ModernBertPreTrainedModel):
    """ModernBertModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = ModernBertPrefixConfig
    backbone_class = ModernBertModel


class ModernBertPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, ModernBertPreTrainedModel):
    """ModernBertModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = ModernBertPrefixConfig
    backbone_class = ModernBertModel


class ModernBertPromptForSequenceClassification(PrefixModelForSequenceClassification, ModernBertPreTrainedModel):
    """ModernBertModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = ModernBertPromptConfig
    backbone_class = ModernBertModel


class ModernBertPromptForTokenClassification(PrefixModelForTokenClassification, ModernBertPreTrainedModel):
    """ModernBertModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = ModernBertPromptConfig
    backbone_class = ModernBertModel


class ModernBertPromptForMultipleChoice(PrefixModelForMultipleChoice, ModernBertPreTrainedModel):
    """ModernBertModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = ModernBertPromptConfig
    backbone_class = ModernBertModel


class ModernBertPromptForQuestionAnswering(PrefixModelForQuestionAnswering, ModernBertPreTrainedModel):
    """ModernBertModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = ModernBertPromptConfig
    backbone_class = ModernBertModel


class DebertaV2PrefixConfig(PrefixConfigMixin, DebertaV2Config):
    """DebertaV2Config plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "deberta-v2_prefix"
    base_model_type = "deberta-v2"


class DebertaV2PromptConfig(DebertaV2PrefixConfig):
    """DebertaV2PrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "deberta-v2_prompt"
    prefix_method: str = "prompt"


class DebertaV2PrefixForSequenceClassification(PrefixModelForSequenceClassification, DebertaV2PreTrainedModel):
    """DebertaV2Model with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = DebertaV2PrefixConfig
    backbone_class = DebertaV2Model


class DebertaV2PrefixForTokenClassification(PrefixModelForTokenClassification, DebertaV2PreTrainedModel):
    """DebertaV2Model with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = DebertaV2PrefixConfig
    backbone_class = DebertaV2Model


class DebertaV2PrefixForMultipleChoice(PrefixModelForMultipleChoice, DebertaV2PreTrainedModel):
    """DebertaV2Model with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = DebertaV2PrefixConfig
    backbone_class = DebertaV2Model


class DebertaV2PrefixForQuestionAnswering(PrefixModelForQuestionAnswering, DebertaV2PreTrainedModel):
    """DebertaV2Model with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = DebertaV2PrefixConfig
    backbone_class = DebertaV2Model


class DebertaV2PromptForSequenceClassification(PrefixModelForSequenceClassification, DebertaV2PreTrainedModel):
    """DebertaV2Model with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = DebertaV2PromptConfig
    backbone_class = DebertaV2Model


class DebertaV2PromptForTokenClassification(PrefixModelForTokenClassification, DebertaV2PreTrainedModel):
    """DebertaV2Model with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = DebertaV2PromptConfig
    backbone_class = DebertaV2Model


class DebertaV2PromptForMultipleChoice(PrefixModelForMultipleChoice, DebertaV2PreTrainedModel):
    """DebertaV2Model with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = DebertaV2PromptConfig
    backbone_class = DebertaV2Model


class DebertaV2PromptForQuestionAnswering(PrefixModelForQuestionAnswering, DebertaV2PreTrainedModel):
    """DebertaV2Model with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = DebertaV2PromptConfig
    backbone_class = DebertaV2Model


class MPNetPrefixConfig(PrefixConfigMixin, MPNetConfig):
    """MPNetConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "mpnet_prefix"
    base_model_type = "mpnet"


class MPNetPromptConfig(MPNetPrefixConfig):
    """MPNetPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "mpnet_prompt"
    prefix_method: str = "prompt"


class MPNetPrefixForSequenceClassification(PrefixModelForSequenceClassification, MPNetPreTrainedModel):
    """MPNetModel with prefix tuning: ``PrefixModelForSequenceClassification``."""

    config_class = MPNetPrefixConfig
    backbone_class = MPNetModel


class MPNetPrefixForTokenClassification(PrefixModelForTokenClassification, MPNetPreTrainedModel):
    """MPNetModel with prefix tuning: ``PrefixModelForTokenClassification``."""

    config_class = MPNetPrefixConfig
    backbone_class = MPNetModel


class MPNetPrefixForMultipleChoice(PrefixModelForMultipleChoice, MPNetPreTrainedModel):
    """MPNetModel with prefix tuning: ``PrefixModelForMultipleChoice``."""

    config_class = MPNetPrefixConfig
    backbone_class = MPNetModel


class MPNetPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, MPNetPreTrainedModel):
    """MPNetModel with prefix tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = MPNetPrefixConfig
    backbone_class = MPNetModel


class MPNetPromptForSequenceClassification(PrefixModelForSequenceClassification, MPNetPreTrainedModel):
    """MPNetModel with prompt tuning: ``PrefixModelForSequenceClassification``."""

    config_class = MPNetPromptConfig
    backbone_class = MPNetModel


class MPNetPromptForTokenClassification(PrefixModelForTokenClassification, MPNetPreTrainedModel):
    """MPNetModel with prompt tuning: ``PrefixModelForTokenClassification``."""

    config_class = MPNetPromptConfig
    backbone_class = MPNetModel


class MPNetPromptForMultipleChoice(PrefixModelForMultipleChoice, MPNetPreTrainedModel):
    """MPNetModel with prompt tuning: ``PrefixModelForMultipleChoice``."""

    config_class = MPNetPromptConfig
    backbone_class = MPNetModel


class MPNetPromptForQuestionAnswering(PrefixModelForQuestionAnswering, MPNetPreTrainedModel):
    """MPNetModel with prompt tuning: ``PrefixModelForQuestionAnswering``."""

    config_class = MPNetPromptConfig
    backbone_class = MPNetModel


class GPT2PrefixConfig(PrefixConfigMixin, GPT2Config):
    """GPT2Config plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "gpt2_prefix"
    base_model_type = "gpt2"


class GPT2PromptConfig(GPT2PrefixConfig):
    """GPT2PrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "gpt2_prompt"
    prefix_method: str = "prompt"


class GPT2PrefixLMHeadModel(PrefixModelForCausalLM, GPT2LMHeadModel):
    """GPT2LMHeadModel with prefix tuning: ``PrefixModelForCausalLM``."""

    config_class = GPT2PrefixConfig


class GPT2PromptLMHeadModel(PrefixModelForCausalLM, GPT2LMHeadModel):
    """GPT2LMHeadModel with prompt tuning: ``PrefixModelForCausalLM``."""

    config_class = GPT2PromptConfig


class LlamaPrefixConfig(PrefixConfigMixin, LlamaConfig):
    """LlamaConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "llama_prefix"
    base_model_type = "llama"


class LlamaPromptConfig(LlamaPrefixConfig):
    """LlamaPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "llama_prompt"
    prefix_method: str = "prompt"


class LlamaPrefixForCausalLM(PrefixModelForCausalLM, LlamaForCausalLM):
    """LlamaForCausalLM with prefix tuning: ``PrefixModelForCausalLM``."""

    config_class = LlamaPrefixConfig


class LlamaPromptForCausalLM(PrefixModelForCausalLM, LlamaForCausalLM):
    """LlamaForCausalLM with prompt tuning: ``PrefixModelForCausalLM``."""

    config_class = LlamaPromptConfig


class Qwen2PrefixConfig(PrefixConfigMixin, Qwen2Config):
    """Qwen2Config plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "qwen2_prefix"
    base_model_type = "qwen2"


class Qwen2PromptConfig(Qwen2PrefixConfig):
    """Qwen2PrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "qwen2_prompt"
    prefix_method: str = "prompt"


class Qwen2PrefixForCausalLM(PrefixModelForCausalLM, Qwen2ForCausalLM):
    """Qwen2ForCausalLM with prefix tuning: ``PrefixModelForCausalLM``."""

    config_class = Qwen2PrefixConfig


class Qwen2PromptForCausalLM(PrefixModelForCausalLM, Qwen2ForCausalLM):
    """Qwen2ForCausalLM with prompt tuning: ``PrefixModelForCausalLM``."""

    config_class = Qwen2PromptConfig


class MistralPrefixConfig(PrefixConfigMixin, MistralConfig):
    """MistralConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "mistral_prefix"
    base_model_type = "mistral"


class MistralPromptConfig(MistralPrefixConfig):
    """MistralPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "mistral_prompt"
    prefix_method: str = "prompt"


class MistralPrefixForCausalLM(PrefixModelForCausalLM, MistralForCausalLM):
    """MistralForCausalLM with prefix tuning: ``PrefixModelForCausalLM``."""

    config_class = MistralPrefixConfig


class MistralPromptForCausalLM(PrefixModelForCausalLM, MistralForCausalLM):
    """MistralForCausalLM with prompt tuning: ``PrefixModelForCausalLM``."""

    config_class = MistralPromptConfig


class GemmaPrefixConfig(PrefixConfigMixin, GemmaConfig):
    """GemmaConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "gemma_prefix"
    base_model_type = "gemma"


class GemmaPromptConfig(GemmaPrefixConfig):
    """GemmaPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "gemma_prompt"
    prefix_method: str = "prompt"


class GemmaPrefixForCausalLM(PrefixModelForCausalLM, GemmaForCausalLM):
    """GemmaForCausalLM with prefix tuning: ``PrefixModelForCausalLM``."""

    config_class = GemmaPrefixConfig


class GemmaPromptForCausalLM(PrefixModelForCausalLM, GemmaForCausalLM):
    """GemmaForCausalLM with prompt tuning: ``PrefixModelForCausalLM``."""

    config_class = GemmaPromptConfig


class Gemma2PrefixConfig(PrefixConfigMixin, Gemma2Config):
    """Gemma2Config plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "gemma2_prefix"
    base_model_type = "gemma2"


class Gemma2PromptConfig(Gemma2PrefixConfig):
    """Gemma2PrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "gemma2_prompt"
    prefix_method: str = "prompt"


class Gemma2PrefixForCausalLM(PrefixModelForCausalLM, Gemma2ForCausalLM):
    """Gemma2ForCausalLM with prefix tuning: ``PrefixModelForCausalLM``."""

    config_class = Gemma2PrefixConfig


class Gemma2PromptForCausalLM(PrefixModelForCausalLM, Gemma2ForCausalLM):
    """Gemma2ForCausalLM with prompt tuning: ``PrefixModelForCausalLM``."""

    config_class = Gemma2PromptConfig


class T5PrefixConfig(PrefixConfigMixin, T5Config):
    """T5Config plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "t5_prefix"
    base_model_type = "t5"


class T5PromptConfig(T5PrefixConfig):
    """T5PrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "t5_prompt"
    prefix_method: str = "prompt"


class T5PrefixForConditionalGeneration(PrefixModelForSeq2SeqLM, T5PreTrainedModel):
    """T5ForConditionalGeneration with prefix tuning: ``PrefixModelForSeq2SeqLM``."""

    config_class = T5PrefixConfig
    backbone_class = T5ForConditionalGeneration


class T5PromptForConditionalGeneration(PrefixModelForSeq2SeqLM, T5PreTrainedModel):
    """T5ForConditionalGeneration with prompt tuning: ``PrefixModelForSeq2SeqLM``."""

    config_class = T5PromptConfig
    backbone_class = T5ForConditionalGeneration


class MT5PrefixConfig(PrefixConfigMixin, MT5Config):
    """MT5Config plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "mt5_prefix"
    base_model_type = "mt5"


class MT5PromptConfig(MT5PrefixConfig):
    """MT5PrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "mt5_prompt"
    prefix_method: str = "prompt"


class MT5PrefixForConditionalGeneration(PrefixModelForSeq2SeqLM, MT5PreTrainedModel):
    """MT5ForConditionalGeneration with prefix tuning: ``PrefixModelForSeq2SeqLM``."""

    config_class = MT5PrefixConfig
    backbone_class = MT5ForConditionalGeneration


class MT5PromptForConditionalGeneration(PrefixModelForSeq2SeqLM, MT5PreTrainedModel):
    """MT5ForConditionalGeneration with prompt tuning: ``PrefixModelForSeq2SeqLM``."""

    config_class = MT5PromptConfig
    backbone_class = MT5ForConditionalGeneration


class BartPrefixConfig(PrefixConfigMixin, BartConfig):
    """BartConfig plus the prefix/prompt-tuning fields of ``PrefixConfigMixin``."""

    model_type = "bart_prefix"
    base_model_type = "bart"


class BartPromptConfig(BartPrefixConfig):
    """BartPrefixConfig with ``prefix_method`` defaulting to ``"prompt"``."""

    model_type = "bart_prompt"
    prefix_method: str = "prompt"


class BartPrefixForConditionalGeneration(PrefixModelForSeq2SeqLM, BartPreTrainedModel):
    """BartForConditionalGeneration with prefix tuning: ``PrefixModelForSeq2SeqLM``."""

    config_class = BartPrefixConfig
    backbone_class = BartForConditionalGeneration


class BartPromptForConditionalGeneration(PrefixModelForSeq2SeqLM, BartPreTrainedModel):
    """BartForConditionalGeneration with prompt tuning: ``PrefixModelForSeq2SeqLM``."""

    config_class = BartPromptConfig
    backbone_class = BartForConditionalGeneration
