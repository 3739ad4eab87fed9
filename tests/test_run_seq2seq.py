"""examples/run_seq2seq.py end to end, offline: a tiny BART with the tiny byte-level BPE tokenizer learns the
shipped movie reviews cast as text -> label generation through Seq2SeqTrainer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import save_checkpoint
from safetensors import safe_open
from script_runs import EVERY_PHASE, load_example, model_card, script_args
from tiny_families import SEQ2SEQ_CONFIGS
from transformers import AutoModelForSeq2SeqLM

import prefix_models as pm

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "examples" / "data" / "movie_reviews"
SCRIPT = ROOT / "examples" / "run_seq2seq.py"


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory) -> Path:
    return save_checkpoint(
        tmp_path_factory.mktemp("tiny-bart"),
        lambda tokenizer: AutoModelForSeq2SeqLM.from_config(
            SEQ2SEQ_CONFIGS["Bart"](vocab_size=len(tokenizer), max_position_embeddings=64)
        ),
        "tiny-roberta-tokenizer",
    )


# The shipped reviews, cut down: 64 to train on, 16 to evaluate, 12 to predict.
REVIEWS_RUN = {
    "train_file": REVIEWS / "train.csv",
    "validation_file": REVIEWS / "validation.csv",
    "test_file": REVIEWS / "test.csv",
    "text_column": "sentence",
    "summary_column": "label",
    "max_train_samples": 64,
    "max_eval_samples": 16,
    "max_predict_samples": 12,
    "max_source_length": 48,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
}


# One epoch of a method's four virtual tokens at a step size that moves them, then the dev split scored.
ONE_EPOCH = {"pre_seq_len": 4, "do_train": True, "do_eval": True, "num_train_epochs": 1, "learning_rate": 1e-2}


def run(model: Path, output_dir: Path, *args: str, **options: object) -> dict:
    return load_example("run_seq2seq").main(script_args(model, output_dir, *args, **{**REVIEWS_RUN, **options}))


def test_prefix_trains_generates_and_saves_a_prefix_only_checkpoint(tiny_bart, tmp_path):
    results = run(tiny_bart, tmp_path, prefix=True, prefix_kinds=["encoder", "cross"], do_predict=True, **ONE_EPOCH)
    assert 0.0 <= results["eval_exact_match"] <= 1.0 and results["train_loss"] > 0
    assert len((tmp_path / "generated_predictions.txt").read_text().splitlines()) == 12
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert set(handle.keys()) == {"prefix_encoder.embedding.weight"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bart_prefix" and config["prefix_kinds"] == ["encoder", "cross"]
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert isinstance(model, pm.BartPrefixForConditionalGeneration)
    assert list(model.get_prompt_by_kind(1)) == ["encoder", "cross"]
    assert model_card(tmp_path)[0]["pipeline_tag"] == "text2text-generation"


def test_prompt_trains_and_saves_the_soft_tokens_only(tiny_bart, tmp_path):
    results = run(tiny_bart, tmp_path, prompt=True, **ONE_EPOCH)
    assert 0.0 <= results["eval_exact_match"] <= 1.0
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert set(handle.keys()) == {"prompt_encoder.embedding.weight"}
    assert isinstance(AutoModelForSeq2SeqLM.from_pretrained(tmp_path), pm.BartPromptForConditionalGeneration)


def test_full_fine_tuning_learns_to_spell_the_labels(tiny_bart, tmp_path):
    results = run(tiny_bart, tmp_path, **EVERY_PHASE, num_train_epochs=10, learning_rate=1e-2, max_train_samples=160)
    # A random tiny backbone cannot learn sentiment from 160 reviews, but it learns to answer in labels:
    # each label is 7 byte-level tokens here, and every generated answer must be one of them, whole.
    generated = (tmp_path / "generated_predictions.txt").read_text().splitlines()
    assert len(generated) == 12 and set(generated) <= {"positive", "negative"}
    assert results["eval_exact_match"] >= 0.4 and results["eval_loss"] < 0.2


def test_bad_flags_exit_with_one_error_line(tiny_bart, tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--model_name_or_path",
            str(tiny_bart),
            "--output_dir",
            str(tmp_path / "out"),
            "--train_file",
            str(REVIEWS / "train.csv"),
            "--prefix_kinds",
            "cross",
            "--do_train",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1] == "run_seq2seq.py: error: --prefix_kinds applies to --prefix"
    assert not (tmp_path / "out").exists()
