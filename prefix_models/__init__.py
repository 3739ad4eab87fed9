"""prefix-models: P-tuning v2 (deep prefix tuning) and prompt tuning for transformers models.

Importing the package also registers its model types with the stock transformers Auto classes,
so saved prefix models load with ``AutoModelFor*.from_pretrained`` and ``pipeline(...)``.

The named classes (``BertPrefixForSequenceClassification``, ``DebertaV2PromptForTokenClassification``,
``Qwen2PrefixForCausalLM``, ...) and their configs are in ``named_classes.py``, generated from the
family tables in ``families.py``.

The import is lazy, as transformers' own: every name below comes from its module the first time it is
used, so ``import prefix_models`` costs little over ``import transformers`` (``benchmarks/import_time.py``),
and the Auto classes learn the model types by name (``registration.py``).
"""

from __future__ import annotations

from .lazy import lazy_exports
from .named_class_index import AUTO_CLASSES, CONFIG_CLASSES
from .registration import register_by_name

__version__ = "0.1.0"

# public name -> the module (under this package) that defines it
_EXPORTS = {
    "AutoPrefixModelForCausalLM": "auto",
    "AutoPrefixModelForMultipleChoice": "auto",
    "AutoPrefixModelForQuestionAnswering": "auto",
    "AutoPrefixModelForSeq2SeqLM": "auto",
    "AutoPrefixModelForSequenceClassification": "auto",
    "AutoPrefixModelForTokenClassification": "auto",
    "CLASSIFIER_POOLINGS": "configuration",
    "InputError": "errors",
    "PREFIX_ATTENTION": "methods.prefix_tuning.injection",
    "PREFIX_FIELDS": "configuration",
    "PROMPT_INITS": "configuration",
    "PrefixEncoder": "methods.prefix_tuning.encoder",
    "PrefixModelForCausalLM": "modeling_causal_lm",
    "PrefixModelForSeq2SeqLM": "modeling_seq2seq",
    "PrefixState": "methods.prefix_tuning.injection",
    "PromptEncoder": "methods.prompt_tuning.encoder",
    "extend_attention_mask": "inputs",
    "make_prefix_config_class": "configuration",
    "prefix_key_values": "methods.prefix_tuning.encoder",
    "real_position_ids": "inputs",
    "recommended_model_kwargs": "defaults",
    "recommended_training_arguments": "defaults",
    "top_layers": "configuration",
    "validate_prefix_config": "configuration",
    # every named model and config class
    **dict.fromkeys(CONFIG_CLASSES.values(), "named_classes"),
    **{name: "named_classes" for classes in AUTO_CLASSES.values() for name in classes.values()},
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), submodules=True)

register_by_name()
