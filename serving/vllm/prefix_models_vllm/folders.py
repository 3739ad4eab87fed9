"""What a prefix folder holds, read without prefix_models: the folders prefix-models writes are the contract.

A served folder is a prefix-only checkpoint of a causal-LM prefix or prompt model: ``save_pretrained`` of a
``*PrefixForCausalLM`` / ``*PromptForCausalLM`` / ``*PrefixLMHeadModel`` (or ``AutoPrefixModelForCausalLM``), or
``save_prefix`` of one task. It holds ``config.json`` (the base's own config plus the prefix fields:
``prefix_method``, ``pre_seq_len``, ``prefix_projection``, ``prefix_layers``, ``virtual_token_positions``,
``base_model_fingerprint``) and ``model.safetensors`` (or shards with ``model.safetensors.index.json``) with the
encoder's tensors:

* prefix tuning (``prefix_method="prefix"``): ``prefix_encoder.embedding.weight`` and, for a reparameterised
  prefix, ``prefix_encoder.trans.{0,2}.{weight,bias}`` (Linear -> Tanh -> Linear, evaluated here once: dropout is
  a training-time setting and is off when serving). The table is ``(pre_seq_len, 2 * num_layers * num_kv_heads *
  head_dim)``, laid out ``[layer][key|value][head][head_dim]``: row ``t`` holds virtual token ``t``'s key and value
  for every layer.
* prompt tuning (``"prompt"``): ``prompt_encoder.embedding.weight``, the soft tokens ``(pre_seq_len, hidden)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors import safe_open

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
# The encoder's tensors, by method: what its module is called in the saved state dict.
ENCODER_PREFIXES = {"prefix": "prefix_encoder.", "prompt": "prompt_encoder."}
# The class-name endings of the causal-LM prefix classes (``LlamaPrefixForCausalLM``, ``GPT2PrefixLMHeadModel``).
CAUSAL_LM_ENDINGS = ("ForCausalLM", "LMHeadModel")


class PrefixFolderError(ValueError):
    """A prefix folder that cannot be served as asked; the message is one line naming the task and the reason."""


@dataclass
class PrefixFolder:
    """One task's prefix as read from its folder (see the module docstring for the layout)."""

    task: str
    path: str
    config: dict[str, Any]
    table: torch.Tensor = field(repr=False)  # (pre_seq_len, width), float32

    @property
    def method(self) -> str:
        """``"prefix"`` (keys and values for every layer) or ``"prompt"`` (soft tokens before the input)."""
        return str(self.config["prefix_method"])

    @property
    def pre_seq_len(self) -> int:
        return int(self.table.shape[0])

    @property
    def base_model_type(self) -> str:
        """The backbone's own model type: ``llama`` for a folder of model type ``llama_prefix``."""
        model_type = str(self.config.get("model_type", ""))
        return model_type.rsplit("_", 1)[0] if model_type.endswith(("_prefix", "_prompt")) else model_type

    @property
    def virtual_token_positions(self) -> str:
        return str(self.config.get("virtual_token_positions") or "none")

    @property
    def base_model_name_or_path(self) -> str | None:
        return self.config.get("base_model_name_or_path")

    @property
    def fingerprint(self) -> dict[str, Any] | None:
        return self.config.get("base_model_fingerprint")


def read_config(task: str, path: str) -> dict[str, Any]:
    """The folder's ``config.json``, refused in one line where it is not a prefix-models prefix folder."""
    config_file = os.path.join(path, CONFIG_NAME)
    if not os.path.isdir(path):
        raise PrefixFolderError(f"task {task!r}: {path} is not a folder")
    if not os.path.isfile(config_file):
        raise PrefixFolderError(f"task {task!r}: {path} has no {CONFIG_NAME}, so it is not a saved prefix")
    try:
        with open(config_file, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise PrefixFolderError(f"task {task!r}: {config_file} cannot be read as JSON ({error})") from None
    if not isinstance(config, dict) or "pre_seq_len" not in config or "prefix_method" not in config:
        raise PrefixFolderError(
            f"task {task!r}: {path} is not a prefix saved by prefix-models (its {CONFIG_NAME} has no pre_seq_len / "
            "prefix_method): serve the folder that save_pretrained or save_prefix of a causal-LM prefix model wrote"
        )
    return config


def check_kind(task: str, path: str, config: dict[str, Any]) -> None:
    """Refuse what a decoder engine cannot serve: encoder-only and encoder-decoder prefixes, other methods."""
    if config.get("is_encoder_decoder"):
        raise PrefixFolderError(
            f"task {task!r}: {path} holds an encoder-decoder prefix ({config.get('model_type')}); vLLM serving takes "
            "decoder-only causal-LM prefixes"
        )
    architectures = config.get("architectures") or []
    if not any(str(name).endswith(CAUSAL_LM_ENDINGS) for name in architectures):
        raise PrefixFolderError(
            f"task {task!r}: {path} holds a {', '.join(map(str, architectures)) or 'model without architectures'} "
            "prefix, not a causal-LM one (an encoder-only task head is not served by vLLM); serve a prefix trained "
            "with a *ForCausalLM / *LMHeadModel prefix class"
        )
    if config.get("prefix_method") not in ENCODER_PREFIXES:
        raise PrefixFolderError(
            f"task {task!r}: {path} holds a prefix_method={config.get('prefix_method')!r} model; served are "
            f"{' and '.join(map(repr, ENCODER_PREFIXES))}"
        )


def weights_files(task: str, path: str) -> list[str]:
    """The folder's safetensors file, or every shard an index names."""
    single, index = os.path.join(path, WEIGHTS_NAME), os.path.join(path, WEIGHTS_INDEX_NAME)
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle).get("weight_map", {}).values()))
        return [os.path.join(path, shard) for shard in shards]
    raise PrefixFolderError(f"task {task!r}: {path} has no {WEIGHTS_NAME}, so it holds no prefix weights")


def read_encoder_tensors(task: str, path: str, method: str) -> dict[str, torch.Tensor]:
    """The encoder's tensors (``prefix_encoder.*`` or ``prompt_encoder.*``, without that prefix); a folder holding
    backbone weights is refused (a full save: serve the base with vLLM and the prefix from a prefix-only save)."""
    encoder = ENCODER_PREFIXES[method]
    tensors: dict[str, torch.Tensor] = {}
    others: list[str] = []
    for file in weights_files(task, path):
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if key.startswith(encoder):
                    tensors[key[len(encoder) :]] = handle.get_tensor(key).float()
                else:
                    others.append(key)
    if "embedding.weight" not in tensors:
        raise PrefixFolderError(f"task {task!r}: {path} holds no {encoder}embedding.weight, so no {method}")
    if others:
        raise PrefixFolderError(
            f"task {task!r}: {path} holds model weights besides the prefix ({others[0]}, ...), a full save; serve a "
            "prefix-only save (save_pretrained without save_base_model, or save_prefix)"
        )
    return tensors


@torch.no_grad()
def prefix_table(task: str, path: str, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(pre_seq_len, width)``: the table itself, or the reparameterisation MLP evaluated over it."""
    table = tensors["embedding.weight"]
    if config["prefix_method"] == "prefix" and config.get("prefix_projection") and "trans.0.weight" in tensors:
        needed = ("trans.0.weight", "trans.0.bias", "trans.2.weight", "trans.2.bias")
        missing = [name for name in needed if name not in tensors]
        if missing:
            raise PrefixFolderError(f"task {task!r}: {path} lacks prefix_encoder.{missing[0]} of its projection")
        hidden = torch.tanh(table @ tensors["trans.0.weight"].T + tensors["trans.0.bias"])
        table = hidden @ tensors["trans.2.weight"].T + tensors["trans.2.bias"]
    if table.dim() != 2 or table.shape[0] != int(config["pre_seq_len"]):
        raise PrefixFolderError(
            f"task {task!r}: {path} holds a prefix of shape {tuple(table.shape)}, but its config says "
            f"pre_seq_len={config['pre_seq_len']}"
        )
    return table.contiguous()


def read_prefix_folder(task: str, path: str | os.PathLike) -> PrefixFolder:
    """Read and check one task's folder; every refusal is a :class:`PrefixFolderError` of one line."""
    path = os.fspath(path)
    config = read_config(task, path)
    check_kind(task, path, config)
    tensors = read_encoder_tensors(task, path, config["prefix_method"])
    return PrefixFolder(task=task, path=path, config=config, table=prefix_table(task, path, config, tensors))
