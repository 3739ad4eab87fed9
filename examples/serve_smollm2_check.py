#!/usr/bin/env python
"""The two halves of ``examples/serve_smollm2.sh``: what the project answers, and whether the server says the same.

``reference`` (the project's venv: prefix_models and its transformers) writes a JSON file of chat questions, each
asked of the task (the prefix on the base) and of the plain base, with the prompt's token ids (the base's chat
template applied, as the server applies it) and the project's own greedy ``generate`` tokens (``--max_tokens``, stopped
by the end of turn as the server stops)::

    .venv/bin/python examples/serve_smollm2_check.py reference --base DIR --prefix DIR --task reviews \\
        --base_name SmolLM2-135M-Instruct --output refs.json

``ask`` (any venv: the standard library only) sends every question of that file to a running server's
``/v1/chat/completions`` (temperature 0, the same ``max_tokens``, ``"model"`` the task or the base's served name),
prints a table, and exits 1 unless every prompt and every answer equals the reference token for token::

    .venv-vllm/bin/python examples/serve_smollm2_check.py ask --url http://127.0.0.1:8000 --references refs.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "examples" / "data" / "movie_reviews" / "test.csv"
# The question the prefix was trained on (examples/sft_smollm2.py), and two it was not.
QUESTION = "Is this review positive or negative? Answer with one word."
OPEN_QUESTIONS = ("What is the capital of France?", "Write a haiku about the sea.")
REVIEW_COUNT = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    reference = commands.add_parser("reference", help="the project's greedy answers (project venv)")
    reference.add_argument("--base", type=Path, required=True, help="the base model folder the server serves")
    reference.add_argument("--prefix", type=Path, required=True, help="the task's prefix folder")
    reference.add_argument("--task", required=True, help="the task's name on the server (--prefix TASK=DIR)")
    reference.add_argument("--base_name", required=True, help="the base's name on the server (--served-model-name)")
    reference.add_argument("--max_tokens", type=int, default=32)
    reference.add_argument("--output", type=Path, required=True)
    ask = commands.add_parser("ask", help="the server's answers against the reference file")
    ask.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    ask.add_argument("--references", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "reference":
        for flag in ("base", "prefix"):
            if not (getattr(args, flag) / "config.json").is_file():
                parser.error(f"--{flag} {getattr(args, flag)}: no config.json there")
        if args.max_tokens < 1:
            parser.error("--max_tokens must be at least 1")
    elif not args.references.is_file():
        parser.error(f"--references {args.references}: no such file (run the reference command first)")
    return args


def questions() -> list[list[dict[str, str]]]:
    with open(REVIEWS, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:REVIEW_COUNT]
    asked = [f"Review: {row['sentence']}\n{QUESTION}" for row in rows] + list(OPEN_QUESTIONS)
    return [[{"role": "user", "content": text}] for text in asked]


def reference(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from prefix_models import AutoPrefixModelForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    # The server stops at the base's end-of-turn token(s) (its generation_config.json): so does the reference.
    eos = GenerationConfig.from_pretrained(args.base).eos_token_id or tokenizer.eos_token_id
    # The prefix onto the server's copy of the base (a GGUF-trained prefix finds this folder's own weights; the
    # fingerprint check still makes sure they are the weights it was trained on).
    models = {
        args.task: AutoPrefixModelForCausalLM.from_pretrained(args.prefix, base_model_name_or_path=args.base),
        args.base_name: AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32),
    }
    cases = []
    for messages in questions():
        # As vLLM's chat endpoint does: the template rendered to text, then tokenised without special tokens.
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        for name, model in models.items():
            ids = torch.tensor([prompt])
            with torch.no_grad():
                out = model.eval().generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=False,
                    max_new_tokens=args.max_tokens,
                    eos_token_id=eos,
                    pad_token_id=tokenizer.pad_token_id,
                )
            tokens = out[0, len(prompt) :].tolist()
            answer = tokenizer.decode(tokens, skip_special_tokens=True)
            cases.append({"model": name, "messages": messages, "prompt_ids": prompt, "tokens": tokens, "text": answer})
    args.output.write_text(json.dumps({"max_tokens": args.max_tokens, "cases": cases}, indent=1))
    print(f"references: {len(cases)} answers of the project's generate in {args.output}")


def chat(url: str, case: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    body = {
        "model": case["model"],
        "messages": case["messages"],
        "temperature": 0,
        "max_tokens": max_tokens,
        "return_token_ids": True,  # vLLM's extra field: the prompt's and the answer's token ids
    }
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        sys.exit(f"{case['model']}: HTTP {error.code} {error.read().decode(errors='replace')[:500]}")


def short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def ask(args: argparse.Namespace) -> None:
    references = json.loads(args.references.read_text())
    rows, mismatches = [], 0
    for case in references["cases"]:
        response = chat(args.url.rstrip("/"), case, references["max_tokens"])
        choice = response["choices"][0]
        same_prompt = response.get("prompt_token_ids") == case["prompt_ids"]
        same_answer = choice.get("token_ids") == case["tokens"]
        mismatches += not (same_prompt and same_answer)
        verdict = "equal" if same_prompt and same_answer else ("ANSWER DIFFERS" if same_prompt else "PROMPT DIFFERS")
        rows.append((case["model"], case["messages"][-1]["content"], verdict, choice["message"]["content"] or ""))
        if not same_answer:
            rows.append(("", "  the project's generate:", "", case["text"]))
    width = max(len(row[0]) for row in rows)
    print(f"{'model':{width}}  {'question':42}  {'vs generate':14}  answer (server)")
    for model, question, verdict, answer in rows:
        print(f"{model:{width}}  {short(question, 42):42}  {verdict:14}  {short(answer, 60)}")
    total = len(references["cases"])
    print(f"\n{total - mismatches} of {total} answers equal the project's generate token for token")
    if mismatches:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "reference":
        reference(args)
    else:
        ask(args)


if __name__ == "__main__":
    main()
