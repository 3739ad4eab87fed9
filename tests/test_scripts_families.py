"""run_glue.py and run_ner.py on every encoder family's checkpoint folder (tiny random weights, the tiny
BERT tokenizer; families without token types get a tokenizer that produces none, as their own do)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES
from safetensors import safe_open
from tiny_families import ENCODER_CONFIGS, NO_TOKEN_TYPES
from transformers import AutoModel, AutoTokenizer

import run_glue
import run_ner

SCRIPT_FAMILIES = ("XLMRoberta", "Electra", "DistilBert", "Albert", "ModernBert", "DebertaV2", "MPNet")
COMMON = [
    "--use_cpu",
    "--report_to",
    "none",
    "--per_device_train_batch_size",
    "8",
    "--seed",
    "0",
    "--save_strategy",
    "no",
    "--disable_tqdm",
    "true",
    "--max_seq_length",
    "24",
]


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory) -> dict[str, Path]:
    folders = {}
    for family in SCRIPT_FAMILIES:
        path = tmp_path_factory.mktemp(family)
        torch.manual_seed(0)
        AutoModel.from_config(ENCODER_CONFIGS[family](max_position_embeddings=64)).save_pretrained(path)
        names = {"model_input_names": ["input_ids", "attention_mask"]} if family in NO_TOKEN_TYPES else {}
        AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer", **names).save_pretrained(path)
        folders[family] = path
    return folders


@pytest.mark.parametrize("family", SCRIPT_FAMILIES)
def test_run_glue_and_run_ner_take_every_encoder_family(family, family_folders, tmp_path):
    folder = family_folders[family]
    glue = run_glue.main(
        [
            "--model_name_or_path",
            str(folder),
            "--output_dir",
            str(tmp_path / "glue"),
            "--task_name",
            "rte",
            "--data_dir",
            str(FIXTURES / "glue_data" / "RTE"),
            "--prefix",
            "--pre_seq_len",
            "4",
            "--do_train",
            "--do_eval",
            "--max_steps",
            "2",
            *COMMON,
        ]
    )
    assert 0.0 <= glue["eval_accuracy"] <= 1.0
    ner = run_ner.main(
        [
            "--model_name_or_path",
            str(folder),
            "--output_dir",
            str(tmp_path / "ner"),
            "--data_dir",
            str(FIXTURES / "ner_data"),
            "--prompt",
            "--pre_seq_len",
            "4",
            "--do_train",
            "--do_eval",
            "--max_steps",
            "2",
            *COMMON,
        ]
    )
    assert 0.0 <= ner["eval_f1"] <= 1.0
    for output, method in ((tmp_path / "glue", "prefix"), (tmp_path / "ner", "prompt")):
        config = json.loads((output / "config.json").read_text())
        assert config["model_type"] == f"{ENCODER_CONFIGS[family]().model_type}_{method}"
        with safe_open(output / "model.safetensors", "pt") as handle:  # prefix/prompt + head only
            assert all(key.startswith((f"{method}_encoder.", "classifier.")) for key in handle.keys())
