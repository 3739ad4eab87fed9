"""Reference side of the serving tests, run in the project's venv (prefix_models and its transformers):
``python references.py OUT`` writes tiny base models, prefix folders and the greedy tokens of the project's own
``generate`` for every request into ``OUT`` (``OUT/cases.json`` says where everything is).

The vLLM side (``test_engine.py``, in vLLM's venv) serves the same folders and must produce the same tokens.
Base weights are drawn wider than transformers' default (``initializer_range=0.1``) so greedy choices are not
near-ties a different kernel could flip; prefixes are drawn at the scale of real keys and values.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import transformers as tf

from prefix_models import AutoPrefixModelForCausalLM

NEW_TOKENS = 10
VOCAB = 256
_GEOMETRY = dict(vocab_size=VOCAB, initializer_range=0.1, bos_token_id=1, eos_token_id=2, pad_token_id=3)
_LLAMA_SHAPE = dict(
    **_GEOMETRY,
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
)
BASES = {
    # grouped-query attention (4 query heads, 2 key/value heads), head_dim 32 (the CPU backend's smallest)
    "llama": lambda: tf.LlamaConfig(**_LLAMA_SHAPE),
    # q/k/v biases, one key/value head, YaRN scaling (its attention factor must not reach the prefix keys)
    "qwen2": lambda: tf.Qwen2Config(
        **_GEOMETRY,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=512,
        use_sliding_window=False,
        rope_parameters={
            "rope_type": "yarn",
            "factor": 2.0,
            "original_max_position_embeddings": 256,
            "rope_theta": 10000.0,
        },
    ),
    # learned absolute positions: served with virtual_token_positions="peft"
    "gpt2": lambda: tf.GPT2Config(**_GEOMETRY, n_embd=128, n_head=4, n_layer=2, n_positions=512),
    # q/k normalised before the rotary embedding
    "qwen3": lambda: tf.Qwen3Config(**_LLAMA_SHAPE, head_dim=32),
    # an interleaved rotary embedding (pairs of neighbouring dimensions turn), q/k/v without biases
    "cohere": lambda: tf.CohereConfig(**_LLAMA_SHAPE),
}
# task -> (pre_seq_len, extra fields); lengths from 1 to 128, blocks of 32 crossed and not; prompt tuning too
TASKS = {
    "llama": {
        "p1": (1, {}),
        "p16": (16, {}),
        "p33proj": (33, {"prefix_projection": True, "prefix_hidden_size": 64}),
        "p128": (128, {}),
        "peft8": (8, {"virtual_token_positions": "peft"}),
        "prompt4": (4, {"method": "prompt"}),
        "prompt20peft": (20, {"method": "prompt", "virtual_token_positions": "peft"}),
    },
    "qwen2": {
        "p1": (1, {}),
        "p3": (3, {}),
        "p32": (32, {}),
        "p128": (128, {}),
        "prompt5": (5, {"method": "prompt"}),
    },
    "gpt2": {
        "peft1": (1, {"virtual_token_positions": "peft"}),
        "peft40": (40, {"virtual_token_positions": "peft"}),
        "peft128": (128, {"virtual_token_positions": "peft"}),
        "prompt6peft": (6, {"method": "prompt", "virtual_token_positions": "peft"}),
    },
    "qwen3": {"p7": (7, {}), "p64": (64, {}), "prompt3": (3, {"method": "prompt"})},
    "cohere": {"p9": (9, {}), "p40": (40, {}), "peft5": (5, {"virtual_token_positions": "peft"})},
}
# The named task a save_prefix folder holds (saved from the llama model of task "p16").
SAVED_PREFIX = ("named5", 5)
PROMPTS = [[5, 17, 33, 9], [100, *range(7, 33), *range(34, 43)], [42]]


def _randomise_prefix(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and ("prefix" in name or "prompt" in name):
                scale = 1.0 if parameter.dim() == 2 and "embedding" in name else 0.2
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


def build_base(family: str, path: str, seed: int = 0) -> None:
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(BASES[family]())
    with torch.no_grad():  # biases start at zero: draw them, so a family's q/k/v biases matter
        for name, parameter in model.named_parameters():
            if name.endswith(".bias") and "norm" not in name and "ln" not in name:
                parameter.normal_(0.0, 0.1)
    model.save_pretrained(path)


def prefix_folder(base: str, path: str, pre_seq_len: int, seed: int, **fields) -> None:
    model = AutoPrefixModelForCausalLM.from_pretrained(base, pre_seq_len=pre_seq_len, **fields)
    _randomise_prefix(model, seed)
    model.save_pretrained(path)


@torch.no_grad()
def greedy(model: torch.nn.Module, prompt: list[int], new_tokens: int = NEW_TOKENS) -> list[int]:
    """The project's greedy ``new_tokens`` after ``prompt`` (exactly that many: end-of-text does not stop it)."""
    ids = torch.tensor([prompt])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        pad_token_id=model.config.pad_token_id,
    )
    return out[0, len(prompt) :].tolist()


def family_case(out: str, family: str) -> dict:
    base = os.path.join(out, family, "base")
    build_base(family, base)
    tasks = {}
    for seed, (task, (length, fields)) in enumerate(TASKS[family].items(), start=1):
        tasks[task] = os.path.join(out, family, task)
        prefix_folder(base, tasks[task], length, seed, **fields)
    if family == "llama":  # a save_prefix folder: one named task of a model that holds several
        name, length = SAVED_PREFIX
        model = AutoPrefixModelForCausalLM.from_pretrained(tasks["p16"])
        model.add_prefix(name, pre_seq_len=length)
        _randomise_prefix(model, 99)
        tasks[name] = os.path.join(out, family, name)
        model.save_prefix(name, tasks[name])
    requests = [(task, prompt) for task in [*tasks, None] for prompt in PROMPTS]
    models = {task: AutoPrefixModelForCausalLM.from_pretrained(path).eval() for task, path in tasks.items()}
    models[None] = tf.AutoModelForCausalLM.from_pretrained(base).eval()
    tokens = [greedy(models[task], prompt) for task, prompt in requests]
    return {
        "base": base,
        "tasks": tasks,
        "requests": [{"task": task, "prompt": prompt} for task, prompt in requests],
        "tokens": tokens,
        "new_tokens": NEW_TOKENS,
    }


def refusal_folders(out: str, llama_base: str) -> dict[str, dict]:
    """Folders every one of which the connector must refuse on the llama engine (or the named base), with a phrase
    its one-line message must contain."""
    root = os.path.join(out, "refusals")
    cases: dict[str, dict] = {}

    def case(name: str, phrase: str, base: str = llama_base) -> str:
        cases[name] = {"folder": os.path.join(root, name), "base": base, "phrase": phrase}
        return cases[name]["folder"]

    prefix_folder(llama_base, case("partial_layers", "only prefixes on every layer"), 4, 1, prefix_layers=[1])
    other = os.path.join(root, "other_base")
    build_base("llama", other, seed=7)
    prefix_folder(other, case("other_base", "base_model_fingerprint"), 4, 1)
    deeper = os.path.join(root, "deeper_base")
    torch.manual_seed(0)
    tf.LlamaForCausalLM(tf.LlamaConfig(**{**BASES["llama"]().to_dict(), "num_hidden_layers": 3})).save_pretrained(
        deeper
    )
    prefix_folder(deeper, case("other_shape", "another shape"), 4, 1)
    gpt2_base = os.path.join(root, "gpt2_base")
    build_base("gpt2", gpt2_base)
    prefix_folder(gpt2_base, case("absolute_positions", "learned absolute positions", base=gpt2_base), 4, 1)
    mistral = os.path.join(root, "mistral_base")
    torch.manual_seed(0)
    tf.MistralForCausalLM(tf.MistralConfig(**{**BASES["llama"]().to_dict(), "sliding_window": 64})).save_pretrained(
        mistral
    )
    prefix_folder(mistral, case("sliding_window", "sliding window", base=mistral), 4, 1)
    olmo2 = os.path.join(root, "olmo2_base")  # vLLM has no OLMo2 of its own: its Transformers backend runs it
    torch.manual_seed(0)
    tf.Olmo2ForCausalLM(tf.Olmo2Config(**_LLAMA_SHAPE)).save_pretrained(olmo2)
    prefix_folder(olmo2, case("transformers_backend", "Transformers backend", base=olmo2), 4, 1)
    bert = tf.BertConfig(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    bert_base = os.path.join(root, "bert_base")
    tf.BertModel(bert).save_pretrained(bert_base)
    from prefix_models import AutoPrefixModelForSeq2SeqLM, AutoPrefixModelForSequenceClassification

    AutoPrefixModelForSequenceClassification.from_pretrained(bert_base, pre_seq_len=4).save_pretrained(
        case("encoder_only", "not a causal-LM one")
    )
    t5 = tf.T5Config(
        vocab_size=VOCAB, d_model=64, d_kv=32, d_ff=64, num_layers=2, num_heads=2, decoder_start_token_id=0
    )
    t5_base = os.path.join(root, "t5_base")
    tf.T5ForConditionalGeneration(t5).save_pretrained(t5_base)
    AutoPrefixModelForSeq2SeqLM.from_pretrained(t5_base, pre_seq_len=4).save_pretrained(
        case("encoder_decoder", "encoder-decoder")
    )
    case("not_a_prefix", "is not a prefix saved by prefix-models")
    os.makedirs(cases["not_a_prefix"]["folder"])
    tf.AutoModelForCausalLM.from_pretrained(llama_base).save_pretrained(cases["not_a_prefix"]["folder"])
    model = AutoPrefixModelForCausalLM.from_pretrained(llama_base, pre_seq_len=4)
    model.save_pretrained(case("full_save", "a full save"), save_base_model=True)
    case("missing", "is not a folder")
    return cases


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    families = {family: family_case(out, family) for family in BASES}
    cases = {"families": families, "refusals": refusal_folders(out, families["llama"]["base"])}
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as handle:
        json.dump(cases, handle, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python references.py OUT")
    main(sys.argv[1])
