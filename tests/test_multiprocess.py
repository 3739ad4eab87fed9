"""Data-parallel training on CPU (gloo): 2 processes x per-device batch b train the same prefix as
1 process x batch 2b (same seed, same data)."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, save_checkpoint, tiny_config
from safetensors.torch import load_file
from script_runs import run_launched, script_args, torchrun
from transformers import BertModel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def no_dropout_model(tmp_path_factory) -> Path:
    # Dropout draws differ across processes; without it both setups compute the same gradients.
    config = tiny_config("Bert", max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return save_checkpoint(tmp_path_factory.mktemp("tiny-bert-no-dropout"), lambda _: BertModel(config))


# What every setup compared here trains: four steps of a four-token prefix.
FOUR_STEPS = {"prefix": True, "pre_seq_len": 4, "do_train": True, "max_steps": 4, "learning_rate": 1e-2}
# Half the batch, two steps accumulated: the same examples per optimizer step as a batch of 8.
ACCUMULATED = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}


def write_data(folder: Path) -> Path:
    rows = [
        ("good fun film", "positive"),
        ("bad dull movie", "negative"),
        ("great acting", "positive"),
        ("awful boring plot", "negative"),
        ("nice clever story", "positive"),
        ("weak silly script", "negative"),
        ("brilliant music", "positive"),
        ("terrible ending", "negative"),
    ]
    path = folder / "train.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows(rows)
    return path


def train(
    model: Path, data: Path, output_dir: Path, processes: int, batch_size: int, launcher_name: str = "torchrun"
) -> dict[str, torch.Tensor]:
    # The 8 examples are one global batch, so every step sees all of them in either setup.
    args = script_args(model, output_dir, train_file=data, **FOUR_STEPS, per_device_train_batch_size=batch_size)
    port = str(29500 + os.getpid() % 1000 + processes + (50 if launcher_name == "accelerate" else 0))
    if launcher_name == "torchrun":
        launcher = torchrun(processes, port)
    else:  # accelerate's multi-process launcher; --use_cpu and gloo keep it on the CPU
        launcher = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            port,
        ]
    script = [str(ROOT / "run_glue.py"), *args]
    run_launched([*launcher, *script, "--ddp_backend", "gloo"] if processes > 1 else [sys.executable, *script])
    return load_file(output_dir / "model.safetensors")


@pytest.mark.parametrize("launcher_name", ["torchrun", "accelerate"])
def test_two_processes_train_the_same_prefix_as_one(launcher_name, no_dropout_model, tmp_path):
    data = write_data(tmp_path)
    single = train(no_dropout_model, data, tmp_path / "single", processes=1, batch_size=8)
    double = train(no_dropout_model, data, tmp_path / "double", processes=2, batch_size=4, launcher_name=launcher_name)
    assert single.keys() == double.keys()
    start = load_file(no_dropout_model / "model.safetensors")  # the prefix moved: training happened
    assert "prefix_encoder.embedding.weight" in single and not any(k.startswith("prefix") for k in start)
    for key in single:
        torch.testing.assert_close(double[key], single[key], rtol=0, atol=1e-5)


def test_gradient_accumulation_equals_the_larger_batch(no_dropout_model, tmp_path):
    import run_glue

    data = write_data(tmp_path)
    for name, batches in (("big", {"per_device_train_batch_size": 8}), ("accumulated", ACCUMULATED)):
        run_glue.main(script_args(no_dropout_model, tmp_path / name, train_file=data, **FOUR_STEPS, **batches))
    big, accumulated = (
        load_file(tmp_path / "big" / "model.safetensors"),
        load_file(tmp_path / "accumulated" / "model.safetensors"),
    )
    for key in big:
        torch.testing.assert_close(accumulated[key], big[key], rtol=0, atol=1e-5)


def test_run_ner_under_torchrun(no_dropout_model, tmp_path):
    from prefix_models.scripts.ner.data import read_conll

    ner = FIXTURES / "ner_data"
    options = {
        "data_dir": ner,
        "prefix": True,
        "pre_seq_len": 4,
        "do_train": True,
        "do_eval": True,
        "do_predict": True,
        "max_steps": 3,
        "per_device_train_batch_size": 8,
        "max_seq_length": 16,
        "ddp_backend": "gloo",
    }
    script = [str(ROOT / "run_ner.py"), *script_args(no_dropout_model, tmp_path, **options)]
    run_launched([*torchrun(2, 29700 + os.getpid() % 1000), *script])
    # Gathered across both processes: every test word predicted exactly once, in order.
    predicted = read_conll(tmp_path / "predictions.txt")
    assert [s.tokens for s in predicted] == [s.tokens for s in read_conll(ner / "test.txt")]
    assert json.loads((tmp_path / "all_results.json").read_text())["eval_samples"] == 40
