#!/usr/bin/env python
"""Many tasks on one frozen backbone: what a mixed batch costs, and what one backbone saves.

    python benchmarks/multitask.py                 # BERT-base shape (random weights), 8 tasks, batch 16 x 128
    python benchmarks/multitask.py --quick         # a tiny model, seconds (wiring check)

One model holds ``--tasks`` named prefixes (``load_prefix``), each with its own head, and runs a batch of
``--batch_size`` examples four ways, interleaved round by round so that machine noise hits all alike:

* ``single``: every example for the model's own task, no ``prefix_names`` (how a one-task model runs);
* ``single, named``: the same batch routed by name to one task (the routing path with one task);
* ``mixed``: the batch split evenly over all tasks, each example routed to its own prefix and head;
* ``mixed, lengths``: as ``mixed`` with prefix lengths spread from P/2 to 4P (shorter ones padded and masked).

Inference (``torch.no_grad``), median over ``--repeats`` after warm-up; throughput is examples per second.
Target: mixed >= 0.90x single. Memory: the parameter bytes of one backbone with the N task
prefixes and heads against N separately fine-tuned models (backbone + head each), float32.
Writes JSON and, with matplotlib, a plot (``--plot``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import RESULTS, TINY_BERT, add_timing_arguments, write_json  # noqa: E402

import prefix_models as pm  # noqa: E402


def save_base(quick: bool, folder: Path) -> Path:
    """A random BERT-base-shaped checkpoint (tiny with ``quick``), standing in for a pretrained one."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(**(TINY_BERT if quick else {}))).save_pretrained(folder)
    return folder


def build(base: Path, tasks: int, pre_seq_len: int, spread: bool, folder: Path):
    """``tasks`` saved prefixes on ``base`` (in ``folder``), and a model holding them all."""
    lengths = [pre_seq_len] * tasks
    if spread:  # P/2 .. 4P, evenly
        lengths = [
            max(1, round(pre_seq_len / 2 + index * (4 * pre_seq_len - pre_seq_len / 2) / max(1, tasks - 1)))
            for index in range(tasks)
        ]
    for index, length in enumerate(lengths):
        task = pm.BertPrefixForSequenceClassification.from_pretrained(
            base, pre_seq_len=length, num_labels=2 + index % 3, attn_implementation="sdpa"
        )
        task.save_pretrained(folder / f"task{index}")
    model = pm.BertPrefixForSequenceClassification.from_pretrained(folder / "task0", attn_implementation="sdpa")
    for index in range(1, tasks):
        model.load_prefix(folder / f"task{index}", f"task{index}")
    return model.eval(), lengths


def parameter_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=8)
    add_timing_arguments(parser, batch_size=16, quick_help="a tiny random model (a wiring check, seconds)")
    parser.add_argument("--output", type=Path, default=RESULTS / "multitask.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "multitask.png")
    args = parser.parse_args(argv)
    if args.tasks < 2 or args.batch_size % args.tasks:
        parser.error(f"--batch_size ({args.batch_size}) must split evenly over --tasks ({args.tasks} >= 2)")

    with tempfile.TemporaryDirectory() as tmp:
        base = save_base(args.quick, Path(tmp) / "base")
        same, _ = build(base, args.tasks, args.pre_seq_len, False, Path(tmp) / "same")
        spread, lengths = build(base, args.tasks, args.pre_seq_len, True, Path(tmp) / "spread")
    torch.manual_seed(1)
    input_ids = torch.randint(5, same.config.vocab_size, (args.batch_size, args.seq_len))
    mask = torch.ones_like(input_ids)
    mixed_names = [f"task{i % args.tasks}" if i % args.tasks else "default" for i in range(args.batch_size)]
    arms = {
        "single": lambda: same(input_ids=input_ids, attention_mask=mask),
        "single, named": lambda: same(
            input_ids=input_ids, attention_mask=mask, prefix_names=["task1"] * args.batch_size
        ),
        "mixed": lambda: same(input_ids=input_ids, attention_mask=mask, prefix_names=mixed_names),
        "mixed, lengths": lambda: spread(input_ids=input_ids, attention_mask=mask, prefix_names=mixed_names),
    }
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    with torch.no_grad():
        for round_index in range(args.repeats + 2):
            for arm, run in arms.items():
                start = time.perf_counter()
                run()
                if round_index >= 2:
                    times[arm].append(time.perf_counter() - start)
    seconds = {arm: statistics.median(values) for arm, values in times.items()}
    throughput = {arm: args.batch_size / value for arm, value in seconds.items()}

    backbone = parameter_bytes(same.base_model)
    per_task = [sum(parameter_bytes(m) for m in same.task_modules(name).values()) for name in same.prefix_names]
    heads = [parameter_bytes(same.task_modules(name)["classifier"]) for name in same.prefix_names]
    shared = backbone + sum(per_task)
    separate = sum(backbone + head for head in heads)
    results = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "spread_lengths": lengths,
        "seconds": seconds,
        "examples_per_second": throughput,
        "memory_bytes": {
            "one backbone + prefixes": shared,
            "separate fine-tuned models": separate,
            "per task (prefix + head)": per_task,
        },
    }
    print(f"{'arm':16s} {'seconds':>9s} {'examples/s':>11s} {'/ single':>9s}")
    for arm in arms:
        print(f"{arm:16s} {seconds[arm]:9.4f} {throughput[arm]:11.1f} {throughput[arm] / throughput['single']:9.3f}")
    print(
        f"memory: one backbone + {args.tasks} prefixes {shared / 2**20:.1f} MiB; {args.tasks} fine-tuned models "
        f"{separate / 2**20:.1f} MiB ({separate / shared:.2f}x); a task adds "
        f"{statistics.mean(per_task) / 2**10:.0f} KiB"
    )
    write_json(args.output, results)
    print(f"wrote {args.output}")
    if args.plot:
        plot(results, args.tasks, args.plot)
    return results


def plot(results: dict, tasks: int, output: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    throughput = results["examples_per_second"]
    left.bar(list(throughput), list(throughput.values()), color=["#777", "#999", "#2a7", "#5b9"])
    left.axhline(0.9 * throughput["single"], color="#c33", linestyle="--", linewidth=1, label="0.90x single")
    left.set_ylabel("examples / second")
    left.set_title("inference throughput, one batch")
    left.legend(loc="lower left")
    left.tick_params(axis="x", labelrotation=15)
    memory = {key: value / 2**20 for key, value in results["memory_bytes"].items() if not key.startswith("per")}
    right.bar(list(memory), list(memory.values()), color=["#2a7", "#777"])
    right.set_ylabel("MiB of parameters (float32)")
    right.set_title(f"{tasks} tasks")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
