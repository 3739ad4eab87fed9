"""peft prefix-tuning and prompt-tuning adapters, in and out (decoder language models, peft task type
``CAUSAL_LM``).

An adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``) holds the virtual tokens as
one flat table, ``prompt_embeddings``: for prefix tuning the per-layer keys and values laid out as our
``PrefixEncoder`` table (``[layer][key|value][kv head][head_dim]``), for prompt tuning the soft tokens.

**Positions.** peft runs the virtual tokens as if they came first in the sequence: real tokens start at
position P (prefix tuning: after P cached entries; prompt tuning: after P soft tokens at positions
0..P-1). Here virtual tokens take no position by default (``virtual_token_positions="none"``: real
tokens keep the positions the plain model gives them). An imported adapter gets
``virtual_token_positions="peft"``, which shifts real tokens by P exactly as peft does, so it reproduces
peft's outputs; exporting a model trained with ``"none"`` warns that peft will run it shifted.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedConfig
from transformers.utils import cached_file

from ..configuration import SELF_ATTENTION, kv_geometry, prefix_layout
from ..errors import InputError

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# peft's type -> our method.
PEFT_TYPES = {"PREFIX_TUNING": "prefix", "PROMPT_TUNING": "prompt"}
TASK_TYPES = ("CAUSAL_LM",)


def read_peft_adapter_config(path: str, hub_kwargs: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The adapter's config if ``path`` holds a peft adapter, else None."""
    lookup = {**(hub_kwargs or {}), "_raise_exceptions_for_missing_entries": False}
    lookup.pop("gguf_file", None)
    try:
        found = cached_file(path, ADAPTER_CONFIG, **lookup)
    except OSError:
        return None
    if found is None:
        return None
    try:
        with open(found, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise InputError(f"{found} is not a readable peft adapter config ({error})") from error


def check_peft_adapter_type(path: str, hub_kwargs: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The adapter config of a peft adapter we can read (None: not a peft adapter); another kind is an error."""
    adapter = read_peft_adapter_config(path, hub_kwargs)
    if adapter is None:
        return None
    peft_type, task_type = adapter.get("peft_type"), adapter.get("task_type")
    if peft_type not in PEFT_TYPES:
        raise InputError(
            f"{path} holds a peft {peft_type} adapter; prefix-models reads peft adapters of type "
            f"{' or '.join(PEFT_TYPES)} (prefix or prompt tuning)"
        )
    if task_type not in TASK_TYPES:
        raise InputError(
            f"{path} holds a peft {peft_type} adapter for task type {task_type!r}; prefix-models "
            f"reads {' / '.join(TASK_TYPES)} adapters (decoder language models)"
        )
    if adapter.get("num_transformer_submodules", 1) != 1:
        submodules = adapter["num_transformer_submodules"]
        raise InputError(
            f"{path} is a peft adapter for an encoder-decoder (num_transformer_submodules={submodules}); "
            "prefix-models reads decoder-only adapters"
        )
    return adapter


def peft_task(
    config_class: type[PreTrainedConfig],
    path: str,
    hub_kwargs: dict[str, Any],
    base_model_name_or_path: str | None = None,
    **config_kwargs: Any,
) -> tuple[PreTrainedConfig, dict[str, torch.Tensor]]:
    """Our config and prefix/prompt tensors for the peft adapter in ``path``.

    The base model comes from the adapter's ``base_model_name_or_path`` (or the argument) and must be a
    local folder; the config is the base's, with the adapter's method and length and peft's positions.
    """
    adapter = check_peft_adapter_type(path, hub_kwargs)
    base = os.fspath(base_model_name_or_path or adapter.get("base_model_name_or_path") or "")
    if not base or not os.path.isdir(base):
        raise InputError(
            f"the peft adapter in {path} names the base model {base or None!r}, which is not a local "
            "folder; pass base_model_name_or_path=<folder of the base model>"
        )
    method = PEFT_TYPES[adapter["peft_type"]]
    fields = {
        "prefix_method": method,
        "pre_seq_len": adapter["num_virtual_tokens"],
        "prefix_projection": False,
        "virtual_token_positions": "peft",
        **config_kwargs,
    }
    config = config_class.from_pretrained(base, **fields)
    config.base_model_name_or_path = os.path.abspath(base)
    try:
        weights = cached_file(path, ADAPTER_WEIGHTS, **{k: v for k, v in hub_kwargs.items() if k != "gguf_file"})
        table = load_file(weights)["prompt_embeddings"]
    except (OSError, KeyError) as error:
        raise InputError(
            f"{path} has no readable {ADAPTER_WEIGHTS} with a 'prompt_embeddings' tensor ({error!r}); "
            "nothing was loaded"
        ) from error
    width = _table_width(config)
    if tuple(table.shape) != (config.pre_seq_len, width):
        raise InputError(
            f"the peft adapter in {path} holds prompt_embeddings of shape {tuple(table.shape)}; the base "
            f"{base!r} needs ({config.pre_seq_len}, {width}) for {method} tuning"
        )
    return config, {f"{method}_encoder.embedding.weight": table.float()}


def _table_width(config: PreTrainedConfig) -> int:
    if config.prefix_method == "prompt":
        return config.hidden_size
    num_layers, num_kv_heads, head_dim = kv_geometry(config)
    return 2 * num_layers * num_kv_heads * head_dim


def save_peft_adapter(model: Any, save_directory: str | os.PathLike, prefix_name: str = "default") -> None:
    """Write the task ``prefix_name`` of a decoder LM as a peft adapter that ``PeftModel.from_pretrained`` loads."""
    if not getattr(model, "_peft_positions_supported", False):
        raise InputError(f"peft adapters are written for decoder language models; {type(model).__name__} is not one")
    config = model.prefix_config(prefix_name)
    if prefix_layout(config)[SELF_ATTENTION] != config.num_hidden_layers:
        raise InputError(
            f"peft's prefix tuning puts a prefix on every layer; the task {prefix_name!r} has one on "
            f"prefix_layers={config.prefix_layers} only, which a peft adapter cannot express. Nothing "
            "was written; save it with save_pretrained / save_prefix instead"
        )
    base = model.config.base_model_name_or_path
    if not base:
        raise InputError("a peft adapter names its base model, and this model has none (built from a config)")
    if config.virtual_token_positions != "peft":
        logger.warning(
            "this prefix was trained with virtual_token_positions='none' (real tokens keep their positions); peft "
            "runs it with real tokens shifted by pre_seq_len=%d, so its outputs will differ from this model's",
            config.pre_seq_len,
        )
    encoder = model.task_modules(prefix_name)[model.tuning.encoder_attribute]
    with torch.no_grad():
        table = encoder().detach().float().contiguous().clone()  # a projection MLP is folded into the table
    num_layers, num_kv_heads, head_dim = kv_geometry(config)
    prefix = config.prefix_method == "prefix"
    adapter = {
        "peft_type": "PREFIX_TUNING" if prefix else "PROMPT_TUNING",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "inference_mode": True,
        "num_virtual_tokens": config.pre_seq_len,
        "num_transformer_submodules": 1,
        "num_layers": num_layers,
        # peft's prefix rows hold key/value heads; its prompt rows are input embeddings.
        "num_attention_heads": num_kv_heads if prefix else config.num_attention_heads,
        "token_dim": num_kv_heads * head_dim if prefix else config.hidden_size,
        **(
            {"prefix_projection": False, "encoder_hidden_size": config.hidden_size}
            if prefix
            else {"prompt_tuning_init": "RANDOM"}
        ),
    }
    os.makedirs(save_directory, exist_ok=True)
    with open(os.path.join(save_directory, ADAPTER_CONFIG), "w", encoding="utf-8") as handle:
        json.dump(adapter, handle, indent=2)
    save_file({"prompt_embeddings": table}, os.path.join(save_directory, ADAPTER_WEIGHTS), metadata={"format": "pt"})
