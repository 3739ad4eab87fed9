"""How a script's run ends: the model card (``README.md``) in its output folder, and ``--push_to_hub``.

The card says what the folder holds and how it was made — base model, method, prefix length, trainable
and total parameters, task, data, final metrics and the command — under the Hub's metadata block
(``base_model``, ``library_name: prefix-models``, tags, ``datasets``), so that the Hub lists the prefix
under its base model. ``--push_to_hub`` uploads the folder's own files (:func:`upload_files`): the prefix
and head, config, tokenizer, card and results, never the backbone, checkpoints or pickles.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import HfApi, ModelCardData
from transformers.models.auto import modeling_auto

from ..checkpoints.remote_files import REMOTE_CODE_FILE
from ..report import BOOKKEEPING_SUFFIXES, report_hint
from .arguments import DataArguments

if TYPE_CHECKING:  # the Trainer and the model classes load with the model, not for a script's --help
    from transformers import PreTrainedModel, Trainer

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
# The Hub's task names, by the stock Auto class that builds the model (ours are registered with them).
PIPELINE_TAGS = {
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING": "text-classification",
    "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING": "token-classification",
    "MODEL_FOR_QUESTION_ANSWERING_MAPPING": "question-answering",
    "MODEL_FOR_MULTIPLE_CHOICE_MAPPING": "multiple-choice",
    "MODEL_FOR_CAUSAL_LM_MAPPING": "text-generation",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING": "text2text-generation",
}
METHOD_TAGS = {"prefix": ["prefix-tuning", "p-tuning-v2"], "prompt": ["prompt-tuning"]}
# Never uploaded: Trainer's pickled arguments, its checkpoints and logs, and anything hidden.
NOT_UPLOADED = ("training_args.bin",)


def method_of(model: PreTrainedModel) -> str | None:
    """``"prefix"`` / ``"prompt"`` for a prefix-models model, ``None`` for a stock one."""
    return getattr(model.config, "prefix_method", None) if hasattr(model.config, "pre_seq_len") else None


def pipeline_tag_of(model: PreTrainedModel) -> str | None:
    """The Hub's task for the model: the one whose stock Auto class builds this class from its config."""
    for mapping, tag in PIPELINE_TAGS.items():
        try:
            if getattr(modeling_auto, mapping)[type(model.config)] is type(model):
                return tag
        except KeyError:
            continue
    return None


def base_model_of(model: PreTrainedModel) -> str:
    """The checkpoint the run started from: the base a prefix points at, or the stock model's own source."""
    return getattr(model.config, "base_model_name_or_path", None) or model.config._name_or_path or "unknown"


def shown_path(path: str | os.PathLike) -> str:
    """How a card names a file or folder: an absolute path (a machine's) as its path below the working
    directory, or else its name; a relative path or a hub id as given."""
    if not os.path.isabs(path):
        return os.fspath(path)
    resolved = Path(path).resolve()
    return os.path.relpath(resolved) if resolved.is_relative_to(Path.cwd()) else resolved.name


def is_local(name_or_path: str) -> bool:
    """Whether a model is named by a folder (one here, or an absolute path that was one) rather than a hub id."""
    return os.path.isdir(name_or_path) or os.path.isabs(name_or_path)


def model_name(name_or_path: str) -> str:
    """A model as a card names it: its hub id, or the name of its local folder."""
    return Path(name_or_path).resolve().name if is_local(name_or_path) else name_or_path


def _shown_argument(argument: str) -> str:
    flag, equals, value = argument.partition("=")
    if equals and flag.startswith("--"):
        return f"{flag}={shown_path(value)}"
    return shown_path(argument)


def script_command(script: str, argv: Sequence[str] | None) -> str:
    """The command line that made the run (``argv`` when ``main`` was called with one, else ``sys.argv``),
    its absolute paths shown by :func:`shown_path`: a card holds no machine path."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", shown_path(Path(script).resolve()), *map(_shown_argument, arguments)])


def model_card(
    model: PreTrainedModel,
    *,
    task: str,
    command: str,
    metrics: Mapping[str, Any],
    data_files: Mapping[str, str] | None = None,
    dataset: str | None = None,
) -> str:
    """The card's text: the Hub metadata block, then what the folder holds and how it was made."""
    method = method_of(model)
    base = base_model_of(model)
    shown_base = model_name(base)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    name = type(model).__name__
    pipeline_tag = pipeline_tag_of(model)
    local_base = is_local(base)
    metadata = ModelCardData(
        # The Hub wants a hub id here; a local folder is named in the text instead.
        base_model=None if local_base else base,
        library_name="prefix-models" if method else "transformers",
        tags=["prefix-models", *METHOD_TAGS.get(method, [])] if method else None,
        datasets=[dataset] if dataset else None,
        pipeline_tag=pipeline_tag,
    )
    what = {"prefix": "A P-tuning v2 prefix (deep prefix tuning)", "prompt": "A soft prompt (prompt tuning)"}
    lines = [
        "---",
        metadata.to_yaml(),
        "---",
        "",
        f"# {Path(shown_base).name} with {method} tuning: {task}" if method else f"# {Path(shown_base).name}: {task}",
        "",
    ]
    if method:
        config = model.config
        layers = config.prefix_layers if getattr(config, "prefix_layers", None) is not None else "all"
        lines += [
            f"{what[method]} and a task head for `{shown_base}`, trained with "
            "[prefix-models](https://pypi.org/project/prefix-models/). The folder holds only what trained; "
            "the frozen backbone is loaded from the base model.",
            "",
            "| | |",
            "|---|---|",
            f"| base model | `{shown_base}`{' (a local folder)' if local_base else ''} |",
            f"| method | {method} tuning |",
            f"| `pre_seq_len` | {config.pre_seq_len} |",
            f"| prefixed layers | {layers} |",
        ]
        started_from = getattr(model, "prefix_init_from", None)  # set by from_pretrained(prefix_init_from=...)
        if started_from:
            lines.append(f"| {method} started from | `{shown_path(started_from)}` (transfer; the head started fresh) |")
    else:
        lines += [
            f"`{shown_base}` trained by a prefix-models script without a prefix ({task}).",
            "",
            "| | |",
            "|---|---|",
            f"| base model | `{shown_base}`{' (a local folder)' if local_base else ''} |",
            "| method | full fine-tuning or a head-only probe |",
        ]
    lines += [
        f"| class | `{name}` |",
        f"| trainable parameters | {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.3f}%) |",
        f"| task | {task} |",
    ]
    if dataset:
        lines.append(f"| dataset | `{dataset}` |")
    for split, path in (data_files or {}).items():
        lines.append(f"| {split} data | `{shown_path(path)}` |")
    shown = {
        key: value
        for key, value in metrics.items()
        if isinstance(value, int | float)
        and not key.endswith((*BOOKKEEPING_SUFFIXES, "_flos"))
        and key not in ("epoch", "best_step")
    }
    if shown:
        lines += ["", "## Results", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {key} | {_number(value)} |" for key, value in sorted(shown.items())]
    lines += ["", "## How it was made", "", "```bash", command, "```", ""]
    if method:
        auto = model.stock_auto_class.__name__
        lines += [
            "## Loading it",
            "",
            "```python",
            "import prefix_models  # registers the prefix classes with transformers' Auto classes",
            f"from transformers import {auto}",
            "",
            f'model = {auto}.from_pretrained("THIS_FOLDER_OR_REPO")',
            "```",
            "",
            f"Without `import prefix_models`, pass `trust_remote_code=True`: the folder's `{REMOTE_CODE_FILE}` "
            "then imports the installed `prefix_models` (`pip install prefix-models`); it holds no model code.",
            "",
        ]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def upload_files(output_dir: str | os.PathLike) -> list[str]:
    """The files ``--push_to_hub`` uploads: the top of ``output_dir``, without checkpoints, logs, hidden
    files and pickles."""
    folder = Path(output_dir)
    return sorted(
        path.name
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith((".", "_")) and path.name not in NOT_UPLOADED
    )


def push_to_hub(trainer: Trainer, output_dir: str | os.PathLike) -> str:
    """Upload :func:`upload_files` to the run's hub repository (``--hub_model_id``, else the folder's name)."""
    args = trainer.args
    repo_id = getattr(trainer, "hub_model_id", None) or args.hub_model_id or Path(output_dir).name
    api = HfApi(token=args.hub_token)
    repo = api.create_repo(repo_id, private=args.hub_private_repo, exist_ok=True)
    files = upload_files(output_dir)
    api.upload_folder(
        repo_id=repo.repo_id,
        folder_path=os.fspath(output_dir),
        allow_patterns=files,
        commit_message="End of training",
        revision=args.hub_revision,
    )
    logger.info(f"Pushed {len(files)} files to {repo.repo_id}: {', '.join(files)}")
    return repo.repo_id


def data_sources(data_args: DataArguments) -> tuple[dict[str, str], str | None]:
    """``({split or "data_dir": path}, hub dataset id or None)``: where a run's data came from."""
    files = dict(getattr(data_args, "files", {}))
    if data_args.data_dir:
        files["data_dir"] = data_args.data_dir
    dataset = data_args.dataset_name
    if dataset and data_args.dataset_config_name:
        dataset = f"{dataset} ({data_args.dataset_config_name})"
    return files, None if files else dataset


def finish_run(
    trainer: Trainer,
    results: Mapping[str, Any],
    data_args: DataArguments,
    *,
    script: str,
    argv: Sequence[str] | None,
    task: str,
) -> None:
    """The end of every script: write the model card of a trained run, push it with ``--push_to_hub``, and
    say how to plot it."""
    args = trainer.args
    if not (args.do_train and trainer.is_world_process_zero()):
        return
    data_files, dataset = data_sources(data_args)
    card = model_card(
        trainer.model,
        task=task,
        command=script_command(script, argv),
        metrics=results,
        data_files=data_files,
        dataset=dataset,
    )
    path = Path(args.output_dir, CARD_FILE)
    path.write_text(card)
    logger.info(f"Model card written to {path}")
    if args.push_to_hub:
        push_to_hub(trainer, args.output_dir)
    if any("loss" in entry or any(key.startswith("eval_") for key in entry) for entry in trainer.state.log_history):
        logger.info(report_hint(args.output_dir))  # only where the report has a curve to draw
