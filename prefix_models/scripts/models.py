"""Building the model the flags ask for: a prefix or prompt model through the ``AutoPrefixModelFor*``
classes, or a stock baseline (full fine-tuning, head-only probe), with its trainable set right."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
import transformers
from transformers import AutoConfig, AutoTokenizer

from .. import defaults
from ..errors import InputError
from .arguments import ModelArguments, was_given
from .hub import model_errors

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

# task -> our Auto class in ``auto.py`` (its task class's ``stock_auto_class``, transformers' own, builds the
# baselines), by name: the model classes load when a model is built, not when a script's --help is asked for
_AUTO_CLASSES = {
    "sequence_classification": "AutoPrefixModelForSequenceClassification",
    "token_classification": "AutoPrefixModelForTokenClassification",
    "multiple_choice": "AutoPrefixModelForMultipleChoice",
    "question_answering": "AutoPrefixModelForQuestionAnswering",
    "causal_lm": "AutoPrefixModelForCausalLM",
    "seq2seq_lm": "AutoPrefixModelForSeq2SeqLM",
}


def apply_method_defaults(model_args: ModelArguments, training_args: Any, task: str) -> dict[str, Any]:
    """Fill what the user left unset with what the method's recipe picks (``prefix_models.defaults``: the
    learning rate, a classification prefix's ``--prefix_init``), log it, and return it.

    (``build_model`` picks the pooling, which needs the checkpoint.) The user's flags always win; full
    fine-tuning and the head-only probe keep the Trainer's defaults.
    """
    picked: dict[str, Any] = {}
    method = model_args.method
    if not was_given(training_args, "learning_rate"):
        for name, value in defaults.recommended_training_arguments(method, task).items():
            setattr(training_args, name, value)
            picked[name] = value
    if model_args.prefix_init is None and model_args.prefix_init_from is None:  # a transferred prefix has its start
        for name, value in defaults.recommended_model_kwargs(method, task, model_args.prefix_projection).items():
            setattr(model_args, name, value)
            picked[name] = value
    if picked:
        chosen = ", ".join(
            f"--{name} {defaults.format_rate(value)}" if isinstance(value, float) else f"--{name} {value}"
            for name, value in picked.items()
        )
        logger.info(f"--{method}: picked {chosen} (unset; measured in benchmarks/RESULTS.md); pass a flag to override")
    return picked


def load_config(model_args: ModelArguments, **kwargs: Any) -> transformers.PreTrainedConfig:
    """The model's config alone (cheap): used to validate inputs before any weights load. A model the hub
    cannot give (offline and not cached, ...) ends here as one line saying so."""
    flag, name = _source(model_args, "config_name")
    with model_errors(flag, name):
        return AutoConfig.from_pretrained(name, **model_args.hub_kwargs(), **kwargs)


def load_tokenizer(model_args: ModelArguments, **kwargs: Any) -> transformers.PreTrainedTokenizerBase:
    """The tokenizer of ``--tokenizer_name``, else of the model; ``kwargs`` go to ``from_pretrained``."""
    flag, name = _source(model_args, "tokenizer_name")
    with model_errors(flag, name):
        return AutoTokenizer.from_pretrained(name, **model_args.hub_kwargs(), **kwargs)


def _source(model_args: ModelArguments, field: str) -> tuple[str, str]:
    """The flag and value naming where the config or tokenizer comes from: ``field``, else the model."""
    if getattr(model_args, field):
        return f"--{field}", getattr(model_args, field)
    return "--model_name_or_path", model_args.model_name_or_path


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
    """How the ``--model_name_or_path`` checkpoint pools its tokens if it is a sentence-transformers one
    (``"mean"`` or ``"cls"``; ``defaults.sentence_transformers_pooling``), else ``None``."""
    return defaults.sentence_transformers_pooling(model_args.model_name_or_path, **model_args.hub_kwargs())


def _is_prefix_model(model_args: ModelArguments) -> bool:
    """Whether ``--model_name_or_path`` is a saved prefix or prompt model (the stock Auto classes load it into ours)."""
    with model_errors("--model_name_or_path", model_args.model_name_or_path):
        config = AutoConfig.from_pretrained(model_args.model_name_or_path, **model_args.hub_kwargs())
    return hasattr(config, "prefix_method")


def build_model(model_args: ModelArguments, task: str, tokenizer: Any = None, **config_kwargs: Any) -> PreTrainedModel:
    """The model for ``task`` and the method the flags ask for, with its trainable set right.

    ``config_kwargs`` (``num_labels``, ``id2label``, ``problem_type``, ...) go to the config.
    """
    from .. import auto

    prefix_auto = getattr(auto, _AUTO_CLASSES[task])
    stock_auto = prefix_auto._task_class.stock_auto_class
    model_args.check_task(task)
    kwargs = {**model_args.hub_kwargs(), **model_args.prefix_config_kwargs(), **config_kwargs}
    load_kwargs = model_args.load_kwargs()
    if model_args.ignore_mismatched_base and (model_args.method is not None or _is_prefix_model(model_args)):
        load_kwargs["ignore_mismatched_base"] = True  # only our classes take it
    if model_args.config_name:
        with model_errors("--config_name", model_args.config_name):
            kwargs["config"] = AutoConfig.from_pretrained(
                model_args.config_name, **model_args.hub_kwargs(), **config_kwargs
            )
        kwargs = {k: v for k, v in kwargs.items() if k not in config_kwargs}
    if model_args.method is not None:
        trained_with = None
        if model_args.classifier_pooling is None:  # what the Auto class would pick too, said here in flags
            picked = defaults.checkpoint_defaults(
                model_args.model_name_or_path, model_args.method, task, **model_args.hub_kwargs()
            )
            trained_with = picked.get("classifier_pooling")
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
        if model_args.prefix_init_from is not None:
            kwargs["prefix_init_from"] = model_args.prefix_init_from
        with model_errors("--model_name_or_path", model_args.model_name_or_path):
            model = prefix_auto.from_pretrained(
                model_args.model_name_or_path, method=model_args.method, **kwargs, **load_kwargs
            )
    else:
        with model_errors("--model_name_or_path", model_args.model_name_or_path):
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
