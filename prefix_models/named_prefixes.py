"""Several tasks on one frozen backbone: named prefixes, each with its own head, routed per example.

A model's own prefix (or prompt) and head are the task ``"default"``. ``load_prefix(path, name)`` adds
another task saved from the same base: its prefix encoder and head live in ``model.prefix_bank[name]``
(a :class:`TaskPrefix`, whose tensors are named as in a one-task checkpoint) and its config in
``config.prefix_tasks[name]``, so a model holding several tasks saves, reloads, trains and resumes
like any other. ``add_head(name)`` adds a task that runs the model's own prefix with a head of its own: every
such task trains that one shared prefix (P-tuning v2's multi-task pre-training) and saves, with ``save_prefix``,
as an ordinary one-task prefix. ``forward(..., prefix_names=[one per example])`` (``adapter_names`` is peft's name for
it) gives each example its task's virtual tokens and head in one batch:

* a :class:`Route` says which task each row runs; rows of shorter prefixes are left-padded with
  masked virtual tokens up to the longest in the batch, so every row computes exactly what it
  computes alone (masked virtual tokens change nothing);
* a task's parameters enter the graph only when one of its examples is in the batch, so mixed-task
  training updates each task from its own examples only;
* heads with different label counts share one ``logits`` tensor as wide as the widest head: row
  ``i`` holds its task's ``num_labels`` columns and ``-inf`` after them (softmax and argmax read
  them as they are; ``logits[i, :num_labels]`` are the task's own).

:class:`PrefixEnsemble` runs K prefixes over each input in one batch and averages their probabilities.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedConfig
from transformers.modeling_outputs import ModelOutput, SequenceClassifierOutput, TokenClassifierOutput

from .checkpoints import (
    HUB_KWARGS,
    SHAPE_FIELDS,
    base_fingerprint,
    check_base_fingerprint,
    read_task_checkpoint,
    state_problems,
    write_task_checkpoint,
)
from .configuration import prefix_rows, validate_prefix_config
from .errors import InputError
from .inputs import encoder_inputs

DEFAULT_PREFIX = "default"
# Names become module paths (prefix_bank.<name>) and checkpoint keys.
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Config entries a task keeps to itself: its own, not the holder's.
_NOT_STORED = (
    "prefix_tasks",
    "base_model_name_or_path",
    "base_model_gguf_file",
    "base_model_fingerprint",
    "architectures",
    "model_type",
    "transformers_version",
)

PrefixNames = Sequence[str] | torch.Tensor


@dataclass(eq=False)
class Route:
    """Which named prefix each example of a batch runs.

    ``index[i]`` is the position of row ``i``'s prefix in ``names``; ``mask`` (``(batch, length)``, 1 =
    attend) marks each row's own virtual tokens, left-padded to ``length``, the longest in the batch.
    """

    index: torch.Tensor
    names: tuple[str, ...]
    length: int
    mask: torch.Tensor
    # The layers the batch's prefixes sit on (encoders.prefix_rows), the same for every task in it.
    rows: dict[int, int]

    def groups(self) -> list[tuple[str, torch.Tensor]]:
        """``(name, rows)`` for every prefix the batch uses."""
        return [(self.names[t], (self.index == t).nonzero().squeeze(-1)) for t in self.index.unique().tolist()]

    def repeat(self, times: int) -> Route:
        """Each row ``times`` times in a row (multiple choice: one row per choice)."""
        index, mask = self.index.repeat_interleave(times), self.mask.repeat_interleave(times, 0)
        return Route(index, self.names, self.length, mask, self.rows)

    def combined_mask(self, prefix_attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The route's mask, and a user's ``prefix_attention_mask`` (``(batch, length)``) on top."""
        if prefix_attention_mask is None:
            return self.mask
        if tuple(prefix_attention_mask.shape) != tuple(self.mask.shape):
            raise InputError(
                "with prefix_names, prefix_attention_mask must have shape (batch, longest prefix in the batch) = "
                f"{tuple(self.mask.shape)} (shorter prefixes are left-padded); got {tuple(prefix_attention_mask.shape)}"
            )
        return self.mask * prefix_attention_mask.to(self.mask.device, self.mask.dtype)


class TaskPrefix(nn.Module):
    """One named task: its prefix (or prompt) encoder and its head, under the names a one-task
    checkpoint gives them (``prefix_encoder``, ``classifier``), and the task's config."""

    def __init__(self, config: PreTrainedConfig, modules: dict[str, nn.Module]):
        super().__init__()
        for attribute, module in modules.items():
            setattr(self, attribute, module)
        self.config = config


def routed_virtual_tokens(model: nn.Module, route: Route) -> torch.Tensor:
    """``(batch, length, width)``: each row's task's encoder output (prefix rows or soft tokens),
    left-padded with zeros to the longest; only the tasks in the batch run their encoder."""
    attribute = model.tuning.encoder_attribute
    present = route.index.unique()
    table = []
    for task in present.tolist():
        tokens = model.task_modules(route.names[task])[attribute]()
        table.append(F.pad(tokens, (0, 0, route.length - tokens.shape[0], 0)))
    slot = torch.full((len(route.names),), -1, dtype=torch.long, device=route.index.device)
    slot[present] = torch.arange(len(table), device=slot.device)
    return torch.stack(table)[slot[route.index]]


def scatter_rows(parts: list[tuple[torch.Tensor, torch.Tensor]], batch_size: int) -> torch.Tensor:
    """One tensor from per-task ``(rows, output)`` pieces, as wide (last dim) as the widest; ``-inf`` pads."""
    first = parts[0][1]
    width = max(output.shape[-1] for _, output in parts)
    merged = first.new_full((batch_size, *first.shape[1:-1], width), float("-inf"))
    for rows, output in parts:
        merged[rows, ..., : output.shape[-1]] = output
    return merged


# The functions below are the named-prefix half of every prefix model (``modeling_utils.PrefixPreTrainedModel``
# calls them by the same names): ``model`` is that model.


def task_modules(model: nn.Module, name: str) -> dict[str, nn.Module]:
    """``{"prefix_encoder": ..., "classifier": ...}`` of the task ``name``: what trains for it (a task added
    with ``add_head`` runs the model's own encoder)."""
    check_known(model, name)
    owner = model if name == DEFAULT_PREFIX else model.prefix_bank[name]
    encoder_owner = model if owner.config.shared_prefix else owner
    modules = {model.tuning.encoder_attribute: getattr(encoder_owner, model.tuning.encoder_attribute)}
    if model.head_attribute:
        modules[model.head_attribute] = getattr(owner, model.head_attribute)
    return modules


def check_known(model: nn.Module, name: Any) -> None:
    if name != DEFAULT_PREFIX and name not in model.prefix_bank:
        raise InputError(f"unknown prefix name {name!r}; this model has {model.prefix_names} (load_prefix adds more)")


def new_task(model: nn.Module, config: PreTrainedConfig) -> TaskPrefix:
    """A task's modules, freshly built for ``config``: its encoder (unless it shares the model's own) and,
    where the model has one, its head."""
    modules = {} if config.shared_prefix else {model.tuning.encoder_attribute: model.tuning.make_encoder(config)}
    if model.head_attribute:
        modules[model.head_attribute] = model.build_head(config)
    return TaskPrefix(config, modules)


def _task_config(model: nn.Module, values: dict[str, Any]) -> PreTrainedConfig:
    config = model.config_class.from_dict({**values, "prefix_tasks": None})
    config.base_model_name_or_path = model.config.base_model_name_or_path
    config.base_model_fingerprint = model.config.base_model_fingerprint
    return config


def build_prefix_bank(model: nn.Module) -> None:
    """The tasks ``config.prefix_tasks`` lists (a model saved while holding several): rebuilt empty at
    construction; ``from_pretrained`` then loads their tensors with the rest of the checkpoint."""
    for name, values in (model.config.prefix_tasks or {}).items():
        model.prefix_bank[name] = new_task(model, _task_config(model, values))


def _check_new_name(model: nn.Module, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"a prefix name is letters, digits, '_' or '-'; got {name!r}")
    if name == DEFAULT_PREFIX or name in model.prefix_bank:
        raise InputError(
            f"a prefix named {name!r} is already loaded ({model.prefix_names}); delete_prefix it first or pick "
            "another name"
        )


def add_prefix(model: nn.Module, name: str, tokenizer: Any = None, **config_fields: Any) -> None:
    """A new task ``name``, freshly initialised: the model's config with ``config_fields`` changed."""
    _check_new_name(model, name)
    config = _changed_config(model, "add_prefix", config_fields)
    validate_prefix_config(config)
    if config.prefix_method != model.prefix_method:
        raise InputError(
            f"prefix_method={config.prefix_method!r}: every task of this model runs {model.prefix_method} tuning"
        )
    task = new_task(model, config).to(model.get_input_embeddings().weight.device)
    task.apply(model._init_weights)  # as the model's own prefix and head were initialised
    if config.prefix_method == "prompt":
        model.init_prompt(tokenizer, task=task)
    else:
        model.init_prefix(tokenizer, task=task)
    _register_task(model, name, task, config)


# What shapes a prefix or prompt: a task sharing the model's own cannot change these.
_PREFIX_SHAPE = (
    "prefix_method",
    "pre_seq_len",
    "prefix_projection",
    "prefix_hidden_size",
    "prefix_init",
    "prefix_init_text",
    "prompt_init",
    "prompt_init_text",
    "prefix_kinds",
    "prefix_layers",
    "virtual_token_positions",
    "prefix_tasks",
    "shared_prefix",
)


def add_head(model: nn.Module, name: str, **config_fields: Any) -> None:
    """A new task ``name`` that runs the model's own prefix (or prompt) with a fresh head of its own."""
    _check_new_name(model, name)
    if not model.head_attribute:
        raise InputError(
            f"add_head gives a task its own head on the shared prefix; {type(model).__name__} has no task head: "
            "use add_prefix"
        )
    shaping = sorted(key for key in config_fields if key in _PREFIX_SHAPE)
    if shaping:
        raise InputError(
            f"add_head got {shaping}: a task added with add_head runs the model's own prefix as it is; use "
            "add_prefix for a task with a prefix of its own"
        )
    config = _changed_config(model, "add_head", {**config_fields, "shared_prefix": True})
    task = new_task(model, config).to(model.get_input_embeddings().weight.device)
    task.apply(model._init_weights)  # as the model's own head was initialised
    _register_task(model, name, task, config)


def _changed_config(model: nn.Module, caller: str, config_fields: dict[str, Any]) -> PreTrainedConfig:
    """A new task's config: the model's own with ``config_fields`` changed (unknown fields refused by name)."""
    unknown = sorted(key for key in config_fields if not hasattr(model.config, key))
    if unknown:
        raise InputError(f"{caller} got {unknown}, which are not fields of {type(model.config).__name__}")
    values = _stored(model.config)
    if "num_labels" in config_fields and "id2label" not in config_fields:  # labels follow the new count
        values = {key: value for key, value in values.items() if key not in ("id2label", "label2id")}
    return _task_config(model, {**values, **config_fields})


def _register_task(model: nn.Module, name: str, task: TaskPrefix, config: PreTrainedConfig) -> None:
    encoder = task_modules(model, DEFAULT_PREFIX)[model.tuning.encoder_attribute]
    task.train(model.training)  # a new module is in training mode: follow the model's (dropout)
    model.prefix_bank[name] = task.to(next(encoder.parameters()).device)
    model.config.prefix_tasks = {**(model.config.prefix_tasks or {}), name: _stored(config)}


def load_prefix(
    model: nn.Module, path: str | os.PathLike, name: str, ignore_mismatched_base: bool = False, **kwargs: Any
) -> None:
    """The one-task checkpoint in ``path`` as the task ``name``, checked before the model changes (its base
    weights too, unless ``ignore_mismatched_base``)."""
    _check_new_name(model, name)
    hub_kwargs = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
    if kwargs:
        raise InputError(
            f"load_prefix got unexpected arguments {sorted(kwargs)}; it takes ignore_mismatched_base and hub "
            f"options {list(HUB_KWARGS)}"
        )
    config, state, from_peft = read_task_checkpoint(
        model.config_class, os.fspath(path), model.base_model_prefix, hub_kwargs
    )
    _check_task_fits(model, config, os.fspath(path))
    if not from_peft:  # a peft adapter records no fingerprint
        check_base_fingerprint(
            config.base_model_fingerprint,
            model,
            os.fspath(path),
            config.base_model_name_or_path,
            model.config.base_model_name_or_path or "this model's backbone",
            ignore_mismatched_base,
        )
    task = new_task(model, config)
    expected = task.state_dict()
    problems = state_problems(state, expected)
    if problems:
        raise InputError(
            f"the checkpoint in {path} does not hold the tensors of a {type(model).__name__} task: {problems[:6]}"
        )
    task.load_state_dict(state)
    _register_task(model, name, task, config)


def _check_task_fits(model: nn.Module, config: PreTrainedConfig, path: str) -> None:
    """Refuse a task of another method, task kind, base model or shape, naming both sides."""
    if config.prefix_method != model.prefix_method:
        raise InputError(
            f"{path} holds a {config.prefix_method}-tuning task; this model runs {model.prefix_method} tuning, and "
            "one batch cannot mix the two"
        )
    if config.prefix_tasks or config.shared_prefix:
        raise InputError(
            f"{path} holds several prefixes ({[DEFAULT_PREFIX, *config.prefix_tasks]}); load it with "
            "from_pretrained, or save_prefix one of them and load that"
        )
    if config.virtual_token_positions != model.config.virtual_token_positions:
        raise InputError(
            f"{path} runs real tokens at virtual_token_positions={config.virtual_token_positions!r}, this model "
            f"at {model.config.virtual_token_positions!r}; one batch has one convention"
        )
    kind = _task_kind(type(model).__name__)
    theirs = [_task_kind(name) for name in (config.architectures or [])]
    if theirs and kind not in theirs:
        raise InputError(
            f"{path} holds a {config.architectures[0]} task; this model is a {type(model).__name__} (its heads "
            f"read {kind})"
        )
    pairs = {field: (getattr(config, field, None), getattr(model.config, field, None)) for field in SHAPE_FIELDS}
    shape = [f"{field}: {theirs} vs {ours}" for field, (theirs, ours) in pairs.items() if theirs != ours]
    if shape:
        raise InputError(f"{path} does not fit this model's backbone: {'; '.join(shape)}")


def save_prefix(model: nn.Module, name: str, save_directory: str | os.PathLike) -> None:
    """The task ``name`` alone as a prefix checkpoint (config + prefix + head; the base by reference)."""
    modules = task_modules(model, name)
    if not model.config.base_model_name_or_path:
        raise InputError(
            "save_prefix writes a prefix-only checkpoint that points at its base model, and this model has none "
            "(it was built from a config): use save_pretrained"
        )
    config = copy.deepcopy(model.prefix_config(name))
    config.prefix_tasks = None
    config.shared_prefix = False  # the folder holds the prefix itself: a one-task checkpoint like any other
    config.base_model_name_or_path = model.config.base_model_name_or_path
    config.base_model_gguf_file = getattr(model.config, "base_model_gguf_file", None)
    config.base_model_fingerprint = model.config.base_model_fingerprint or base_fingerprint(model)
    config.architectures = [type(model).__name__]
    state = {
        f"{attribute}.{key}": tensor.detach().contiguous().clone()
        for attribute, module in modules.items()
        for key, tensor in module.state_dict().items()
    }
    write_task_checkpoint(model, config, state, save_directory)


def delete_prefix(model: nn.Module, name: str) -> None:
    check_known(model, name)
    if name == DEFAULT_PREFIX:
        raise InputError("the model's own prefix ('default') cannot be deleted")
    del model.prefix_bank[name]
    tasks = {key: value for key, value in (model.config.prefix_tasks or {}).items() if key != name}
    model.config.prefix_tasks = tasks or None


def prefix_index(model: nn.Module, prefix_names: PrefixNames) -> torch.Tensor:
    """Names -> their positions in ``model.prefix_names`` (a 1-D integer tensor is taken as such positions)."""
    known = model.prefix_names
    if isinstance(prefix_names, torch.Tensor):
        if prefix_names.dim() != 1 or prefix_names.is_floating_point() or prefix_names.dtype == torch.bool:
            raise InputError(
                "prefix_names as a tensor must be 1-D integer positions in model.prefix_names; got "
                f"{prefix_names.dtype} of shape {tuple(prefix_names.shape)}"
            )
        if len(prefix_names) and (prefix_names.min() < 0 or prefix_names.max() >= len(known)):
            raise InputError(
                f"prefix_names positions must lie in [0, {len(known)}) for {known}; got {prefix_names.tolist()}"
            )
        return prefix_names.long()
    if isinstance(prefix_names, str) or not isinstance(prefix_names, Sequence):
        raise InputError(f"prefix_names is a list with one prefix name per example; got {prefix_names!r}")
    unknown = sorted({str(name) for name in prefix_names if name not in known})
    if unknown:
        raise InputError(f"unknown prefix names {unknown}; this model has {known} (load_prefix adds more)")
    return torch.tensor([known.index(name) for name in prefix_names], dtype=torch.long)


def route_prefixes(
    model: nn.Module, prefix_names: PrefixNames | Route | None, batch_size: int, device: torch.device | None = None
) -> Route | None:
    """The :class:`Route` of a batch (None: every row runs the model's own prefix, as without names)."""
    if prefix_names is None or isinstance(prefix_names, Route):
        return prefix_names
    index = prefix_index(model, prefix_names)
    if len(index) != batch_size:
        raise InputError(
            f"prefix_names has {len(index)} entries, but the batch has {batch_size} examples: give one name per example"
        )
    names = tuple(model.prefix_names)
    lengths = torch.tensor([model.prefix_config(name).pre_seq_len for name in names])[index]
    length = int(lengths.max())
    mask = (torch.arange(length) >= length - lengths.unsqueeze(1)).long()
    rows = _shared_prefix_rows(model, [names[t] for t in index.unique().tolist()])
    if device is not None:
        index, mask = index.to(device), mask.to(device)
    return Route(index, names, length, mask, rows)


def _shared_prefix_rows(model: nn.Module, present: list[str]) -> dict[int, int]:
    """The layers every task of a batch carries its prefix on; tasks on different layers (``prefix_layers``)
    cannot share a batch, since each layer either adds virtual tokens for every row or runs stock."""
    by_task = {name: prefix_rows(model.prefix_config(name)) for name in present}
    first = next(iter(by_task.values()))
    if any(rows != first for rows in by_task.values()):
        layers = ", ".join(f"{name}: prefix_layers={model.prefix_config(name).prefix_layers}" for name in present)
        raise InputError(
            f"prefix_names puts tasks whose prefixes sit on different layers in one batch ({layers}); run them in "
            "separate batches"
        )
    return first


def take_prefix_names(prefix_names: PrefixNames | None, kwargs: dict[str, Any]) -> PrefixNames | None:
    """``prefix_names``, or peft's name for it, ``adapter_names``, popped from a forward's ``kwargs``."""
    adapter_names = kwargs.pop("adapter_names", None)
    if adapter_names is None:
        return prefix_names
    if prefix_names is not None:
        raise InputError("pass prefix_names or adapter_names (peft's name for it), not both")
    return adapter_names


def names_as_positions(model: nn.Module, kwargs: dict[str, Any]) -> None:
    """``generate(prefix_names=[...])``: names become a tensor of positions, which generate() hands to
    every step and repeats with the rows it expands (beams, several sequences per input)."""
    names = take_prefix_names(kwargs.pop("prefix_names", None), kwargs)
    if names is not None:
        kwargs["prefix_names"] = model.prefix_index(names)


def _stored(config: PreTrainedConfig) -> dict[str, Any]:
    return {key: value for key, value in config.to_diff_dict().items() if key not in _NOT_STORED}


def _task_kind(class_name: str) -> str:
    """``BertPrefixForSequenceClassification`` -> ``ForSequenceClassification`` (what its head does)."""
    match = re.search(r"(?:Prefix|Prompt)(\w*)$", class_name)
    return match.group(1) if match else class_name


class PrefixEnsemble(nn.Module):
    """Prompt ensembling: every input runs through each of the ``members`` (prefix names) in one batch (the input
    repeated, one prefix per copy) and the members' probabilities are averaged.

    ``forward`` takes the model's inputs and returns the model's output type whose ``logits`` are the
    log of the averaged probabilities (softmax; sigmoid for multi-label tasks; for regression, the
    mean prediction), so ``argmax``, ``softmax`` and ``Trainer.evaluate`` read them as usual; ``loss``
    is the negative log-likelihood of ``labels`` under that average (MSE for regression).
    """

    # The loss is a mean over this batch: Trainer must not pass (or scale by) a global item count.
    accepts_loss_kwargs = False

    def __init__(self, model: nn.Module, members: Sequence[str]):
        super().__init__()
        if getattr(model, "head_attribute", None) != "classifier" or not hasattr(model, "reads_pooled_output"):
            raise InputError(
                "PrefixEnsemble averages classifier probabilities: it needs a sequence- or "
                f"token-classification prefix model, got {type(model).__name__}"
            )
        if isinstance(members, str) or not members:
            raise InputError(f"an ensemble needs a list of at least one prefix name; got {members!r}")
        model.prefix_index(list(members))  # unknown names fail here
        configs = [model.prefix_config(name) for name in members]
        kinds = {(config.num_labels, _problem_type(config)) for config in configs}
        if len(kinds) != 1:
            raise InputError(
                "the ensemble's prefixes must share their labels and problem type; got "
                + ", ".join(
                    f"{n}: {c.num_labels} labels, {_problem_type(c)}" for n, c in zip(members, configs, strict=True)
                )
            )
        self.model = model
        self.members = list(members)
        self.num_labels, self.problem_type = kinds.pop()
        self.config = model.config

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> ModelOutput:
        # Named parameters, not just **kwargs: Trainer keeps the dataset columns the signature names.
        inputs = {**encoder_inputs(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds), **kwargs}
        inputs = {key: value for key, value in inputs.items() if value is not None}
        members = len(self.members)
        tensors = {key: value for key, value in inputs.items() if isinstance(value, torch.Tensor)}
        if not tensors:
            raise InputError("PrefixEnsemble needs the model's input tensors (input_ids, attention_mask, ...)")
        batch_size = next(iter(tensors.values())).shape[0]
        repeated = {**inputs, **{key: value.repeat_interleave(members, 0) for key, value in tensors.items()}}
        index = self.model.prefix_index(self.members).repeat(batch_size)
        logits = self.model(**repeated, prefix_names=index.to(next(iter(tensors.values())).device)).logits
        logits = logits[..., : self.num_labels]
        logits = logits.view(batch_size, members, *logits.shape[1:])
        if self.problem_type == "regression":
            combined = logits.mean(1)
        elif self.problem_type == "multi_label_classification":
            combined = torch.sigmoid(logits).mean(1).log()
        else:
            combined = torch.softmax(logits, dim=-1).mean(1).log()
        loss = None
        if labels is not None:
            if self.problem_type == "regression":
                loss = F.mse_loss(combined.squeeze(-1), labels.to(combined.dtype).view(-1))
            elif self.problem_type == "multi_label_classification":
                probabilities = combined.exp().clamp(1e-7, 1 - 1e-7)
                loss = F.binary_cross_entropy(probabilities, labels.to(combined.dtype))
            else:
                loss = F.nll_loss(combined.reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=-100)
        output_class = SequenceClassifierOutput if self.model.reads_pooled_output else TokenClassifierOutput
        return output_class(loss=loss, logits=combined)


def _problem_type(config: PreTrainedConfig) -> str:
    if config.problem_type:
        return config.problem_type
    return "regression" if config.num_labels == 1 else "single_label_classification"
