"""Building the model the flags ask for: a prefix or prompt model through the ``AutoPrefixModelFor*``
classes, or a stock baseline (full fine-tuning, head-only probe), with its trainable set right."""

from __future__ import annotations

import json
import logging
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel
from transformers.utils import cached_file

from .. import auto
from ..errors import InputError
from .arguments import _POOLED_TASKS, ModelArguments, was_given

logger = logging.getLogger(__name__)

# task -> our Auto class (its task class's ``stock_auto_class``, transformers' own, builds the baselines)
_AUTO_CLASSES = {
    "sequence_classification": auto.AutoPrefixModelForSequenceClassification,
    "token_classification": auto.AutoPrefixModelForTokenClassification,
    "multiple_choice": auto.AutoPrefixModelForMultipleChoice,
    "question_answering": auto.AutoPrefixModelForQuestionAnswering,
    "causal_lm": auto.AutoPrefixModelForCausalLM,
    "seq2seq_lm": auto.AutoPrefixModelForSeq2SeqLM,
}


# The learning rate each method trains at when --learning_rate is not given (the measurements behind them are
# in benchmarks/RESULTS.md): the Trainer's 5e-5, right for full fine-tuning, barely moves a prefix or prompt.
METHOD_LEARNING_RATES = {
    ("prefix", "sequence_classification"): 3e-2,
    ("prefix", "token_classification"): 3e-2,
    ("prefix", None): 1e-2,
    ("prompt", None): 3e-2,
}
# The tasks whose prefix starts from the backbone's keys and values of a text (prefix_init="text") unless told
# otherwise: where benchmarks/RESULTS.md measured it to help. Elsewhere the prefix starts random.
PREFIX_TEXT_INIT_TASKS = ("sequence_classification", "token_classification")


def apply_method_defaults(model_args: ModelArguments, training_args: Any, task: str) -> dict[str, Any]:
    """Fill what the user left unset with what suits the method, log it, and return it.

    The learning rate (``--prefix`` / ``--prompt`` without ``--learning_rate``) and, for a sequence or token
    classification prefix without ``--prefix_init`` or ``--prefix_projection``, ``--prefix_init text``.
    (``build_model`` picks the pooling, which needs the checkpoint.) The user's flags always win; full
    fine-tuning and the head-only probe keep the Trainer's defaults.
    """
    picked: dict[str, Any] = {}
    method = model_args.method
    if method is not None and not was_given(training_args, "learning_rate"):
        rate = METHOD_LEARNING_RATES.get((method, task), METHOD_LEARNING_RATES[method, None])
        training_args.learning_rate = rate
        picked["learning_rate"] = rate
    if (
        method == "prefix"
        and task in PREFIX_TEXT_INIT_TASKS
        and model_args.prefix_init is None
        and not model_args.prefix_projection  # the MLP is not a table a text can set
    ):
        model_args.prefix_init = "text"
        picked["prefix_init"] = "text"
    if picked:
        chosen = ", ".join(
            f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}" for name, value in picked.items()
        )
        logger.info(f"--{method}: picked {chosen} (unset; measured in benchmarks/RESULTS.md); pass a flag to override")
    return picked


def load_config(model_args: ModelArguments, **kwargs: Any) -> transformers.PreTrainedConfig:
    """The model's config alone (cheap): used to validate inputs before any weights load."""
    return AutoConfig.from_pretrained(
        model_args.config_name or model_args.model_name_or_path, **model_args.hub_kwargs(), **kwargs
    )


def load_tokenizer(model_args: ModelArguments, **kwargs: Any) -> transformers.PreTrainedTokenizerBase:
    """The tokenizer of ``--tokenizer_name``, else of the model; ``kwargs`` go to ``from_pretrained``."""
    return AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path, **model_args.hub_kwargs(), **kwargs
    )


def max_positions(config: transformers.PreTrainedConfig) -> int | None:
    """How many real tokens the model's position table holds (RoBERTa reserves padding_idx + 1 slots)."""
    limit = getattr(config, "max_position_embeddings", None)
    if limit is None:
        return None
    base_type = getattr(config, "base_model_type", config.model_type)
    if base_type in ("roberta", "xlm-roberta", "camembert"):
        limit -= (config.pad_token_id or 0) + 1
    return limit


def resolve_max_seq_length(requested: int | None, config: transformers.PreTrainedConfig, default: int) -> int:
    """``--max_seq_length``, checked against the model's position table; ``default`` (capped at the
    limit) when not given."""
    limit = max_positions(config)
    if requested is not None and limit is not None and requested > limit:
        raise InputError(
            f"--max_seq_length {requested} is above what the model's position table holds ({limit}); "
            f"use --max_seq_length {limit} or less"
        )
    return requested or min(default, limit or default)


def sentence_transformers_pooling(model_args: ModelArguments) -> str | None:
    """How a sentence-transformers checkpoint pools its tokens (``"mean"`` or ``"cls"``), read from its
    ``modules.json`` and Pooling module config; ``None`` for other checkpoints or files that cannot be read."""
    missing_is_none = {"_raise_exceptions_for_missing_entries": False, "_raise_exceptions_for_connection_errors": False}
    lookup = {**model_args.hub_kwargs(), **missing_is_none}
    try:
        modules_file = cached_file(model_args.model_name_or_path, "modules.json", **lookup)
        if modules_file is None:
            return None
        with open(modules_file) as handle:
            folder = next(m["path"] for m in json.load(handle) if str(m.get("type", "")).endswith("models.Pooling"))
        pooling_file = cached_file(model_args.model_name_or_path, f"{folder}/config.json", **lookup)
        if pooling_file is None:
            return None
        with open(pooling_file) as handle:
            pooling = json.load(handle)
    except (OSError, ValueError, TypeError, KeyError, StopIteration):
        return None
    if pooling.get("pooling_mode_mean_tokens"):
        return "mean"
    return "cls" if pooling.get("pooling_mode_cls_token") else None


def build_model(model_args: ModelArguments, task: str, tokenizer: Any = None, **config_kwargs: Any) -> PreTrainedModel:
    """The model for ``task`` and the method the flags ask for, with its trainable set right.

    ``config_kwargs`` (``num_labels``, ``id2label``, ``problem_type``, ...) go to the config.
    """
    prefix_auto = _AUTO_CLASSES[task]
    stock_auto = prefix_auto._task_class.stock_auto_class
    model_args.check_task(task)
    kwargs = {**model_args.hub_kwargs(), **model_args.prefix_config_kwargs(), **config_kwargs}
    load_kwargs = model_args.load_kwargs()
    if model_args.config_name:
        kwargs["config"] = AutoConfig.from_pretrained(
            model_args.config_name, **model_args.hub_kwargs(), **config_kwargs
        )
        kwargs = {k: v for k, v in kwargs.items() if k not in config_kwargs}
    if model_args.method is not None:
        unset = task in _POOLED_TASKS and model_args.classifier_pooling is None
        trained_with = sentence_transformers_pooling(model_args) if unset else None
        if trained_with is not None:
            # The frozen pooler of such a checkpoint was never trained: the head would read an untrained layer.
            kwargs["classifier_pooling"] = trained_with
            logger.info(
                f"--{model_args.method}: picked --classifier_pooling {trained_with}: "
                f"{model_args.model_name_or_path} is a sentence-transformers checkpoint trained through "
                f"{trained_with} pooling, and its pooler layer was never trained (it stays frozen). Measured on "
                "all-MiniLM-L6-v2 (benchmarks/RESULTS.md): the prefix learns faster (dev +2.1 points). Pass "
                "--classifier_pooling pooler to read the pooler anyway."
            )
        if model_args.prompt_init == "text" or model_args.prefix_init == "text":
            kwargs["tokenizer"] = tokenizer
        model = prefix_auto.from_pretrained(
            model_args.model_name_or_path, method=model_args.method, **kwargs, **load_kwargs
        )
    else:
        model = stock_auto.from_pretrained(model_args.model_name_or_path, **kwargs, **load_kwargs)
        if model_args.head_only:
            # After loading: transformers 5 re-creates parameters in from_pretrained.
            for parameter in model.base_model.parameters():
                parameter.requires_grad_(False)
            for parameter in model.parameters():  # the head trains in float32 over a half-precision backbone
                if parameter.requires_grad and parameter.dtype in (torch.float16, torch.bfloat16):
                    parameter.data = parameter.data.float()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info(
        f"{model_args.description}: {trainable:,} trainable parameters of {total:,} ({100 * trainable / total:.3f}%)"
    )
    return model
