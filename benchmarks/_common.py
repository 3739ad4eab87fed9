"""What the benchmark scripts share: the tiny shapes of their ``--quick`` runs, the timing flags, the closing flags
of the training commands they start, and writing a report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def shape(hidden: int, layers: int, heads: int, intermediate: int, **more: int) -> dict[str, int]:
    """Config keyword arguments for a model's shape (the benchmarks build random weights of real shapes)."""
    return dict(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate, **more
    )


# The --quick models: two layers of width 32, built and run in seconds (a wiring check, not a measurement).
TINY_BERT = shape(32, 2, 4, 64)
TINY_LLAMA = {**TINY_BERT, "num_key_value_heads": 2, "vocab_size": 500}
# The measured shapes: BERT-base and SmolLM2-135M (a Llama).
BERT_BASE = shape(768, 12, 12, 3072)
SMOLLM2_135M = shape(576, 30, 9, 1536, num_key_value_heads=3, vocab_size=49152)


def add_timing_arguments(parser: argparse.ArgumentParser, batch_size: int, quick_help: str) -> None:
    """The batch, its length, the prefix length, the timed rounds and ``--quick``, as the timing scripts take them."""
    parser.add_argument("--batch_size", type=int, default=batch_size)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--pre_seq_len", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help=quick_help)


def output_flags(output_dir: Path) -> list[str]:
    """The last flags of a training command: nothing reported, no progress bars, ``output_dir`` written afresh."""
    return ["--report_to", "none", "--disable_tqdm", "true", "--output_dir", str(output_dir), "--overwrite_output_dir"]


def write_json(path: Path | str, report: dict) -> None:
    """``report`` as indented JSON at ``path``, its folder made if need be."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
