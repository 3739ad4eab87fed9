"""run_glue.py and run_ner.py on every encoder family's checkpoint folder (tiny random weights, the tiny
BERT tokenizer; families without token types get a tokenizer that produces none, as their own do)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, save_checkpoint
from safetensors import safe_open
from script_runs import script_args
from tiny_families import ENCODER_CONFIGS, NO_TOKEN_TYPES
from transformers import AutoModel

import run_glue
import run_ner

SCRIPT_FAMILIES = ("XLMRoberta", "Electra", "DistilBert", "Albert", "ModernBert", "DebertaV2", "MPNet")
# Two steps of training and an evaluation of 24-token inputs, with a method's four virtual tokens.
TWO_STEPS = {
    "pre_seq_len": 4,
    "do_train": True,
    "do_eval": True,
    "max_steps": 2,
    "per_device_train_batch_size": 8,
    "max_seq_length": 24,
}


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory) -> dict[str, Path]:
    folders = {}
    for family in SCRIPT_FAMILIES:
        names = {"model_input_names": ["input_ids", "attention_mask"]} if family in NO_TOKEN_TYPES else {}
        config = ENCODER_CONFIGS[family](max_position_embeddings=64)
        folder = tmp_path_factory.mktemp(family)
        folders[family] = save_checkpoint(folder, lambda _, config=config: AutoModel.from_config(config), **names)
    return folders


@pytest.mark.parametrize("family", SCRIPT_FAMILIES)
def test_run_glue_and_run_ner_take_every_encoder_family(family, family_folders, tmp_path):
    folder = family_folders[family]
    rte = {"task_name": "rte", "data_dir": FIXTURES / "glue_data" / "RTE"}
    glue = run_glue.main(script_args(folder, tmp_path / "glue", **rte, prefix=True, **TWO_STEPS))
    assert 0.0 <= glue["eval_accuracy"] <= 1.0
    ner = run_ner.main(script_args(folder, tmp_path / "ner", data_dir=FIXTURES / "ner_data", prompt=True, **TWO_STEPS))
    assert 0.0 <= ner["eval_f1"] <= 1.0
    for output, method in ((tmp_path / "glue", "prefix"), (tmp_path / "ner", "prompt")):
        config = json.loads((output / "config.json").read_text())
        assert config["model_type"] == f"{ENCODER_CONFIGS[family]().model_type}_{method}"
        with safe_open(output / "model.safetensors", "pt") as handle:  # prefix/prompt + head only
            assert all(key.startswith((f"{method}_encoder.", "classifier.")) for key in handle.keys())
