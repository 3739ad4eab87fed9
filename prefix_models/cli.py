"""What the example scripts (``run_glue.py``, ``run_ner.py``) share: the model flags, building the
model for a method (prefix, prompt, head-only probe or full fine-tuning), logging and output-dir
handling.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import datasets
import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    HfArgumentParser,
    PreTrainedModel,
    Trainer,
    TrainingArguments,
)
from transformers.utils import cached_file

from .auto import (
    AutoPrefixModelForCausalLM,
    AutoPrefixModelForMultipleChoice,
    AutoPrefixModelForQuestionAnswering,
    AutoPrefixModelForSeq2SeqLM,
    AutoPrefixModelForSequenceClassification,
    AutoPrefixModelForTokenClassification,
)
from .errors import InputError

logger = logging.getLogger(__name__)

# task -> (our Auto class, the stock transformers Auto class for the baselines)
_AUTO_CLASSES = {
    "sequence_classification": (AutoPrefixModelForSequenceClassification, AutoModelForSequenceClassification),
    "token_classification": (AutoPrefixModelForTokenClassification, AutoModelForTokenClassification),
    "multiple_choice": (AutoPrefixModelForMultipleChoice, AutoModelForMultipleChoice),
    "question_answering": (AutoPrefixModelForQuestionAnswering, AutoModelForQuestionAnswering),
    "causal_lm": (AutoPrefixModelForCausalLM, AutoModelForCausalLM),
    "seq2seq_lm": (AutoPrefixModelForSeq2SeqLM, AutoModelForSeq2SeqLM),
}
_PREFIX_ONLY_FLAGS = ("pre_seq_len", "prefix_projection", "prefix_hidden_size", "prompt_init", "prompt_init_text",
                      "classifier_pooling")  # fmt: skip
_POOLED_TASKS = ("sequence_classification", "multiple_choice")


@dataclass
class ModelArguments:
    """Which model to start from, and how to tune it."""

    model_name_or_path: str = field(
        metadata={"help": "Pretrained model: a hub id or a local directory (a saved prefix model works too)."}
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name or path, if not the model's."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer name or path, if not the model's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache hub downloads."})
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models."})
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = field(
        default=None,
        metadata={"help": "Load the backbone in this dtype (auto: the checkpoint's). A prefix, prompt and head "
                          "still train in float32. For mixed-precision compute add --bf16 / --fp16."},
    )  # fmt: skip
    prefix: bool = field(
        default=False,
        metadata={"help": "P-tuning v2 / deep prefix tuning: trainable keys and values at every layer."},
    )
    prompt: bool = field(
        default=False, metadata={"help": "Prompt tuning: trainable soft tokens before the input embeddings only."}
    )
    head_only: bool = field(
        default=False,
        metadata={"help": "Baseline: frozen backbone, train the linear head only (a linear probe)."},
    )
    pre_seq_len: int | None = field(
        default=None, metadata={"help": "Number of virtual tokens (with --prefix or --prompt). Default 16."}
    )
    prefix_projection: bool = field(
        default=False,
        metadata={"help": "With --prefix: reparameterise the prefix through a 2-layer tanh MLP."},
    )
    prefix_hidden_size: int | None = field(
        default=None, metadata={"help": "With --prefix_projection: the MLP's hidden width. Default 512."}
    )
    hidden_dropout_prob: float | None = field(
        default=None,
        metadata={"help": "Dropout of the backbone's hidden states and of the prefix. Default: the model's own."},
    )
    prompt_init: Literal["random", "vocab", "text"] | None = field(
        default=None,
        metadata={"help": "With --prompt: start the prompt random, from sampled vocabulary rows, or from a text."},
    )
    prompt_init_text: str | None = field(
        default=None, metadata={"help": "With --prompt_init text: the text whose embeddings start the prompt."}
    )
    classifier_pooling: Literal["pooler", "cls", "mean"] | None = field(
        default=None,
        metadata={"help": "With --prefix or --prompt, sequence tasks: what the head reads. pooler: BERT's pooler "
                          "on [CLS], as BertForSequenceClassification and P-tuning v2; cls: the [CLS] hidden state; "
                          "mean: the mean over real tokens (for sentence-transformers checkpoints, whose pooler "
                          "was never trained). Default pooler."},
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.prefix and self.prompt:
            raise InputError("--prefix and --prompt are exclusive: pick one (or neither, for full fine-tuning)")
        if self.head_only and (self.prefix or self.prompt):
            raise InputError("--head_only is a baseline of its own: it cannot be combined with --prefix or --prompt")
        if self.method is None:
            given = [f"--{name}" for name in _PREFIX_ONLY_FLAGS if getattr(self, name) not in (None, False)]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise InputError(f"{', '.join(given)} only {verb} with --prefix or --prompt")
        elif self.method == "prompt":
            if self.prefix_projection or self.prefix_hidden_size is not None:
                raise InputError("--prefix_projection / --prefix_hidden_size apply to --prefix, not --prompt")
        elif self.prompt_init is not None or self.prompt_init_text is not None:
            raise InputError("--prompt_init / --prompt_init_text apply to --prompt, not --prefix")
        if self.prompt_init == "text" and not self.prompt_init_text:
            raise InputError("--prompt_init text needs --prompt_init_text")
        if self.pre_seq_len is not None and self.pre_seq_len <= 0:
            raise InputError(f"--pre_seq_len must be a positive integer, got {self.pre_seq_len}")
        if self.prefix_hidden_size is not None and self.prefix_hidden_size <= 0:
            raise InputError(f"--prefix_hidden_size must be a positive integer, got {self.prefix_hidden_size}")
        if self.hidden_dropout_prob is not None and not 0.0 <= self.hidden_dropout_prob < 1.0:
            raise InputError(f"--hidden_dropout_prob must be in [0, 1), got {self.hidden_dropout_prob}")

    def check_task(self, task: str) -> None:
        """Reject the flags that mean nothing for ``task`` (a key of ``_AUTO_CLASSES``)."""
        if self.classifier_pooling is not None and task not in _POOLED_TASKS:
            kind = task.replace("_", " ")
            raise InputError("--classifier_pooling applies to sequence classification and multiple choice, where "
                             f"one vector stands for the input; a {kind} model reads every token")  # fmt: skip

    @property
    def method(self) -> str | None:
        """``"prefix"``, ``"prompt"`` or ``None`` (a baseline: full fine-tuning or head-only)."""
        return "prefix" if self.prefix else "prompt" if self.prompt else None

    @property
    def description(self) -> str:
        return self.method or ("head-only (frozen backbone)" if self.head_only else "full fine-tuning")

    def hub_kwargs(self) -> dict[str, Any]:
        return {"cache_dir": self.cache_dir, "revision": self.model_revision, "token": self.token}

    def load_kwargs(self) -> dict[str, Any]:
        """``from_pretrained`` keywords for the weights themselves."""
        if self.dtype is None:
            return {}
        return {"dtype": self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)}

    def prefix_config_kwargs(self) -> dict[str, Any]:
        """Config fields to pass to ``from_pretrained`` (only those the user set)."""
        kwargs: dict[str, Any] = {}
        if self.hidden_dropout_prob is not None:
            kwargs["hidden_dropout_prob"] = self.hidden_dropout_prob
        if self.method is not None:
            values = {
                "pre_seq_len": self.pre_seq_len,
                "prefix_projection": self.prefix_projection or None,
                "prefix_hidden_size": self.prefix_hidden_size,
                "prompt_init": self.prompt_init,
                "prompt_init_text": self.prompt_init_text,
                "classifier_pooling": self.classifier_pooling,
            }
            kwargs.update({key: value for key, value in values.items() if value is not None})
        return kwargs


@dataclass
class OutputArguments:
    """Run options both scripts share that ``TrainingArguments`` no longer carries."""

    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train over a model already in output_dir instead of stopping."}
    )


@dataclass
class DataArguments(OutputArguments):
    """The data options both scripts share; each script adds its own and says what ``--data_dir``
    and the files hold."""

    dataset_name: str | None = field(default=None, metadata={"help": "A hub dataset (used when online)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The hub dataset's configuration."})
    data_dir: str | None = field(default=None, metadata={"help": "A folder holding the data files."})
    train_file: str | None = field(default=None, metadata={"help": "Training data (formats: see above)."})
    validation_file: str | None = field(default=None, metadata={"help": "Dev data (formats: see above)."})
    test_file: str | None = field(default=None, metadata={"help": "Data to predict on (formats: see above)."})
    max_seq_length: int | None = field(
        default=None, metadata={"help": "Most tokens per model input after tokenisation (default: see above)."}
    )
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every input to max_seq_length (default: pad each batch to its longest)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only this many training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only this many dev examples."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only this many test examples."})

    def check_sources(self) -> list[str]:
        """Check the flags every script checks alike; set ``files`` (split -> path) and return the
        data sources named (at most one)."""
        files = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        self.files = {split: path for split, path in files.items() if path}
        sources = [name for name, used in (("--data_dir", self.data_dir), ("--train_file/--validation_file/"
                   "--test_file", self.files), ("--dataset_name", self.dataset_name)) if used]  # fmt: skip
        if len(sources) > 1:
            raise InputError(f"pick one data source; got {' and '.join(sources)}")
        if self.max_seq_length is not None and self.max_seq_length <= 0:
            raise InputError(f"--max_seq_length must be positive, got {self.max_seq_length}")
        for split, path in self.files.items():
            if not os.path.isfile(path):
                raise InputError(f"--{split}_file {path} does not exist")
        return sources

    def sample_caps(self) -> dict[str, int | None]:
        """``--max_*_samples`` by split."""
        return {"train": self.max_train_samples, "validation": self.max_eval_samples, "test": self.max_predict_samples}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the flag help, the script's docstring as written."""


def parse_arguments(dataclass_types: tuple, argv: list[str] | None = None, description: str | None = None) -> tuple:
    """Parse the command line into the dataclasses, as transformers' example scripts do: a single
    ``.json`` argument is read as the whole configuration. ``description`` heads ``--help``."""
    parser = HfArgumentParser(dataclass_types, description=description, formatter_class=_HelpFormatter)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def load_config(model_args: ModelArguments, **kwargs: Any) -> transformers.PreTrainedConfig:
    """The model's config alone (cheap): used to validate inputs before any weights load."""
    return AutoConfig.from_pretrained(
        model_args.config_name or model_args.model_name_or_path, **model_args.hub_kwargs(), **kwargs
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
        raise InputError(f"--max_seq_length {requested} is above what the model's position table holds ({limit}); "
                         f"use --max_seq_length {limit} or less")  # fmt: skip
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
    prefix_auto, stock_auto = _AUTO_CLASSES[task]
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
            logger.warning(
                f"{model_args.model_name_or_path} is a sentence-transformers checkpoint trained through {trained_with} "
                f"pooling; its pooler layer was not trained and stays frozen under --{model_args.method}. Consider "
                f"--classifier_pooling {trained_with} (benchmarks/RESULTS.md: on all-MiniLM-L6-v2 a prefix then "
                "learns faster)."
            )
        if model_args.method == "prompt" and model_args.prompt_init == "text":
            kwargs["tokenizer"] = tokenizer
        model = prefix_auto.from_pretrained(model_args.model_name_or_path, method=model_args.method, **kwargs,
                                            **load_kwargs)  # fmt: skip
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


def setup_logging(training_args: TrainingArguments) -> None:
    """Log like the transformers example scripts: INFO on the main process, warnings elsewhere."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:  # the main process reports progress, as in transformers' scripts
        transformers.utils.logging.set_verbosity_info()
    level = training_args.get_process_log_level()
    for name in (__name__.split(".")[0], "__main__"):
        logging.getLogger(name).setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def log_run_start(training_args: TrainingArguments, model_args: ModelArguments) -> None:
    logger.warning(
        f"Process rank: {training_args.process_index}, device: {training_args.device}, n_gpu: {training_args.n_gpu}, "
        f"distributed: {training_args.parallel_mode.value == 'distributed'}, method: {model_args.description}"
    )


def check_training_engine(training_args: TrainingArguments) -> None:
    """Refuse a sharding engine the hardware cannot run, instead of the Trainer's silent fallback.

    accelerate runs FSDP on accelerators only: on CPU, ``--fsdp`` (or an accelerate FSDP config) left
    the Trainer with ``is_fsdp_enabled`` False, wrapping the model in DDP as if the flag were not there.
    """
    wants_fsdp = bool(training_args.fsdp) or os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")
    if wants_fsdp and training_args.device.type == "cpu":
        raise InputError(
            "--fsdp needs GPUs (or another accelerator): accelerate does not run FSDP on the CPU, where the Trainer "
            "would fall back to DDP without saying so. On CPU, leave out --fsdp and start several processes with "
            "torchrun (DDP; README, 'Scaling, precision and long runs'): only the prefix and head train, so DDP's "
            "full copy per process costs little. benchmarks/gpu_engines.py checks FSDP and DeepSpeed on a GPU machine"
        )


def training_engine(trainer: Trainer) -> str:
    """What runs the training: ``fsdp``, ``deepspeed``, ``ddp`` (several processes) or ``single process``."""
    if trainer.is_fsdp_enabled:
        return "fsdp"
    if trainer.is_deepspeed_enabled:
        return "deepspeed"
    return "ddp" if trainer.args.world_size > 1 else "single process"


def train_and_save(trainer: Trainer, last_checkpoint: str | None, num_samples: int) -> dict[str, float]:
    """Train (resuming from ``last_checkpoint``), save the model, metrics and trainer state as
    transformers' example scripts do."""
    logger.info(f"Training engine: {training_engine(trainer)} ({trainer.args.world_size} process(es))")
    train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
    trainer.save_model()
    metrics = {**train_result.metrics, "train_samples": num_samples}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    return metrics


DEBUG_ENV = "PREFIX_MODELS_DEBUG"


def run_script(main: Callable[[], Any]) -> None:
    """Run an example script's ``main`` as a command.

    Bad input found by our checks (:class:`InputError`) ends as one ``run_glue.py: error: ...`` line
    on stderr and exit status 2, as argparse reports a bad flag; with ``PREFIX_MODELS_DEBUG=1`` it
    keeps its traceback. Any other exception is left alone: its traceback is what a bug report needs.
    """
    try:
        main()
    except InputError as error:
        if os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no"):
            raise
        print(f"{os.path.basename(sys.argv[0])}: error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    shutdown_distributed()


def shutdown_distributed() -> None:
    """Tear the process group down before the interpreter exits: left to exit, a gloo worker thread
    can abort the process (SIGABRT) after all work was saved, and the launcher reports a failure."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that was written to the end.

    Trainer writes a checkpoint's weights, optimizer, scheduler and RNG states first and
    ``trainer_state.json`` last, so a checkpoint whose state file is missing or unreadable was
    cut short (a crash, a kill) and is skipped rather than resumed from.
    """
    candidates = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(r"checkpoint-(\d+)", name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            candidates.append((int(match.group(1)), os.path.join(output_dir, name)))
    for _, path in sorted(candidates, reverse=True):
        try:
            with open(os.path.join(path, "trainer_state.json")) as handle:
                json.load(handle)
            has_weights = any(n.endswith((".safetensors", ".bin", ".safetensors.index.json")) for n in os.listdir(path))
        except (OSError, ValueError):
            has_weights = False
        if has_weights:
            return path
        logger.warning(f"Skipping {path}: it was not written to the end (no readable trainer_state.json or weights)")
    return None


def _read_state(folder: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(folder, "trainer_state.json")) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def finished_run(training_args: TrainingArguments, output_dir: str) -> str | None:
    """Where ``output_dir`` holds a run that already trained as long as this command asks, a
    description of it; else None.

    The run's state is the ``trainer_state.json`` written when training ended or, for a run stopped
    between its last checkpoint and the final save, that checkpoint's. Resuming such a run would
    train past its end (transformers 5.24 resumes a run stopped at ``max_steps`` mid-epoch with
    one more step) and rewrite the saved model and results.
    """
    state, where = _read_state(output_dir), output_dir
    if state is None:
        where = last_complete_checkpoint(output_dir)
        state = _read_state(where) if where else None
    if not state or not state.get("max_steps") or state.get("global_step", 0) < state["max_steps"]:
        return None
    step = state["global_step"]
    if training_args.max_steps > 0:
        asks_for_more = training_args.max_steps > step
    else:
        asks_for_more = training_args.num_train_epochs > state.get("num_train_epochs", 0)
    if asks_for_more:
        return None
    model_at = output_dir if where == output_dir else f"{where} (its last checkpoint)"
    total = state["max_steps"]
    return f"{output_dir} holds a finished run (trained {step} of {total} steps; the model is in {model_at})"


def resolve_checkpoint(training_args: TrainingArguments, overwrite_output_dir: bool) -> str | None:
    """The checkpoint to resume from, refusing to train over a finished model in ``output_dir``.

    A finished run is never changed without ``--overwrite_output_dir``: running the same command
    again is refused before anything loads or is written. A run asked to train longer (a higher
    ``--max_steps`` / ``--num_train_epochs``) resumes from its newest complete checkpoint, as in
    transformers' example scripts.
    """
    if training_args.resume_from_checkpoint is not None:
        return training_args.resume_from_checkpoint
    output_dir = training_args.output_dir
    if not training_args.do_train or overwrite_output_dir or not os.path.isdir(output_dir):
        return None
    finished = finished_run(training_args, output_dir)
    if finished is not None:
        raise InputError(
            f"--do_train: {finished}; nothing was changed. To evaluate or predict with it, run without --do_train "
            "and with --model_name_or_path pointing at the model; to train it longer, raise --max_steps or "
            "--num_train_epochs; to train again from the start, pass --overwrite_output_dir or choose another "
            "--output_dir"
        )
    last = last_complete_checkpoint(output_dir)
    if last is not None:
        logger.info(f"Checkpoint detected, resuming training at {last}. Pass --overwrite_output_dir to start over.")
        return last
    if any(name.endswith(".safetensors") for name in os.listdir(output_dir)):
        raise InputError(
            f"output directory {output_dir} already holds a trained model; pass --overwrite_output_dir to train "
            "over it, or choose another --output_dir"
        )
    return None
