"""examples/run_clm.py end to end on a tiny GPT-2 and Llama and a small text file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES
from safetensors.torch import load_file
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from prefix_models.scripts.ner.data import read_conll

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_clm", ROOT / "examples" / "run_clm.py")
run_clm = importlib.util.module_from_spec(spec)
sys.modules["run_clm"] = run_clm  # dataclasses look their module up there
spec.loader.exec_module(run_clm)


@pytest.fixture(scope="module")
def tiny_lms(tmp_path_factory) -> dict[str, Path]:
    """Stock GPT-2 / Llama checkpoints (byte-level BPE tokenizer fixture) in local directories."""
    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tiny-roberta-tokenizer")
    common = dict(vocab_size=len(tokenizer), bos_token_id=0, eos_token_id=2, pad_token_id=1, initializer_range=0.2)
    configs = {
        "gpt2": GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common)),
        "llama": LlamaForCausalLM(
            LlamaConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                intermediate_size=64,
                max_position_embeddings=64,
                **common,
            )
        ),
    }
    paths = {}
    for name, model in configs.items():
        paths[name] = tmp_path_factory.mktemp(name)
        model.save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    return paths


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text("\n".join(" ".join(s.tokens) for s in read_conll(FIXTURES / "ner_data" / "train.txt")) + "\n")
    return path


@pytest.mark.parametrize(("family", "method"), [("gpt2", "prefix"), ("llama", "prefix"), ("llama", "prompt")])
def test_prefix_lowers_held_out_perplexity(family, method, tiny_lms, text_file, tmp_path):
    torch.manual_seed(0)
    results = run_clm.main(
        [
            "--model_name_or_path",
            str(tiny_lms[family]),
            "--train_file",
            str(text_file),
            f"--{method}",
            "--pre_seq_len",
            "4",
            "--block_size",
            "32",
            "--do_train",
            "--do_eval",
            "--learning_rate",
            "1e-1",
            "--num_train_epochs",
            "4",
            "--per_device_train_batch_size",
            "8",
            "--output_dir",
            str(tmp_path),
            "--use_cpu",
            "--report_to",
            "none",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
            "--seed",
            "0",
        ]
    )
    assert results["perplexity"] < 0.9 * results["perplexity_before"]
    saved = load_file(tmp_path / "model.safetensors")
    assert saved and all(key.startswith(f"{method}_encoder.") for key in saved)


def test_bad_flags(tiny_lms, text_file, tmp_path):
    base = ["--model_name_or_path", str(tiny_lms["gpt2"]), "--output_dir", str(tmp_path), "--use_cpu"]
    with pytest.raises(ValueError, match="--head_only does not apply to causal language models"):
        run_clm.main([*base, "--train_file", str(text_file), "--head_only"])
    with pytest.raises(ValueError, match="give --train_file"):
        run_clm.main(base)
    with pytest.raises(ValueError, match=r"--block_size 65 is longer than the model's context \(64 positions\)"):
        run_clm.main([*base, "--train_file", str(text_file), "--prefix", "--pre_seq_len", "4", "--block_size", "65"])


def test_a_finished_run_is_not_trained_again(tiny_lms, text_file, tmp_path):
    args = [
        "--model_name_or_path",
        str(tiny_lms["gpt2"]),
        "--train_file",
        str(text_file),
        "--prefix",
        "--pre_seq_len",
        "4",
        "--block_size",
        "16",
        "--do_train",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "1",
        "--save_steps",
        "1",
        "--output_dir",
        str(tmp_path),
        "--use_cpu",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    run_clm.main(args)
    before = {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}
    with pytest.raises(ValueError, match=r"holds a finished run \(trained 2 of 2 steps"):
        run_clm.main(args)
    assert {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()} == before
