"""The end of a run: the model card every script writes into its output folder, and what --push_to_hub
uploads (checked offline: the Hub client is replaced by a recorder)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, tiny_config
from transformers import BertModel

import prefix_models as pm
import run_glue
from prefix_models.scripts import cards

GLUE = FIXTURES / "glue_data"
COMMON = ["--use_cpu", "--report_to", "none", "--per_device_train_batch_size", "4", "--save_strategy", "epoch"]
COMMON += ["--disable_tqdm", "true", "--num_train_epochs", "1", "--do_train", "--do_eval", "--seed", "0"]
COMMON += ["--eval_strategy", "epoch"]


def metadata_and_text(card: str) -> tuple[dict, str]:
    _, front, text = card.split("---\n", 2)
    return yaml.safe_load(front), text


@pytest.fixture
def prefix_run(tiny_model, tmp_path, caplog):
    argv = ["--model_name_or_path", str(tiny_model), "--output_dir", str(tmp_path / "out"), *COMMON]
    argv += ["--task_name", "rte", "--data_dir", str(GLUE), "--prefix", "--pre_seq_len", "5"]
    with caplog.at_level("INFO", logger="prefix_models"):
        results = run_glue.main(argv)
    assert f"Plot this run: python -m prefix_models.report {tmp_path / 'out'}" in caplog.text
    return argv, results, tmp_path / "out"


def test_a_prefix_run_leaves_a_card_that_says_what_it_holds(prefix_run):
    argv, results, out = prefix_run
    metadata, text = metadata_and_text((out / "README.md").read_text())
    assert metadata["library_name"] == "prefix-models"
    assert {"prefix-models", "prefix-tuning", "p-tuning-v2"} <= set(metadata["tags"])
    assert metadata["pipeline_tag"] == "text-classification"
    assert "base_model" not in metadata  # a local folder is no hub id: it is named in the text
    model = pm.AutoPrefixModelForSequenceClassification.from_pretrained(out)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert f"| trainable parameters | {trainable:,} of {total:,}" in text
    # A local folder by its name (a machine's path stays out of the card); a path below the working directory as such.
    assert f"| base model | `{Path(model.config.base_model_name_or_path).name}` (a local folder) |" in text
    assert "| `pre_seq_len` | 5 |" in text and "| method | prefix tuning |" in text
    assert "| task | rte (sequence_classification) |" in text
    assert f"| data_dir data | `{os.path.relpath(GLUE)}` |" in text
    for key in ("eval_accuracy", "train_loss"):
        assert f"| {key} | {results[key]:.4f} |" in text
    command = text.split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert command.startswith("python ") and command.endswith(" ".join(argv[-3:]))
    assert f"--data_dir {os.path.relpath(GLUE)} " in command and f"--output_dir {out.name} " in command
    assert "from transformers import AutoModelForSequenceClassification" in text


def test_a_hub_base_is_the_cards_base_model_and_a_stock_run_is_a_transformers_model(base_checkpoints):
    model = pm.AutoPrefixModelForSequenceClassification.from_pretrained(base_checkpoints["Bert"], method="prompt")
    model.config.base_model_name_or_path = "org/tiny-bert"
    card = cards.model_card(model, task="sst2", command="python run_glue.py", metrics={}, dataset="nyu-mll/glue")
    metadata, text = metadata_and_text(card)
    assert metadata["base_model"] == "org/tiny-bert"
    assert metadata["datasets"] == ["nyu-mll/glue"] and "prompt-tuning" in metadata["tags"]
    assert "| dataset | `nyu-mll/glue` |" in text
    stock = BertModel(tiny_config("Bert"))
    stock.config._name_or_path = "org/bert"
    metadata, text = metadata_and_text(cards.model_card(stock, task="x", command="python run_glue.py", metrics={}))
    assert metadata["library_name"] == "transformers" and metadata["base_model"] == "org/bert"
    assert "trust_remote_code" not in text


def test_push_to_hub_uploads_the_prefix_sized_files_only(prefix_run, tiny_model, monkeypatch):
    _, _, out = prefix_run
    files = cards.upload_files(out)
    assert {"README.md", "config.json", "model.safetensors", "modeling_prefix.py", "all_results.json"} <= set(files)
    assert "training_args.bin" not in files and not any(name.startswith("checkpoint-") for name in files)
    assert any(path.name.startswith("checkpoint-") for path in out.iterdir())  # there, and left out
    backbone = (Path(tiny_model) / "model.safetensors").stat().st_size
    assert (out / "model.safetensors").stat().st_size < backbone / 4

    calls = {}

    class Recorder:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["repo"] = (repo_id, private, exist_ok)
            return type("Repo", (), {"repo_id": f"user/{repo_id}"})()

        def upload_folder(self, **kwargs):
            calls["upload"] = kwargs

    monkeypatch.setattr(cards, "HfApi", Recorder)
    trainer = type(
        "T",
        (),
        {
            "args": type(
                "A", (), {"hub_model_id": None, "hub_token": "t", "hub_private_repo": True, "hub_revision": None}
            )()
        },
    )()
    assert cards.push_to_hub(trainer, out) == "user/out"
    assert calls["repo"] == ("out", True, True) and calls["token"] == "t"
    assert calls["upload"]["allow_patterns"] == files and calls["upload"]["folder_path"] == str(out)


def test_an_evaluation_only_run_writes_no_card(tiny_model, tmp_path):
    argv = ["--model_name_or_path", str(tiny_model), "--output_dir", str(tmp_path), "--use_cpu", "--report_to"]
    argv += ["none", "--task_name", "rte", "--data_dir", str(GLUE), "--do_eval", "--prefix"]
    run_glue.main(argv)
    assert json.loads((tmp_path / "all_results.json").read_text())
    assert not (tmp_path / "README.md").exists()


def test_a_run_with_nothing_logged_is_not_pointed_at_the_report(tiny_model, tmp_path, caplog):
    argv = ["--model_name_or_path", str(tiny_model), "--output_dir", str(tmp_path), "--use_cpu", "--report_to"]
    argv += ["none", "--task_name", "rte", "--data_dir", str(GLUE), "--do_train", "--prefix", "--save_strategy", "no"]
    with caplog.at_level("INFO", logger="prefix_models"):
        run_glue.main(argv)  # no evaluation, and fewer steps than --logging_steps: no curve to draw
    assert (tmp_path / "README.md").is_file() and "Plot this run" not in caplog.text
