"""examples/run_seq2seq.py end to end, offline: a tiny BART with the tiny byte-level BPE tokenizer learns the
shipped movie reviews cast as text -> label generation through Seq2SeqTrainer."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES
from safetensors import safe_open
from tiny_families import SEQ2SEQ_CONFIGS
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import prefix_models as pm

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "examples" / "data" / "movie_reviews"
SCRIPT = ROOT / "examples" / "run_seq2seq.py"


def script():
    spec = importlib.util.spec_from_file_location("run_seq2seq", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_seq2seq"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-bart")
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tiny-roberta-tokenizer")
    torch.manual_seed(0)
    config = SEQ2SEQ_CONFIGS["Bart"](vocab_size=len(tokenizer), max_position_embeddings=64)
    AutoModelForSeq2SeqLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def run(model: Path, output_dir: Path, *args: str) -> dict:
    argv = [
        "--model_name_or_path",
        str(model),
        "--output_dir",
        str(output_dir),
        "--use_cpu",
        "--report_to",
        "none",
        "--train_file",
        str(REVIEWS / "train.csv"),
        "--validation_file",
        str(REVIEWS / "validation.csv"),
        "--test_file",
        str(REVIEWS / "test.csv"),
        "--text_column",
        "sentence",
        "--summary_column",
        "label",
        "--max_train_samples",
        "64",
        "--max_eval_samples",
        "16",
        "--max_predict_samples",
        "12",
        "--max_source_length",
        "48",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--seed",
        "0",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        *args,
    ]
    return script().main(argv)


def test_prefix_trains_generates_and_saves_a_prefix_only_checkpoint(tiny_bart, tmp_path):
    results = run(
        tiny_bart,
        tmp_path,
        "--prefix",
        "--pre_seq_len",
        "4",
        "--prefix_kinds",
        "encoder",
        "cross",
        "--do_train",
        "--do_eval",
        "--do_predict",
        "--num_train_epochs",
        "1",
        "--learning_rate",
        "1e-2",
    )
    assert 0.0 <= results["eval_exact_match"] <= 1.0 and results["train_loss"] > 0
    assert len((tmp_path / "generated_predictions.txt").read_text().splitlines()) == 12
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert set(handle.keys()) == {"prefix_encoder.embedding.weight"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bart_prefix" and config["prefix_kinds"] == ["encoder", "cross"]
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert isinstance(model, pm.BartPrefixForConditionalGeneration)
    assert list(model.get_prompt_by_kind(1)) == ["encoder", "cross"]


def test_prompt_trains_and_saves_the_soft_tokens_only(tiny_bart, tmp_path):
    results = run(
        tiny_bart,
        tmp_path,
        "--prompt",
        "--pre_seq_len",
        "4",
        "--do_train",
        "--do_eval",
        "--num_train_epochs",
        "1",
        "--learning_rate",
        "1e-2",
    )
    assert 0.0 <= results["eval_exact_match"] <= 1.0
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert set(handle.keys()) == {"prompt_encoder.embedding.weight"}
    assert isinstance(AutoModelForSeq2SeqLM.from_pretrained(tmp_path), pm.BartPromptForConditionalGeneration)


def test_full_fine_tuning_learns_to_spell_the_labels(tiny_bart, tmp_path):
    results = run(
        tiny_bart,
        tmp_path,
        "--do_train",
        "--do_eval",
        "--do_predict",
        "--num_train_epochs",
        "10",
        "--learning_rate",
        "1e-2",
        "--max_train_samples",
        "160",
    )
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
