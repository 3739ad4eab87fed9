"""Starting and stopping vLLM engines for the serving tests: small, eager, float32, on vLLM's CPU or GPU build."""

from __future__ import annotations

import gc
from typing import Any

from prefix_models_vllm import prefix_transfer_config, prefixed_prompt
from vllm import LLM, SamplingParams


def start_engine(base: str, prefixes: dict[str, str], **overrides: Any) -> LLM:
    """An engine on ``base`` serving ``prefixes``, sized for tiny models (a 64 MiB KV cache, no graph capture)."""
    settings = dict(
        model=base,
        skip_tokenizer_init=True,
        dtype="float32",
        block_size=32,
        max_model_len=512,
        enable_prefix_caching=True,
        enforce_eager=True,
        kv_cache_memory_bytes=64 << 20,
        max_num_seqs=64,
        disable_log_stats=False,
        kv_transfer_config=prefix_transfer_config(prefixes),
        seed=0,
    )
    return LLM(**{**settings, **overrides})


def stop_engine(llm: LLM) -> None:
    llm.llm_engine.engine_core.shutdown()
    del llm
    gc.collect()


def greedy(llm: LLM, requests: list[dict], prefixes: dict[str, str], new_tokens: int) -> list[Any]:
    """Each request (``{"task", "prompt"}``) served in one ``generate`` call: its outputs, in order."""
    prompts = [prefixed_prompt(request["task"], request["prompt"], prefixes) for request in requests]
    # min_tokens holds end-of-text back as the project's min_new_tokens does (ignore_eos alone would still pick it).
    params = SamplingParams(
        temperature=0.0, max_tokens=new_tokens, min_tokens=new_tokens, ignore_eos=True, detokenize=False
    )
    return [output.outputs[0] for output in llm.generate(prompts, params, use_tqdm=False)]


def metric(llm: LLM, name: str) -> float:
    """The value of one of vLLM's counters (``vllm:num_preemptions``, ``vllm:prefix_cache_hits``, ...)."""
    return sum(float(getattr(entry, "value", 0) or 0) for entry in llm.get_metrics() if entry.name == name)
