"""The scripts' flags: model and method (``ModelArguments``), data and output (``DataArguments``), and
the parser that reads them as transformers' example scripts do."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers import (
    HfArgumentParser,
)

from ..defaults import POOLED_TASKS, classifier_pooling_help, learning_rate_help, prefix_init_help
from ..errors import InputError

# The flag naming each split's data file, and the flag that asks for the split.
SPLIT_FLAGS = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}
DO_FLAGS = {"train": "--do_train", "validation": "--do_eval", "test": "--do_predict"}


def check_splits(splits: dict[str, Any], needed: dict[str, bool]) -> None:
    """Refuse a ``--do_*`` flag whose split was not found (``needed``: split -> asked for)."""
    for split, wanted in needed.items():
        if wanted and split not in splits:
            raise InputError(
                f"{DO_FLAGS[split]} needs {SPLIT_FLAGS[split]} (or a {split} split in --data_dir / the dataset)"
            )


_PREFIX_ONLY_FLAGS = (
    "pre_seq_len",
    "prefix_projection",
    "prefix_hidden_size",
    "merge_prefix_projection",
    "prompt_init",
    "prompt_init_text",
    "prefix_init",
    "prefix_init_text",
    "classifier_pooling",
    "prefix_layers",
    "prefix_init_from",
)
# The language-model tasks (their script, what it calls their models): the output layer is pretrained, so
# there is no head of their own for --head_only to train.
_LM_TASKS = {
    "causal_lm": ("run_clm.py", "causal language models"),
    "seq2seq_lm": ("run_seq2seq.py", "encoder-decoders"),
}


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
        metadata={
            "help": "Load the backbone in this dtype (auto: the checkpoint's). A prefix, prompt and head "
            "still train in float32. For mixed-precision compute add --bf16 / --fp16."
        },
    )
    ignore_mismatched_base: bool = field(
        default=False,
        metadata={
            "help": "When --model_name_or_path is a saved prefix or prompt: load it even if its base model's "
            "weights are not those it was trained on (its recorded base_model_fingerprint differs)."
        },
    )
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
    merge_prefix_projection: bool = field(
        default=False,
        metadata={
            "help": "With --prefix_projection: after training, fold the MLP into the plain table it computes "
            "(same outputs) before the final save, so the saved prefix is the table alone and inference skips "
            "the MLP. The checkpoints written during training keep the MLP, so training resumes from them."
        },
    )
    prefix_layers: str | None = field(
        default=None,
        metadata={
            "help": "With --prefix: which layers carry a prefix. 'all'; 'topN' (e.g. top6: the top 6 layers of "
            "each stack); or layer indices, comma-separated (0 is the lowest; negative ones count "
            "from the top, -1 being the last). Layers without one run the stock attention, and "
            "nothing below the lowest is kept for the backward pass. Default: all."
        },
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
    prefix_init: Literal["random", "text"] | None = field(
        default=None,
        metadata={"help": prefix_init_help()},
    )
    prefix_init_text: str | None = field(
        default=None, metadata={"help": "The text whose keys and values start the prefix (implies --prefix_init text)."}
    )
    classifier_pooling: Literal["pooler", "cls", "mean"] | None = field(
        default=None,
        metadata={"help": classifier_pooling_help()},
    )
    prefix_init_from: str | None = field(
        default=None,
        metadata={
            "help": "Transfer: start the prefix (or prompt) from one saved before (a prefixes/<task> folder of "
            "run_multitask.py, a save_prefix folder, or a run or checkpoint folder), with a fresh head for this "
            "task's labels. It must be of the same base model, method, --pre_seq_len and --prefix_layers; a "
            "--prefix_projection one starts a plain table from the table its MLP computes."
        },
    )

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
            if self.prefix_layers is not None:
                raise InputError(
                    "--prefix_layers applies to --prefix (keys and values at chosen layers); a --prompt "
                    "sits before the input layer only"
                )
            if self.prefix_projection or self.prefix_hidden_size is not None or self.merge_prefix_projection:
                raise InputError(
                    "--prefix_projection / --prefix_hidden_size / --merge_prefix_projection apply to --prefix, "
                    "not --prompt"
                )
            if self.prefix_init is not None or self.prefix_init_text is not None:
                raise InputError("--prefix_init / --prefix_init_text apply to --prefix; --prompt has --prompt_init")
        elif self.prompt_init is not None or self.prompt_init_text is not None:
            raise InputError("--prompt_init / --prompt_init_text apply to --prompt, not --prefix")
        if self.prefix_init_from is not None:
            given = [
                f"--{name}"
                for name in ("prefix_init", "prefix_init_text", "prompt_init", "prompt_init_text")
                if getattr(self, name) is not None
            ]
            if given:
                raise InputError(
                    f"--prefix_init_from sets where the {self.method} starts; {', '.join(given)} would set it too: "
                    "pass one of them"
                )
        if self.prompt_init == "text" and not self.prompt_init_text:
            raise InputError("--prompt_init text needs --prompt_init_text")
        if self.prefix_init_text is not None and self.prefix_init is None:
            self.prefix_init = "text"  # a text to start from says how to start
        if self.prefix_init_text is not None and self.prefix_init != "text":
            raise InputError("--prefix_init_text applies with --prefix_init text")
        if self.prefix_init == "text" and self.prefix_projection:
            raise InputError(
                "--prefix_init text sets the prefix table itself; it cannot start a --prefix_projection MLP"
            )
        if self.pre_seq_len is not None and self.pre_seq_len <= 0:
            raise InputError(f"--pre_seq_len must be a positive integer, got {self.pre_seq_len}")
        if self.merge_prefix_projection and not self.prefix_projection:
            raise InputError("--merge_prefix_projection applies with --prefix_projection (a plain table has no MLP)")
        if self.prefix_hidden_size is not None and self.prefix_hidden_size <= 0:
            raise InputError(f"--prefix_hidden_size must be a positive integer, got {self.prefix_hidden_size}")
        if self.hidden_dropout_prob is not None and not 0.0 <= self.hidden_dropout_prob < 1.0:
            raise InputError(f"--hidden_dropout_prob must be in [0, 1), got {self.hidden_dropout_prob}")
        self.prefix_layer_indices = parse_prefix_layers(self.prefix_layers)

    def check_task(self, task: str) -> None:
        """Reject the flags that mean nothing for ``task`` (a key of ``_AUTO_CLASSES``)."""
        if self.head_only and task in _LM_TASKS:
            script, models = _LM_TASKS[task]
            raise InputError(
                f"{script} trains a prefix (--prefix), a soft prompt (--prompt) or the whole model (no method "
                f"flag); --head_only does not apply to {models}"
            )
        if self.classifier_pooling is not None and task not in POOLED_TASKS:
            kind = task.replace("_", " ")
            raise InputError(
                "--classifier_pooling applies to sequence classification and multiple choice, where "
                f"one vector stands for the input; a {kind} model reads every token"
            )

    @property
    def method(self) -> str | None:
        """``"prefix"``, ``"prompt"`` or ``None`` (a baseline: full fine-tuning or head-only)."""
        return "prefix" if self.prefix else "prompt" if self.prompt else None

    @property
    def description(self) -> str:
        return self.method or ("head-only (frozen backbone)" if self.head_only else "full fine-tuning")

    def hub_kwargs(self) -> dict[str, Any]:
        return {"cache_dir": self.cache_dir, "revision": self.model_revision, "token": self.token}

    def dataset_kwargs(self) -> dict[str, Any]:
        """``load_dataset`` keywords: the cache and the token (``--model_revision`` is the model's, not the data's)."""
        return {"cache_dir": self.cache_dir, "token": self.token}

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
                "prefix_init": self.prefix_init,
                "prefix_init_text": self.prefix_init_text,
                "classifier_pooling": self.classifier_pooling,
                "prefix_layers": self.prefix_layer_indices,
            }
            kwargs.update({key: value for key, value in values.items() if value is not None})
        return kwargs


def parse_prefix_layers(value: str | None) -> list[int] | None:
    """``--prefix_layers`` as the config field takes it: None (every layer) for unset or ``all``, ``topN`` as
    ``[-N, ..., -1]``, or the comma-separated indices. Their range is checked against the model's depth
    (``validate_prefix_config``) when the config is known."""
    if value is None or value.strip().lower() == "all":
        return None
    text = value.strip().lower().replace(" ", "")
    allowed = "'all', 'topN' (N a positive number of layers) or comma-separated layer indices such as 3,4,5 or -2,-1"
    if text.startswith("top"):
        count = text[3:].lstrip("_-:")
        if not count.isdigit() or int(count) == 0:
            raise InputError(f"--prefix_layers {value!r}: takes {allowed}")
        return list(range(-int(count), 0))
    try:
        layers = [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"--prefix_layers {value!r}: takes {allowed}") from None
    return layers


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
        sources = [
            name
            for name, used in (
                ("--data_dir", self.data_dir),
                ("--train_file/--validation_file/--test_file", self.files),
                ("--dataset_name", self.dataset_name),
            )
            if used
        ]
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


_SAYS_DEFAULT = re.compile(r"\bDefaults?\b|\(default[: ]")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the flag help, the script's docstring as written. A help that says its default itself
    (a default that depends on the method or the checkpoint) does not also get the field's placeholder."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and _SAYS_DEFAULT.search(action.help):
            return action.help
        return super()._get_help_string(action)


# The TrainingArguments fields whose default the method picks (prefix_models.defaults): their help says so
# instead of the Trainer's value, which the run does not use.
_METHOD_DEFAULT_HELP = {"learning_rate": learning_rate_help}


def parse_arguments(dataclass_types: tuple, argv: list[str] | None = None, description: str | None = None) -> tuple:
    """Parse the command line into the dataclasses, as transformers' example scripts do: a single
    ``.json`` argument is read as the whole configuration. ``description`` heads ``--help``."""
    parser = HfArgumentParser(dataclass_types, description=description, formatter_class=_HelpFormatter)
    for action in parser._actions:
        if action.dest in _METHOD_DEFAULT_HELP:
            action.help = _METHOD_DEFAULT_HELP[action.dest](action.default)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        path = os.path.abspath(argv[0])
        if not os.path.isfile(path):
            raise InputError(f"{argv[0]}: no such file (a single .json argument is read as the whole configuration)")
        parsed = parser.parse_json_file(json_file=path)
        with open(path, encoding="utf-8") as handle:
            given = frozenset(json.load(handle))
    else:
        *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
        if remaining:  # words no flag took: argparse's message, in one line, not HfArgumentParser's ValueError
            raise InputError(
                f"unrecognized arguments: {' '.join(remaining)} (every value follows its --flag; see --help; quote a "
                "value that holds spaces)"
            )
        given = frozenset(arg[2:].split("=", 1)[0].replace("-", "_") for arg in argv if arg.startswith("--"))
    for arguments in parsed:
        # Which fields the user set (rather than left at their defaults): method-aware defaults fill only the others.
        arguments._given = given
    return parsed


def was_given(arguments: Any, name: str) -> bool:
    """Whether the user set ``name`` on the command line (or in the JSON configuration)."""
    return name in getattr(arguments, "_given", frozenset())
