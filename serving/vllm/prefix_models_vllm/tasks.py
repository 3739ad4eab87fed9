"""The tasks an engine serves: each task's prefix folder read, checked against the engine's model, and shaped
into per-layer keys and values.

Every refusal is one line naming the task and the reason (:class:`~.folders.PrefixFolderError`, a
``ValueError``), raised when the engine starts: a prefix for another base (its fingerprint) or another shape, an
encoder-only or encoder-decoder prefix, a prefix on part of the layers, a sliding window shorter than the
engine's context, and learned absolute positions with ``virtual_token_positions="none"``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .fingerprint import fingerprint_difference, has_safetensors
from .folders import PrefixFolder, PrefixFolderError, read_prefix_folder

logger = logging.getLogger(__name__)

# Config fields that say a family turns its keys with rotary embeddings (which depend on relative position only).
ROTARY_FIELDS = ("rope_parameters", "rope_theta", "rope_scaling", "rotary_dim", "rotary_pct", "rotary_emb_base")


@dataclass(frozen=True)
class EngineModel:
    """What the checks need to know of the engine's model (read from vLLM's config by :meth:`from_vllm_config`)."""

    model: str
    model_type: str
    num_layers: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    max_model_len: int
    sliding_window: int | None
    uses_rotary: bool
    # vLLM's class for it: its own (``LlamaForCausalLM``) or its Transformers backend (``TransformersForCausalLM``).
    architecture: str = ""

    @classmethod
    def from_vllm_config(cls, vllm_config: Any) -> EngineModel:
        return cls.from_model_config(vllm_config.model_config)

    @classmethod
    def from_model_config(cls, model_config: Any) -> EngineModel:
        """From vLLM's ``ModelConfig`` (what ``EngineArgs.create_model_config()`` builds before an engine starts)."""
        hf_config = model_config.hf_text_config
        return cls(
            model=str(model_config.model),
            model_type=str(getattr(hf_config, "model_type", "")),
            num_layers=int(model_config.get_total_num_hidden_layers()),
            num_kv_heads=int(model_config.get_total_num_kv_heads()),
            head_dim=int(model_config.get_head_size()),
            hidden_size=int(model_config.get_inputs_embeds_size()),
            max_model_len=int(model_config.max_model_len),
            sliding_window=sliding_window(hf_config),
            uses_rotary=any(getattr(hf_config, name, None) is not None for name in ROTARY_FIELDS),
            architecture=vllm_class_name(model_config),
        )


def vllm_class_name(model_config: Any) -> str:
    """The class vLLM runs the model with: its own (``LlamaForCausalLM``) or its Transformers backend's
    (``TransformersForCausalLM``, for architectures vLLM has no implementation of)."""
    architecture = str(getattr(model_config, "architecture", "") or "")
    if getattr(model_config, "model_impl", "auto") == "transformers":
        return "TransformersForCausalLM"
    from vllm.model_executor.models.registry import ModelRegistry

    return str(getattr(ModelRegistry.models.get(architecture), "class_name", architecture))


def sliding_window(hf_config: Any) -> int | None:
    """The window of the config's sliding-window layers, or None where every layer attends to the whole context."""
    window = getattr(hf_config, "sliding_window", None)
    if not window or getattr(hf_config, "use_sliding_window", True) is False:
        return None
    layer_types = getattr(hf_config, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        return None
    return int(window)


@dataclass
class ServedPrefix:
    """One task ready to be written into the KV cache: ``keys`` and ``values`` are ``(layers, P, kv_heads,
    head_dim)`` float32, keys as trained (the worker turns them for the engine's positions). A prompt-tuning task
    holds its ``soft_tokens`` ``(P, hidden)`` instead, until the worker runs the base over them (soft_tokens.py)."""

    task: str
    path: str
    virtual_token_positions: str
    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None
    soft_tokens: torch.Tensor | None = None

    @property
    def pre_seq_len(self) -> int:
        return int(self.soft_tokens.shape[0] if self.soft_tokens is not None else self.keys.shape[1])


def _covers_every_layer(prefix_layers: Any, num_layers: int) -> bool:
    if prefix_layers is None:
        return True
    return {int(layer) % num_layers for layer in prefix_layers} == set(range(num_layers))


def check_against_engine(folder: PrefixFolder, engine: EngineModel, ignore_mismatched_base: bool = False) -> None:
    """Refuse a folder the engine's model cannot serve exactly (one line each)."""
    task, path, config = folder.task, folder.path, folder.config
    if folder.base_model_type != engine.model_type:
        raise PrefixFolderError(
            f"task {task!r}: {path} is a prefix for a {folder.base_model_type!r} model, and the engine serves a "
            f"{engine.model_type!r} model ({engine.model})"
        )
    if folder.method == "prefix" and not _covers_every_layer(config.get("prefix_layers"), engine.num_layers):
        raise PrefixFolderError(
            f"task {task!r}: {path} has a prefix on layers {config['prefix_layers']} of {engine.num_layers}; a "
            "placeholder slot in a layer without a prefix would still take attention, so only prefixes on every "
            "layer (prefix_layers=None) are served"
        )
    if folder.method == "prompt":
        if folder.table.shape[1] != engine.hidden_size:
            raise PrefixFolderError(
                f"task {task!r}: {path} holds soft tokens of width {folder.table.shape[1]}; the engine's model embeds "
                f"tokens {engine.hidden_size} wide: a prompt for a model of another shape"
            )
    elif folder.table.shape[1] != (width := 2 * engine.num_layers * engine.num_kv_heads * engine.head_dim):
        raise PrefixFolderError(
            f"task {task!r}: {path} holds keys/values of width {folder.table.shape[1]} per virtual token; the engine's "
            f"model needs {width} (2 x {engine.num_layers} layers x {engine.num_kv_heads} key/value heads x "
            f"{engine.head_dim}): a prefix for a model of another shape"
        )
    positions = folder.virtual_token_positions
    if positions not in ("none", "peft"):
        raise PrefixFolderError(f"task {task!r}: {path} has virtual_token_positions={positions!r}; 'none' or 'peft'")
    if positions == "none" and not engine.uses_rotary:
        raise PrefixFolderError(
            f"task {task!r}: {path} was trained with virtual_token_positions='none' (real tokens from position 0) on "
            f"a {engine.model_type!r} model with learned absolute positions; vLLM puts the prompt behind the prefix "
            "(from position P), which only rotary models can make up for. Train with virtual_token_positions='peft'"
        )
    if positions == "none" and engine.architecture.startswith("Transformers"):
        raise PrefixFolderError(
            f"task {task!r}: vLLM runs the {engine.model_type!r} model through its Transformers backend "
            f"({engine.architecture}), whose rotary embedding the connector cannot turn keys by; {path} was trained "
            "with virtual_token_positions='none'. Train with virtual_token_positions='peft' (written as trained)"
        )
    if engine.sliding_window is not None and engine.sliding_window < engine.max_model_len:
        raise PrefixFolderError(
            f"task {task!r}: the engine's model attends within a sliding window of {engine.sliding_window} tokens, "
            f"shorter than max_model_len={engine.max_model_len}: the prefix would slide out of it. Start the engine "
            f"with max_model_len <= {engine.sliding_window}"
        )
    if folder.pre_seq_len >= engine.max_model_len:
        raise PrefixFolderError(
            f"task {task!r}: its prefix takes {folder.pre_seq_len} positions, and max_model_len is "
            f"{engine.max_model_len}: no room for a prompt"
        )
    check_base(folder, engine, ignore_mismatched_base)


def check_base(folder: PrefixFolder, engine: EngineModel, ignore_mismatched_base: bool = False) -> None:
    """The folder's recorded base weights against the engine's safetensors files."""
    saved = folder.fingerprint
    if not saved:
        logger.warning(
            "task %r: %s records no base_model_fingerprint, so it cannot be checked that the engine serves the "
            "weights it was trained on; save it again with prefix-models to record one",
            folder.task,
            folder.path,
        )
        return
    if not has_safetensors(engine.model):
        logger.warning(
            "task %r: the engine's model %s is not a folder of safetensors files, so the prefix's "
            "base_model_fingerprint cannot be checked against it",
            folder.task,
            engine.model,
        )
        return
    difference = fingerprint_difference(saved, engine.model)
    if difference is None:
        return
    message = (
        f"task {folder.task!r}: {folder.path} was trained on the base model {folder.base_model_name_or_path!r}, and "
        f"the weights the engine serves ({engine.model}) are not that model's (base_model_fingerprint: {difference})"
    )
    if ignore_mismatched_base:
        logger.warning("%s; serving it anyway, as ignore_mismatched_base asks", message)
        return
    raise PrefixFolderError(message)


def served_prefix(folder: PrefixFolder, engine: EngineModel) -> ServedPrefix:
    """The folder's table as per-layer keys and values (a prompt's soft tokens as they are)."""
    if folder.method == "prompt":
        return ServedPrefix(folder.task, folder.path, folder.virtual_token_positions, soft_tokens=folder.table)
    table = folder.table.view(folder.pre_seq_len, engine.num_layers, 2, engine.num_kv_heads, engine.head_dim)
    kv = table.permute(1, 2, 0, 3, 4)  # (layers, key|value, P, heads, head_dim)
    return ServedPrefix(
        task=folder.task,
        path=folder.path,
        virtual_token_positions=folder.virtual_token_positions,
        keys=kv[:, 0].contiguous(),
        values=kv[:, 1].contiguous(),
    )


def check_task_name(task: Any) -> str:
    if not isinstance(task, str) or not task or task != task.strip() or any(char in task for char in "/:"):
        raise PrefixFolderError(f"task name {task!r}: a non-empty name without spaces around it, '/' or ':'")
    return task


def load_tasks(
    prefixes: Mapping[str, str | os.PathLike], engine: EngineModel, ignore_mismatched_base: bool = False
) -> dict[str, ServedPrefix]:
    """Every task of ``prefixes`` (task name -> folder) read and checked against ``engine``."""
    if not isinstance(prefixes, Mapping):
        raise PrefixFolderError(f"prefixes must map task names to folders, got {type(prefixes).__name__}")
    tasks = {}
    for task, path in prefixes.items():
        folder = read_prefix_folder(check_task_name(task), path)
        check_against_engine(folder, engine, ignore_mismatched_base)
        tasks[task] = served_prefix(folder, engine)
    return tasks
