"""prefix-models-vllm: serve prefix-models' deep prefixes with vLLM, many tasks on one base model.

* :class:`PrefixConnector` (``connector.py``): the KV connector that writes each task's keys and values into its
  placeholders' cache slots; configured through vLLM's ``KVTransferConfig``.
* :func:`prefixed_prompt` (``prompts.py``): one request's prompt for a task (placeholders + ``cache_salt``).
* :func:`load_tasks` (``tasks.py``): read and check prefix folders against an engine's model.
* ``python -m prefix_models_vllm.serve`` (``serve.py``): vLLM's OpenAI-compatible server with the tasks as models.

This package imports vLLM, torch, safetensors and the standard library (and vLLM's own transformers, to run the base
over a prompt's soft tokens: ``soft_tokens.py``): it reads the folders prefix-models writes, never ``prefix_models``.
"""

from __future__ import annotations

from typing import Any

from .folders import PrefixFolderError, read_prefix_folder
from .prompts import PLACEHOLDER_TOKEN_ID, cache_salt, prefixed_prompt
from .tasks import EngineModel, load_tasks

__all__ = [
    "PLACEHOLDER_TOKEN_ID",
    "EngineModel",
    "PrefixConnector",
    "PrefixFolderError",
    "cache_salt",
    "check_prefixes",
    "load_tasks",
    "prefix_transfer_config",
    "prefixed_prompt",
    "read_prefix_folder",
]


def check_prefixes(
    model: str, prefixes: dict[str, str], max_model_len: int | None = None, ignore_mismatched_base: bool = False
) -> None:
    """Check every folder of ``prefixes`` against the base ``model`` as vLLM will load it, before an engine starts:
    a refusal is one :class:`PrefixFolderError` line (inside an engine's start it ends vLLM's start-up error)."""
    from vllm.config import ModelConfig

    model_config = ModelConfig(model=model, max_model_len=max_model_len, skip_tokenizer_init=True)
    load_tasks(prefixes, EngineModel.from_model_config(model_config), ignore_mismatched_base)


def prefix_transfer_config(
    prefixes: dict[str, str], model: str | None = None, max_model_len: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``kv_transfer_config`` (as vLLM's ``LLM(kv_transfer_config=...)`` and ``--kv-transfer-config`` take it)
    that serves ``prefixes`` (task name -> folder). Given the engine's ``model`` (and ``max_model_len``), the
    folders are checked here first (:func:`check_prefixes`). ``extra``: ``placeholder_token_id``,
    ``ignore_mismatched_base``."""
    if model is not None:
        check_prefixes(model, prefixes, max_model_len, bool(extra.get("ignore_mismatched_base", False)))
    return {
        "kv_connector": "PrefixConnector",
        "kv_connector_module_path": "prefix_models_vllm",
        "kv_role": "kv_consumer",
        "kv_connector_extra_config": {"prefixes": {task: str(path) for task, path in prefixes.items()}, **extra},
    }


def __getattr__(name: str) -> Any:
    # The connector imports vLLM; prefixed_prompt and the folder checks do not need it.
    if name == "PrefixConnector":
        from .connector import PrefixConnector

        return PrefixConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
