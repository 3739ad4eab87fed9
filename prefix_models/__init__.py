"""prefix-models: P-tuning v2 (deep prefix tuning) and prompt tuning for transformers models.

Importing the package also registers its model types with the stock transformers Auto classes,
so saved prefix models load with ``AutoModelFor*.from_pretrained`` and ``pipeline(...)``.
"""

from .auto import (
    AutoPrefixModelForCausalLM,
    AutoPrefixModelForMultipleChoice,
    AutoPrefixModelForQuestionAnswering,
    AutoPrefixModelForSequenceClassification,
    AutoPrefixModelForTokenClassification,
)
from .configuration import (
    CLASSIFIER_POOLINGS,
    PREFIX_FIELDS,
    PROMPT_INITS,
    make_prefix_config_class,
    validate_prefix_config,
)
from .encoders import PrefixEncoder, PromptEncoder
from .errors import InputError
from .modeling_bert import (
    BertPrefixConfig,
    BertPrefixForMultipleChoice,
    BertPrefixForQuestionAnswering,
    BertPrefixForSequenceClassification,
    BertPrefixForTokenClassification,
    BertPromptConfig,
    BertPromptForMultipleChoice,
    BertPromptForQuestionAnswering,
    BertPromptForSequenceClassification,
    BertPromptForTokenClassification,
)
from .modeling_causal_lm import PrefixModelForCausalLM
from .modeling_gpt2 import GPT2PrefixConfig, GPT2PrefixLMHeadModel
from .modeling_llama import LlamaPrefixConfig, LlamaPrefixForCausalLM
from .modeling_roberta import (
    RobertaPrefixConfig,
    RobertaPrefixForMultipleChoice,
    RobertaPrefixForQuestionAnswering,
    RobertaPrefixForSequenceClassification,
    RobertaPrefixForTokenClassification,
    RobertaPromptConfig,
    RobertaPromptForMultipleChoice,
    RobertaPromptForQuestionAnswering,
    RobertaPromptForSequenceClassification,
    RobertaPromptForTokenClassification,
)
from .prompt import (
    FrozenPrefixCache,
    extend_attention_mask,
    prefix_cache,
    prefix_cache_from,
    prefix_key_values,
    real_position_ids,
)

__version__ = "0.1.0"

__all__ = [
    "AutoPrefixModelForCausalLM",
    "FrozenPrefixCache",
    "InputError",
    "GPT2PrefixConfig",
    "GPT2PrefixLMHeadModel",
    "LlamaPrefixConfig",
    "LlamaPrefixForCausalLM",
    "PrefixModelForCausalLM",
    "AutoPrefixModelForMultipleChoice",
    "AutoPrefixModelForQuestionAnswering",
    "AutoPrefixModelForSequenceClassification",
    "AutoPrefixModelForTokenClassification",
    "BertPrefixConfig",
    "BertPrefixForMultipleChoice",
    "BertPrefixForQuestionAnswering",
    "BertPrefixForSequenceClassification",
    "BertPrefixForTokenClassification",
    "BertPromptConfig",
    "BertPromptForMultipleChoice",
    "BertPromptForQuestionAnswering",
    "BertPromptForSequenceClassification",
    "BertPromptForTokenClassification",
    "CLASSIFIER_POOLINGS",
    "PREFIX_FIELDS",
    "PROMPT_INITS",
    "PrefixEncoder",
    "PromptEncoder",
    "RobertaPrefixConfig",
    "RobertaPrefixForMultipleChoice",
    "RobertaPrefixForQuestionAnswering",
    "RobertaPrefixForSequenceClassification",
    "RobertaPrefixForTokenClassification",
    "RobertaPromptConfig",
    "RobertaPromptForMultipleChoice",
    "RobertaPromptForQuestionAnswering",
    "RobertaPromptForSequenceClassification",
    "RobertaPromptForTokenClassification",
    "extend_attention_mask",
    "make_prefix_config_class",
    "prefix_cache",
    "prefix_cache_from",
    "prefix_key_values",
    "real_position_ids",
    "validate_prefix_config",
]
