#!/usr/bin/env python
"""This checkout's prefix models against another checkout's, in one process, interleaved round by round.

    git worktree add /tmp/before <commit>
    python benchmarks/against_tree.py /tmp/before            # BERT-base and SmolLM2-135M shapes (random)
    python benchmarks/against_tree.py /tmp/before --quick    # tiny shapes, seconds

The other tree's ``prefix_models`` is imported under another name (``prefix_models_other``), so both
versions build the same model (same config, same weights, same prefix) and run the same batch in turns:
machine drift between separate runs, which on a shared 2-core VM is as large as a few per cent, hits
both alike. The attention functions both register are the same code when ``injection.py`` did not change
between the trees (the later registration wins); the script refuses to compare otherwise.

Train step: forward + backward of the model's own loss (sequence classification for BERT, causal LM for
SmolLM2). Inference: one forward under ``torch.no_grad``. Prints the median seconds and this tree / other.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import BERT_BASE, SMOLLM2_135M, TINY_BERT, TINY_LLAMA, add_timing_arguments  # noqa: E402

import prefix_models as ours  # noqa: E402

# Where each release keeps the attention function that adds the prefix.
INJECTION_FILES = ("methods/prefix_tuning/injection.py", "injection.py")


def injection_file(package: Path) -> Path:
    found = next((package / name for name in INJECTION_FILES if (package / name).is_file()), None)
    if found is None:
        sys.exit(f"{package} has none of {INJECTION_FILES}")
    return found


def import_other(tree: Path):
    package = tree / "prefix_models"
    if not (package / "__init__.py").is_file():
        sys.exit(f"{tree} holds no prefix_models package")
    if not filecmp.cmp(injection_file(package), injection_file(ROOT / "prefix_models"), shallow=False):
        sys.exit("injection.py differs between the trees: their attention functions would share one registration")
    spec = importlib.util.spec_from_file_location(
        "prefix_models_other", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["prefix_models_other"] = module
    spec.loader.exec_module(module)
    return module


def pair(name: str, quick: bool, other, pre_seq_len: int):
    """The same model built by both trees (our weights copied into theirs)."""
    import transformers as tf

    if name == "bert":
        config = tf.BertConfig(vocab_size=30522, pre_seq_len=pre_seq_len, **(TINY_BERT if quick else BERT_BASE))
        builders = [package.BertPrefixForSequenceClassification for package in (ours, other)]
    else:
        shape = TINY_LLAMA if quick else SMOLLM2_135M
        config = tf.LlamaConfig(max_position_embeddings=2048, pre_seq_len=pre_seq_len, **shape)
        builders = [package.LlamaPrefixForCausalLM for package in (ours, other)]
    torch.manual_seed(0)
    mine = builders[0](config)
    theirs = builders[1](config)
    theirs.load_state_dict(mine.state_dict())
    return mine, theirs


def step(model, measure: str, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
    if measure == "train":
        model.train()
        model.zero_grad(set_to_none=True)
        model(**batch, labels=labels).loss.backward()
        return
    model.eval()
    with torch.no_grad():
        model(**batch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other_tree", type=Path, help="a checkout (e.g. a git worktree of an earlier commit)")
    parser.add_argument("--backbones", nargs="+", default=["bert", "smollm2"], choices=["bert", "smollm2"])
    add_timing_arguments(parser, batch_size=8, quick_help="tiny shapes (a wiring check, seconds)")
    args = parser.parse_args(argv)
    other = import_other(args.other_tree)
    print(f"{'backbone':9} {'measure':10} {'this s':>8} {'other s':>8} {'this/other':>10}")
    for name in args.backbones:
        models = pair(name, args.quick, other, args.pre_seq_len)
        vocab = models[0].config.vocab_size
        torch.manual_seed(1)
        input_ids = torch.randint(5, vocab, (args.batch_size, args.seq_len))
        mask = torch.ones_like(input_ids)
        labels = input_ids if name == "smollm2" else torch.zeros(args.batch_size, dtype=torch.long)
        batch = {"input_ids": input_ids, "attention_mask": mask}

        times = {(measure, side): [] for measure in ("train", "inference") for side in (0, 1)}
        for round_ in range(args.repeats + 2):  # two warm-up rounds
            for measure in ("train", "inference"):
                for side in (0, 1) if round_ % 2 == 0 else (1, 0):
                    start = time.perf_counter()
                    step(models[side], measure, batch, labels)
                    if round_ >= 2:
                        times[measure, side].append(time.perf_counter() - start)
        for measure in ("train", "inference"):
            this, that = (statistics.median(times[measure, side]) for side in (0, 1))
            print(f"{name:9} {measure:10} {this:8.4f} {that:8.4f} {this / that:10.3f}")


if __name__ == "__main__":
    main()
