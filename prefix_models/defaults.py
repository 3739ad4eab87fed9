"""What each method picks for the settings a user leaves unset: the one table the scripts and the Python API read.

==================  =============================================  ==========  ==================
setting             ``--prefix`` (``method="prefix"``)             --prompt    full fine-tuning,
                                                                               ``--head_only``
==================  =============================================  ==========  ==================
learning_rate       3e-2 for sequence and token classification;    3e-2        the Trainer's 5e-5
                    1e-2 for other tasks
prefix_init         ``text`` for sequence and token                (random)    (none)
                    classification (not with prefix_projection);
                    ``random`` otherwise
classifier_pooling  the pooling a sentence-transformers            as prefix   (the stock head)
                    checkpoint was trained with (``mean`` or
                    ``cls``); ``pooler`` otherwise
==================  =============================================  ==========  ==================

``classifier_pooling`` depends only on the checkpoint: it applies wherever a model is built from one, in the scripts
and in ``AutoPrefixModelFor*.from_pretrained``, so both build the same model. ``learning_rate`` and ``prefix_init``
are the training recipe: the scripts apply them, and Python callers get them from
:func:`recommended_training_arguments` and :func:`recommended_model_kwargs`::

    model = AutoPrefixModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=2, **recommended_model_kwargs("prefix", "sequence_classification")
    )
    args = TrainingArguments("out", **recommended_training_arguments("prefix", "sequence_classification"))

The measurements behind them are in ``benchmarks/RESULTS.md``: the Trainer's 5e-5, right for full fine-tuning,
barely moves a prefix or prompt; a classification prefix started from the backbone's own keys and values of a text
trains steadier; a sentence-transformers checkpoint was trained through its mean (or ``[CLS]`` state) and never
trained its pooler, which stays frozen. A value given explicitly (a flag, a keyword) always wins; a saved prefix
model keeps the settings it was saved with.

This module imports nothing heavy (the scripts' ``--help`` reads it).
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import InputError

# The tasks, as the scripts and the Auto classes name them.
TASKS = (
    "sequence_classification",
    "token_classification",
    "multiple_choice",
    "question_answering",
    "causal_lm",
    "seq2seq_lm",
)
METHODS = ("prefix", "prompt")
# Where one vector stands for the input, so the head reads a pooling of the tokens.
POOLED_TASKS = ("sequence_classification", "multiple_choice")

# (method, task) -> learning rate; (method, None) is that method's rate on the other tasks.
LEARNING_RATES: dict[tuple[str, str | None], float] = {
    ("prefix", "sequence_classification"): 3e-2,
    ("prefix", "token_classification"): 3e-2,
    ("prefix", None): 1e-2,
    ("prompt", None): 3e-2,
}
# The tasks whose prefix starts from the backbone's keys and values of a text (where it was measured to help).
PREFIX_TEXT_INIT_TASKS = ("sequence_classification", "token_classification")


def _tasks_phrase(tasks: tuple[str, ...] | list[str]) -> str:
    """``sequence and token classification`` for those two tasks: tasks in words, for the help texts."""
    if all(task.endswith("_classification") for task in tasks):
        return " and ".join(task.removesuffix("_classification") for task in tasks) + " classification"
    return " and ".join(task.replace("_", " ").replace(" lm", " LM") for task in tasks)


def _check(method: str | None, task: str) -> None:
    if method is not None and method not in METHODS:
        raise InputError(f"method must be one of {METHODS} or None (full fine-tuning), got {method!r}")
    if task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}; got {task!r}")


def learning_rate(method: str | None, task: str) -> float | None:
    """The learning rate ``method`` trains ``task`` at; ``None`` for full fine-tuning (the Trainer's own)."""
    _check(method, task)
    if method is None:
        return None
    return LEARNING_RATES.get((method, task), LEARNING_RATES[method, None])


def recommended_training_arguments(method: str | None, task: str = "sequence_classification") -> dict[str, Any]:
    """The ``TrainingArguments`` keywords the scripts use for ``method`` (``"prefix"``, ``"prompt"``, or ``None``
    for full fine-tuning) on ``task``: ``TrainingArguments("out", **recommended_training_arguments("prefix"))``.
    Keywords given beside them win (``{**recommended_training_arguments("prefix"), "learning_rate": 1e-3}``)."""
    rate = learning_rate(method, task)
    return {} if rate is None else {"learning_rate": rate}


def recommended_model_kwargs(
    method: str | None, task: str = "sequence_classification", prefix_projection: bool = False
) -> dict[str, Any]:
    """The ``from_pretrained`` keywords the scripts add for ``method`` on ``task`` beyond what the checkpoint
    decides (:func:`checkpoint_defaults`): ``{"prefix_init": "text"}`` for a sequence or token classification
    prefix without ``prefix_projection`` (the MLP is not a table a text can set). A text init reads its text
    with ``tokenizer=``, or the checkpoint's own tokenizer when none is passed."""
    _check(method, task)
    if method == "prefix" and task in PREFIX_TEXT_INIT_TASKS and not prefix_projection:
        return {"prefix_init": "text"}
    return {}


_LOOKUP_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "proxies")


def sentence_transformers_pooling(pretrained_model_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> str | None:
    """How a sentence-transformers checkpoint pools its tokens (``"mean"`` or ``"cls"``), read from its
    ``modules.json`` and Pooling module config; ``None`` for other checkpoints or files that cannot be read.
    ``hub_kwargs``: ``cache_dir``, ``revision``, ``token``, ... as ``from_pretrained`` takes them."""
    from transformers.utils import cached_file

    path = os.fspath(pretrained_model_name_or_path)
    lookup = {
        # modules.json sits at the repository's root, whatever subfolder holds the weights.
        **{key: value for key, value in hub_kwargs.items() if key in _LOOKUP_KWARGS},
        "_raise_exceptions_for_missing_entries": False,
        "_raise_exceptions_for_connection_errors": False,
    }
    try:
        modules_file = cached_file(path, "modules.json", **lookup)
        if modules_file is None:
            return None
        with open(modules_file) as handle:
            folder = next(m["path"] for m in json.load(handle) if str(m.get("type", "")).endswith("models.Pooling"))
        pooling_file = cached_file(path, f"{folder}/config.json", **lookup)
        if pooling_file is None:
            return None
        with open(pooling_file) as handle:
            pooling = json.load(handle)
    except (OSError, ValueError, TypeError, KeyError, StopIteration):
        return None
    if pooling.get("pooling_mode_mean_tokens"):
        return "mean"
    return "cls" if pooling.get("pooling_mode_cls_token") else None


def checkpoint_defaults(
    pretrained_model_name_or_path: str | os.PathLike, method: str | None, task: str, **hub_kwargs: Any
) -> dict[str, Any]:
    """The config fields a fresh ``method`` model for ``task`` takes from what the checkpoint is:
    ``{"classifier_pooling": "mean"}`` for a sentence-transformers checkpoint trained through its mean (its
    pooler layer was never trained). Empty for other checkpoints, tasks and full fine-tuning."""
    _check(method, task)
    if method is None or task not in POOLED_TASKS:
        return {}
    pooling = sentence_transformers_pooling(pretrained_model_name_or_path, **hub_kwargs)
    return {} if pooling is None else {"classifier_pooling": pooling}


def format_rate(rate: float) -> str:
    """``3e-2`` for 0.03: a learning rate as people write it."""
    mantissa, exponent = f"{rate:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def learning_rate_help(trainer_default: float) -> str:
    """``--learning_rate``'s help: what each method picks when it is not given (``trainer_default``: the
    Trainer's own, which full fine-tuning keeps)."""
    per_method = []
    for method in METHODS:
        rates: dict[float, list[str]] = {}
        for (candidate, task), rate in LEARNING_RATES.items():
            if candidate == method and task is not None:
                rates.setdefault(rate, []).append(task)
        named = [f"{format_rate(rate)} for {_tasks_phrase(tasks)}" for rate, tasks in rates.items()]
        other = format_rate(LEARNING_RATES[method, None])
        per_method.append(f"with --{method} " + ", ".join([*named, f"{other} for other tasks"] if named else [other]))
    return (
        f"The initial learning rate. Default: {'; '.join(per_method)}; for full fine-tuning and --head_only "
        f"the Trainer's {format_rate(trainer_default)}."
    )


def prefix_init_help() -> str:
    """``--prefix_init``'s help, its default from :data:`PREFIX_TEXT_INIT_TASKS`."""
    tasks = _tasks_phrase(PREFIX_TEXT_INIT_TASKS)
    return (
        "With --prefix: start the prefix random, or as the backbone's own keys and values of a text "
        "(Li & Liang's initialisation; --prefix_init_text, or a neutral default sentence). "
        f"Default: text for {tasks} (measured to help; random with --prefix_projection), random otherwise."
    )


def classifier_pooling_help() -> str:
    """``--classifier_pooling``'s help, its default from :func:`checkpoint_defaults`."""
    tasks = _tasks_phrase(POOLED_TASKS)
    return (
        f"With --prefix or --prompt, {tasks}: what the head reads. pooler: BERT's pooler on [CLS], as "
        "BertForSequenceClassification and P-tuning v2; cls: the [CLS] hidden state; mean: the mean over real "
        "tokens. Default: for a sentence-transformers checkpoint, the pooling it was trained with (mean or cls: "
        "its pooler was never trained); pooler otherwise."
    )
