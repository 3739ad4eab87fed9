"""examples/run_clm.py end to end on a tiny GPT-2 and Llama and a small text file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, save_checkpoint
from safetensors.torch import load_file
from script_runs import (
    MERGED_MLP_RUN,
    TWO_SAVED_STEPS,
    assert_a_finished_run_is_left_alone,
    assert_the_mlp_was_folded,
    load_example,
    model_card,
    script_args,
    two_sentences,
)
from tiny_families import DECODER_CONFIGS
from transformers import AutoModelForCausalLM

from prefix_models.scripts.ner.data import read_conll

run_clm = load_example("run_clm")


@pytest.fixture(scope="module")
def tiny_lms(tmp_path_factory) -> dict[str, Path]:
    """Stock GPT-2 / Llama checkpoints (byte-level BPE tokenizer fixture) in local directories."""

    def build(family: str, **shape: int):
        def model(tokenizer):
            special = dict(bos_token_id=0, eos_token_id=2, pad_token_id=1, initializer_range=0.2)
            config = DECODER_CONFIGS[family](vocab_size=len(tokenizer), **special, **shape)
            return AutoModelForCausalLM.from_config(config)

        return model

    builders = {
        "gpt2": build("GPT2", n_positions=64),
        "llama": build("Llama", intermediate_size=64, max_position_embeddings=64),
    }
    return {
        name: save_checkpoint(tmp_path_factory.mktemp(name), model, "tiny-roberta-tokenizer")
        for name, model in builders.items()
    }


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text("\n".join(" ".join(s.tokens) for s in read_conll(FIXTURES / "ner_data" / "train.txt")) + "\n")
    return path


@pytest.mark.parametrize(("family", "method"), [("gpt2", "prefix"), ("llama", "prefix"), ("llama", "prompt")])
def test_prefix_lowers_held_out_perplexity(family, method, tiny_lms, text_file, tmp_path):
    torch.manual_seed(0)
    results = run_clm.main(
        script_args(
            tiny_lms[family],
            tmp_path,
            f"--{method}",
            train_file=text_file,
            pre_seq_len=4,
            block_size=32,
            do_train=True,
            do_eval=True,
            learning_rate=1e-1,
            num_train_epochs=4,
            per_device_train_batch_size=8,
        )
    )
    assert results["perplexity"] < 0.9 * results["perplexity_before"]
    saved = load_file(tmp_path / "model.safetensors")
    assert saved and all(key.startswith(f"{method}_encoder.") for key in saved)
    metadata, _ = model_card(tmp_path)
    assert metadata["pipeline_tag"] == "text-generation" and f"{method}-tuning" in metadata["tags"]


def test_merge_prefix_projection_saves_the_table_the_mlp_computes(tiny_lms, text_file, tmp_path):
    from prefix_models import AutoPrefixModelForCausalLM

    run_clm.main(
        script_args(tiny_lms["llama"], tmp_path, train_file=text_file, pre_seq_len=4, block_size=16, **MERGED_MLP_RUN)
    )
    # the tiny Llama's bos/eos/pad are 0/2/1; any ids of the tiny vocabulary would do
    assert_the_mlp_was_folded(tmp_path, AutoPrefixModelForCausalLM, **two_sentences(bos=0, eos=2, pad=1))


def test_bad_flags(tiny_lms, text_file, tmp_path):
    base = ["--model_name_or_path", str(tiny_lms["gpt2"]), "--output_dir", str(tmp_path), "--use_cpu"]
    with pytest.raises(ValueError, match="--head_only does not apply to causal language models"):
        run_clm.main([*base, "--train_file", str(text_file), "--head_only"])
    with pytest.raises(ValueError, match="give --train_file"):
        run_clm.main(base)
    with pytest.raises(ValueError, match=r"--block_size 65 is longer than the model's context \(64 positions\)"):
        run_clm.main([*base, "--train_file", str(text_file), "--prefix", "--pre_seq_len", "4", "--block_size", "65"])


def test_a_finished_run_is_not_trained_again(tiny_lms, text_file, tmp_path):
    args = script_args(
        tiny_lms["gpt2"], tmp_path, train_file=text_file, prefix=True, pre_seq_len=4, block_size=16, **TWO_SAVED_STEPS
    )
    assert_a_finished_run_is_left_alone(run_clm.main, args, tmp_path)
