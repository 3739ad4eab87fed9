"""Reference side of the HTTP server test, run in the project's venv (prefix_models and its transformers):
``python http_references.py OUT`` writes into ``OUT`` a tiny Llama base WITH a tokenizer and a chat template, two
prefix folders for it, and ``OUT/http_cases.json``: every request ``test_http.py`` sends, as the token ids the server
must see, with the greedy tokens of the project's own ``generate`` for it.

The tokenizer is byte-level BPE from ``tests/fixtures/tiny-roberta-tokenizer`` without a post-processor, so text
prompts get no ``<s>`` (id 0, the placeholder id) put first; the chat template is a plain ``role: content`` one.
Base weights are drawn wider than transformers' default (``initializer_range=0.1``) so greedy choices are not
near-ties another kernel could flip; prefixes are drawn at the scale of real keys and values.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import transformers as tf
from references import greedy, prefix_folder
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from prefix_models import AutoPrefixModelForCausalLM

NEW_TOKENS = 8
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "fixtures", "tiny-roberta-tokenizer")
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
# task -> pre_seq_len: one prefix inside a 32-token block, one spanning two blocks
TASKS = {"sentiment": 5, "sql": 40}
TEXTS = ["Hello world, the cat sat on the mat.", "select name from users where", "a"]
TOKEN_PROMPTS = [[44, 73, 80, 80, 83, 16], [300, 201, 77, 99, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]]
CHATS = [
    [{"role": "user", "content": "Is this review positive? I loved it."}],
    [
        {"role": "system", "content": "You write SQL."},
        {"role": "user", "content": "all users older than 30"},
    ],
]


def build_tokenizer(path: str) -> tf.PreTrainedTokenizerFast:
    with open(os.path.join(FIXTURE, "vocab.json"), encoding="utf-8") as handle:
        vocab = json.load(handle)
    with open(os.path.join(FIXTURE, "merges.txt"), encoding="utf-8") as handle:
        merges = [tuple(line.split()) for line in handle.read().splitlines()[1:] if line.strip()]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    return tokenizer


def build_base(path: str, vocab_size: int) -> None:
    torch.manual_seed(0)
    config = tf.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # head_dim 32, the CPU backend's smallest
        max_position_embeddings=512,
        initializer_range=0.1,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
    )
    tf.LlamaForCausalLM(config).save_pretrained(path)


def main(out: str) -> None:
    base = os.path.join(out, "base")
    tokenizer = build_tokenizer(base)
    build_base(base, len(tokenizer))
    folders = {task: os.path.join(out, task) for task in TASKS}
    for seed, (task, length) in enumerate(TASKS.items(), start=1):
        prefix_folder(base, folders[task], length, seed)

    runners = {None: tf.AutoModelForCausalLM.from_pretrained(base).eval()}
    runners.update({task: AutoPrefixModelForCausalLM.from_pretrained(folders[task]).eval() for task in TASKS})

    def case(kind: str, task: str | None, ids: list[int], **request: object) -> dict:
        return {"kind": kind, "task": task, "ids": ids, "tokens": greedy(runners[task], ids, NEW_TOKENS), **request}

    cases = []
    for task in [None, *TASKS]:
        for text in TEXTS:
            cases.append(case("text", task, tokenizer(text).input_ids, prompt=text))
        for ids in TOKEN_PROMPTS:
            cases.append(case("tokens", task, ids, prompt=ids))
        for messages in CHATS:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
            cases.append(case("chat", task, list(ids["input_ids"]), messages=messages))
    with open(os.path.join(out, "http_cases.json"), "w", encoding="utf-8") as handle:
        json.dump(
            {"base": base, "prefixes": folders, "new_tokens": NEW_TOKENS, "cases": cases},
            handle,
            indent=1,
        )


if __name__ == "__main__":
    main(sys.argv[1])
