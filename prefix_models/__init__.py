"""prefix-models: P-tuning v2 (deep prefix tuning) and prompt tuning for transformers models.

Importing the package also registers its model types with the stock transformers Auto classes,
so saved prefix models load with ``AutoModelFor*.from_pretrained`` and ``pipeline(...)``.

The named classes (``BertPrefixForSequenceClassification``, ``DebertaV2PromptForTokenClassification``,
``Qwen2PrefixForCausalLM``, ...) and their configs are in ``named_classes.py``, generated from the
family tables in ``families.py``.
"""

from . import named_classes
from .auto import (
    AutoPrefixModelForCausalLM,
    AutoPrefixModelForMultipleChoice,
    AutoPrefixModelForQuestionAnswering,
    AutoPrefixModelForSeq2SeqLM,
    AutoPrefixModelForSequenceClassification,
    AutoPrefixModelForTokenClassification,
)
from .configuration import (
    CLASSIFIER_POOLINGS,
    PREFIX_FIELDS,
    PROMPT_INITS,
    make_prefix_config_class,
    top_layers,
    validate_prefix_config,
)
from .errors import InputError
from .inputs import extend_attention_mask, real_position_ids
from .methods.prefix_tuning.encoder import PrefixEncoder, prefix_key_values
from .methods.prefix_tuning.injection import PREFIX_ATTENTION, PrefixState
from .methods.prompt_tuning.encoder import PromptEncoder
from .modeling_causal_lm import PrefixModelForCausalLM
from .modeling_seq2seq import PrefixModelForSeq2SeqLM
from .named_classes import *  # noqa: F403  (every named model and config class)

__version__ = "0.1.0"

__all__ = [
    "AutoPrefixModelForCausalLM",
    "AutoPrefixModelForMultipleChoice",
    "AutoPrefixModelForQuestionAnswering",
    "AutoPrefixModelForSeq2SeqLM",
    "AutoPrefixModelForSequenceClassification",
    "AutoPrefixModelForTokenClassification",
    "CLASSIFIER_POOLINGS",
    "InputError",
    "PREFIX_ATTENTION",
    "PREFIX_FIELDS",
    "PROMPT_INITS",
    "PrefixEncoder",
    "PrefixModelForCausalLM",
    "PrefixModelForSeq2SeqLM",
    "PrefixState",
    "PromptEncoder",
    "extend_attention_mask",
    "make_prefix_config_class",
    "prefix_key_values",
    "real_position_ids",
    "top_layers",
    "validate_prefix_config",
    *named_classes.__all__,
]
