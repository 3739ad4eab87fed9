"""``PrefixConnector``: a vLLM KV connector that serves deep prefixes as ``pre_seq_len`` virtual tokens already in
the paged KV cache.

A request for task T is ``pre_seq_len`` placeholder ids before its prompt, with ``cache_salt="prefix:T"``
(``prompts.prefixed_prompt``). On the scheduler side the connector reports the placeholders as computed
elsewhere, so the engine never embeds them; on the worker side it writes T's keys and values into their cache
slots, each layer through its attention backend's own cache write (``impl.do_kv_cache_update``). With prefix
caching on, the salt makes every request of T share the blocks written once (and keeps T's apart from other
tasks'); a preempted request comes back through the connector like a new one.

Positions: vLLM gives the placeholders positions ``0..P-1`` and the prompt ``P..``. A prefix trained with
``virtual_token_positions="none"`` saw its prompt at ``0..`` and its keys unturned; rotary attention depends on
relative position only, so its keys are written turned as if at position ``P`` (the model's own rotary
embedding, scaling included, without the attention factor some scalings put in it). With ``"peft"`` the keys are
written as trained. A prompt-tuning task's keys and values are the base's own over its soft tokens
(``soft_tokens.py``, run once per task), turned the same way.

Used through vLLM's own configuration::

    KVTransferConfig(kv_connector="PrefixConnector", kv_connector_module_path="prefix_models_vllm",
                     kv_role="kv_consumer", kv_connector_extra_config={"prefixes": {"sentiment": "DIR", ...}})

A request whose salt names a task it does not serve, or whose placeholders are missing or wrong in number, is
refused: its placeholder blocks are reported as failed loads, so vLLM ends it with ``finish_reason="error"``
(``kv_load_failure_policy="fail"``, vLLM's default and required here) rather than serve it plain or shifted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from vllm.distributed.kv_transfer.kv_connector.v1.base import (
    KVConnectorBase_V1,
    KVConnectorMetadata,
    KVConnectorRole,
)

from .folders import PrefixFolderError
from .prompts import PLACEHOLDER_TOKEN_ID, task_of_salt
from .soft_tokens import soft_token_key_values
from .tasks import EngineModel, ServedPrefix, load_tasks

if TYPE_CHECKING:
    from vllm.forward_context import ForwardContext
    from vllm.v1.core.kv_cache_manager import KVCacheBlocks
    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.request import Request

logger = logging.getLogger(__name__)
_LAYER_INDEX = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")


@dataclass
class PrefixLoad:
    """One request's placeholder slots ``start..end-1`` to fill with ``task``'s keys and values; ``task`` None
    marks a refused request, whose ``block_ids`` the worker reports as failed."""

    request_id: str
    task: str | None
    start: int
    end: int
    slots: list[int]
    block_ids: list[int]


@dataclass
class PrefixConnectorMetadata(KVConnectorMetadata):
    loads: list[PrefixLoad] = field(default_factory=list)


class PrefixConnector(KVConnectorBase_V1):
    """Serve the tasks of ``kv_connector_extra_config["prefixes"]`` (task name -> prefix folder) on one engine."""

    def __init__(self, vllm_config: Any, role: KVConnectorRole, kv_cache_config: Any = None):
        super().__init__(vllm_config=vllm_config, role=role, kv_cache_config=kv_cache_config)
        extra = dict(self._kv_transfer_config.kv_connector_extra_config or {})
        if not extra.get("prefixes"):
            raise PrefixFolderError(
                'PrefixConnector: kv_connector_extra_config has no "prefixes" (a mapping of task names to prefix '
                "folders)"
            )
        policy = getattr(self._kv_transfer_config, "kv_load_failure_policy", "fail")
        if policy != "fail":
            raise PrefixFolderError(
                f"PrefixConnector: kv_load_failure_policy={policy!r} would serve a refused request without its "
                "prefix; leave it at 'fail'"
            )
        self._placeholder = int(extra.get("placeholder_token_id", PLACEHOLDER_TOKEN_ID))
        self._engine = EngineModel.from_vllm_config(vllm_config)
        self._tasks: dict[str, ServedPrefix] = load_tasks(
            extra["prefixes"], self._engine, bool(extra.get("ignore_mismatched_base", False))
        )
        self._block_size = int(vllm_config.cache_config.block_size)
        self._dtype = vllm_config.model_config.dtype
        # Scheduler side: requests told of external tokens, awaiting their blocks; loads for the next step.
        self._pending: dict[str, tuple[str | None, int]] = {}
        self._ready: list[PrefixLoad] = []
        # Worker side: each task's keys/values as written (turned, in the cache's dtype); blocks of refused requests.
        self._written: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._failed_blocks: set[int] = set()
        if role == KVConnectorRole.WORKER:
            # Every task's keys/values as written, now: what cannot be served fails the engine's start, not a request.
            for task in self._tasks:
                self._turned(task)
        if role == KVConnectorRole.SCHEDULER:
            summary = ", ".join(f"{task} (P={prefix.pre_seq_len})" for task, prefix in self._tasks.items())
            logger.info("PrefixConnector serves %d tasks on %s: %s", len(self._tasks), self._engine.model, summary)

    @property
    def tasks(self) -> dict[str, ServedPrefix]:
        return self._tasks

    # ------------------------------------------------------------------ scheduler side

    def _request_problem(self, task: str, prompt: list[int]) -> str | None:
        served = self._tasks.get(task)
        if served is None:
            return f"its cache_salt names task {task!r}, which this engine does not serve ({', '.join(self._tasks)})"
        length = served.pre_seq_len
        leading = next((i for i, token in enumerate(prompt) if token != self._placeholder), len(prompt))
        if leading != length or len(prompt) <= length:
            return (
                f"task {task!r} takes {length} placeholder ids ({self._placeholder}) before at least one prompt "
                f"token; the request starts with {leading} of {len(prompt)} tokens (build it with prefixed_prompt)"
            )
        return None

    def get_num_new_matched_tokens(self, request: Request, num_computed_tokens: int) -> tuple[int, bool]:
        task = task_of_salt(getattr(request, "cache_salt", None))
        if task is None:
            return 0, False
        prompt = list(request.prompt_token_ids or [])
        problem = self._request_problem(task, prompt)
        if problem is None:
            end = self._tasks[task].pre_seq_len
        else:
            # Refused: claim the tokens the engine lets a connector claim, and fail their load (see the module).
            end = min(self._tasks[task].pre_seq_len if task in self._tasks else len(prompt), len(prompt) - 1)
            if end - num_computed_tokens > 0:
                logger.error("PrefixConnector refuses request %s: %s", request.request_id, problem)
            else:
                logger.error(
                    "PrefixConnector cannot refuse request %s (%s): too short to fail", request.request_id, problem
                )
        count = end - num_computed_tokens
        if count <= 0:
            return 0, False
        self._pending[request.request_id] = (None if problem else task, end)
        return count, False

    def update_state_after_alloc(self, request: Request, blocks: KVCacheBlocks, num_external_tokens: int) -> None:
        pending = self._pending.pop(request.request_id, None)
        if pending is None or num_external_tokens <= 0:
            return
        task, end = pending
        start = end - num_external_tokens
        block_ids = blocks.get_block_ids()[0]
        size = self._block_size
        slots = [block_ids[position // size] * size + position % size for position in range(start, end)]
        touched = sorted({block_ids[position // size] for position in range(start, end)})
        self._ready.append(PrefixLoad(request.request_id, task, start, end, slots, touched))

    def build_connector_meta(self, scheduler_output: SchedulerOutput) -> KVConnectorMetadata:
        metadata = PrefixConnectorMetadata(loads=self._ready)
        self._ready = []
        return metadata

    def request_finished(self, request: Request, block_ids: list[int]) -> tuple[bool, dict[str, Any] | None]:
        self._pending.pop(request.request_id, None)
        return False, None

    # ------------------------------------------------------------------ worker side

    def _turned(self, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``task``'s keys and values as this worker's cache holds them: keys turned to position P for 'none'
        positions; with tensor parallelism, this rank's key/value heads only."""
        if task not in self._written:
            prefix = self._tasks[task]
            if prefix.soft_tokens is not None:  # prompt tuning: the base's own keys/values over the soft tokens
                prefix.keys, prefix.values = soft_token_key_values(
                    self._engine.model, prefix.soft_tokens, prefix.virtual_token_positions
                )
            keys = prefix.keys
            if prefix.virtual_token_positions == "none":
                keys = turn_keys(keys, prefix.pre_seq_len, self._engine.head_dim)
            heads = local_heads(self._engine.num_kv_heads)
            self._written[task] = (keys[:, :, heads].to(self._dtype), prefix.values[:, :, heads].to(self._dtype))
        return self._written[task]

    def start_load_kv(self, forward_context: ForwardContext, **kwargs: Any) -> None:
        if not self.has_connector_metadata():
            return
        metadata = self._get_connector_metadata()
        loads = getattr(metadata, "loads", [])
        if not loads:
            return
        layers = attention_layers(forward_context)
        for load in loads:
            if load.task is None:
                self._failed_blocks.update(load.block_ids)
                continue
            keys, values = self._turned(load.task)
            # Every layer's cache sits on the one device of this worker: the slots and rows move there once.
            device = layers[0][1].kv_cache.device
            slots = torch.tensor(load.slots, dtype=torch.int64, device=device)
            keys = keys[:, load.start : load.end].to(device)
            values = values[:, load.start : load.end].to(device)
            for index, layer in layers:
                layer.impl.do_kv_cache_update(layer, keys[index], values[index], layer.kv_cache, slots)

    def wait_for_layer_load(self, layer_name: str) -> None:
        return

    def save_kv_layer(self, layer_name: str, kv_layer: torch.Tensor, attn_metadata: Any, **kwargs: Any) -> None:
        return

    def wait_for_save(self) -> None:
        return

    def get_block_ids_with_load_errors(self) -> set[int]:
        failed, self._failed_blocks = self._failed_blocks, set()
        return failed


def attention_layers(forward_context: ForwardContext) -> list[tuple[int, Any]]:
    """``(layer index, attention layer)`` of every attention layer that keeps a KV cache, bottom first."""
    layers = []
    for name, layer in forward_context.no_compile_layers.items():
        impl = getattr(layer, "impl", None)
        if getattr(layer, "kv_cache", None) is None or not hasattr(impl, "do_kv_cache_update"):
            continue
        match = _LAYER_INDEX.search(name)
        if match is None:
            raise RuntimeError(f"PrefixConnector: cannot tell the layer index of attention layer {name}")
        layers.append((int(match.group(1)), layer))
    return sorted(layers, key=lambda pair: pair[0])


def local_heads(total: int) -> slice:
    """The key/value heads this tensor-parallel rank's cache holds: its share of ``total``, or (with more ranks
    than heads) the one head its group of ranks replicates, as vLLM's QKV projection splits them."""
    from vllm.distributed import get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size

    size = get_tensor_model_parallel_world_size()
    if size == 1:
        return slice(0, total)
    rank = get_tensor_model_parallel_rank()
    if total >= size:
        return slice(rank * (total // size), (rank + 1) * (total // size))
    head = rank // (size // total)
    return slice(head, head + 1)


def engine_rotary(head_dim: int) -> Any:
    """The rotary embedding the engine's model built (vLLM keeps every one it builds, keyed by its settings)."""
    from vllm.model_executor.layers.rotary_embedding import _ROPE_DICT
    from vllm.model_executor.layers.rotary_embedding.base import RotaryEmbedding

    found = {id(rope): rope for rope in _ROPE_DICT.values() if getattr(rope, "head_size", None) == head_dim}
    if len(found) != 1:
        raise PrefixFolderError(
            f"PrefixConnector: the engine's model built {len(found)} rotary embeddings of head size {head_dim}; "
            "prefixes with virtual_token_positions='none' need exactly one to turn their keys by"
        )
    rope = next(iter(found.values()))
    if type(rope).forward_native is not RotaryEmbedding.forward_native:
        raise PrefixFolderError(
            f"PrefixConnector: the engine's rotary embedding {type(rope).__name__} turns keys its own way; prefixes "
            "with virtual_token_positions='none' are served on rotary embeddings that turn by a cos/sin table"
        )
    return rope


@torch.no_grad()
def turn_keys(keys: torch.Tensor, position: int, head_dim: int) -> torch.Tensor:
    """``keys`` ``(layers, P, heads, head_dim)`` turned as if at ``position``, by the engine's rotary embedding
    without the attention factor of scalings such as YaRN (keys trained unturned never carried it)."""
    from vllm.model_executor.layers.rotary_embedding.base import RotaryEmbedding

    rope = engine_rotary(head_dim)
    table = rope.cos_sin_cache.float().cpu()
    layers, length, heads, _ = keys.shape
    flat = keys.float().reshape(layers * length, heads * head_dim)

    def turn(rows: torch.Tensor, at: int) -> torch.Tensor:
        positions = torch.full((rows.shape[0],), at, dtype=torch.long)
        turned, _ = RotaryEmbedding.forward_static(
            positions, rows.clone(), None, rope.head_size, rope.rotary_dim, table, rope.is_neox_style
        )
        return turned

    # At position 0 a rotation is the identity: what is left is the attention factor, divided out.
    factor = turn(torch.ones(1, heads * head_dim), 0)
    return (turn(flat, position) / factor).reshape(keys.shape)
