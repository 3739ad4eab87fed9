"""Transfer: ``from_pretrained(base, prefix_init_from=DIR)`` and the scripts' ``--prefix_init_from`` start a new
task's prefix (or prompt) from a saved one, with a fresh head; a saved prefix that cannot start it is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, randomised, tiny_config
from safetensors.torch import load_file
from script_runs import help_text, model_card, script_args
from transformers import BertModel

import prefix_models as pm
import run_glue
from prefix_models.scripts.runs import run_script

Seq = pm.AutoPrefixModelForSequenceClassification
Tokens = pm.AutoPrefixModelForTokenClassification


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT, and another of the same shape with other weights."""
    root = tmp_path_factory.mktemp("transfer-bases")
    for name, seed in (("base", 0), ("other", 1)):
        torch.manual_seed(seed)
        BertModel(tiny_config("Bert")).save_pretrained(root / name)
    return {"base": root / "base", "other": root / "other"}


def saved(model, folder: Path, how: str) -> Path:
    """``model``'s prefix and head saved as ``how`` says: a run folder (``save_pretrained``) or a one-task folder as
    ``run_multitask.py`` writes ``prefixes/<task>`` (``save_prefix``)."""
    if how == "save_pretrained":
        model.save_pretrained(folder)
    else:
        model.save_prefix("default", folder)
    return folder


def inputs() -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 90, (2, 7), generator=torch.Generator().manual_seed(3))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def backbone_output(model) -> torch.Tensor:
    """What the backbone computes with the model's prefix or prompt (the part of the outputs the head reads)."""
    with torch.no_grad():
        return model.base_model(**inputs()).last_hidden_state


@pytest.mark.parametrize("how", ["save_pretrained", "save_prefix"])
@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_a_started_model_reproduces_the_saved_prefix_with_a_fresh_head(method, how, bases, tmp_path):
    source = randomised(Seq.from_pretrained(bases["base"], method=method, pre_seq_len=4, num_labels=2))
    folder = saved(source, tmp_path / "source", how)
    model = Seq.from_pretrained(bases["base"], method=method, pre_seq_len=4, num_labels=5, prefix_init_from=folder)
    model.eval()
    if method == "prefix":
        for (key, value), (saved_key, saved_value) in zip(model.get_prompt(2), source.get_prompt(2), strict=True):
            torch.testing.assert_close(key, saved_key, rtol=0, atol=0)
            torch.testing.assert_close(value, saved_value, rtol=0, atol=0)
    else:
        torch.testing.assert_close(model.prompt_encoder(), source.prompt_encoder(), rtol=0, atol=0)
    torch.testing.assert_close(backbone_output(model), backbone_output(source), rtol=0, atol=0)
    # The head is the new task's own, fresh: five labels where the source had two, and it trains with the prefix.
    assert model.classifier.out_proj.weight.shape[0] == 5 and model.num_labels == 5
    assert all(p.requires_grad for p in getattr(model, f"{method}_encoder").parameters())
    assert model.prefix_init_from == str(folder)
    # Saved, the started model is an ordinary prefix model: its own prefix reloads, no reference to the source.
    model.save_pretrained(tmp_path / "started")
    assert "prefix_init_from" not in json.loads((tmp_path / "started" / "config.json").read_text())


def test_the_saved_head_is_not_used_even_for_the_same_labels(bases, tmp_path):
    source = randomised(Tokens.from_pretrained(bases["base"], pre_seq_len=4, num_labels=3))
    folder = saved(source, tmp_path / "source", "save_pretrained")
    model = Tokens.from_pretrained(bases["base"], pre_seq_len=4, num_labels=3, prefix_init_from=folder)
    torch.testing.assert_close(model.prefix_encoder.embedding.weight, source.prefix_encoder.embedding.weight)
    # randomised() drew the source's head from N(0, 0.5); a fresh head is transformers' small init.
    assert not torch.equal(model.classifier.out_proj.weight, source.classifier.out_proj.weight)
    assert model.classifier.out_proj.weight.std() < 0.1


@pytest.mark.parametrize("task", ["TokenClassification", "QuestionAnswering"])
def test_a_prefix_transfers_to_another_kind_of_task(task, bases, tmp_path):
    """A sequence task's prefix (run_multitask.py's prefixes/<task>) starts a token-level or QA task: only the
    prefix crosses over, so the heads' kinds need not match."""
    source = randomised(Seq.from_pretrained(bases["base"], pre_seq_len=4))
    folder = saved(source, tmp_path / "source", "save_prefix")
    model = getattr(pm, f"AutoPrefixModelFor{task}").from_pretrained(
        bases["base"], pre_seq_len=4, prefix_init_from=folder
    )
    torch.testing.assert_close(backbone_output(model.eval()), backbone_output(source), rtol=0, atol=0)


def test_a_reparameterised_prefix_starts_a_table_from_what_its_mlp_computes_or_an_mlp_of_its_width(bases, tmp_path):
    source = randomised(Seq.from_pretrained(bases["base"], pre_seq_len=4, prefix_projection=True, prefix_hidden_size=8))
    folder = saved(source, tmp_path / "source", "save_pretrained")
    table = Seq.from_pretrained(bases["base"], pre_seq_len=4, prefix_init_from=folder).eval()
    assert not table.config.prefix_projection and not hasattr(table.prefix_encoder, "trans")
    torch.testing.assert_close(table.prefix_encoder(), source.prefix_encoder(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(backbone_output(table), backbone_output(source), rtol=1e-5, atol=1e-5)
    mlp = Seq.from_pretrained(
        bases["base"], pre_seq_len=4, prefix_projection=True, prefix_hidden_size=8, prefix_init_from=folder
    )
    for name, tensor in source.prefix_encoder.state_dict().items():
        torch.testing.assert_close(mlp.prefix_encoder.state_dict()[name], tensor, rtol=0, atol=0)


def test_a_saved_prefix_that_cannot_start_the_model_is_refused_in_one_line(bases, tmp_path):
    source = randomised(Seq.from_pretrained(bases["base"], pre_seq_len=4))
    folder = saved(source, tmp_path / "source", "save_pretrained")
    foreign = saved(randomised(Seq.from_pretrained(bases["other"], pre_seq_len=4)), tmp_path / "foreign", "save_prefix")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "another base": ({"prefix_init_from": foreign}, r"trained on the base model .*other.*base_model_fingerprint"),
        "another method": ({"method": "prompt"}, r"holds a prefix-tuning prefix; this model trains a prompt"),
        "another length": ({"pre_seq_len": 6}, r"holds 4 virtual tokens and this model has pre_seq_len=6"),
        "another depth": ({"prefix_layers": [-1]}, r"prefix_layers=all \(2 attention layers\).*\[-1\] \(1\)"),
        "a stock checkpoint": ({"prefix_init_from": bases["base"]}, r"holds no saved prefix"),
        "an empty folder": ({"prefix_init_from": empty}, r"holds no saved prefix"),
        "a missing folder": ({"prefix_init_from": tmp_path / "nope"}, r"no such folder"),
        "an MLP from a table": ({"prefix_projection": True}, r"plain prefix table, which cannot start"),
        "two starts": ({"prefix_init": "text"}, r"prefix_init='text' would set it too"),
    }
    for name, (change, message) in cases.items():
        options = {"pre_seq_len": 4, "prefix_init_from": folder, **change}
        with pytest.raises(ValueError, match=message) as error:
            Seq.from_pretrained(bases["base"], **options)
        assert "\n" not in str(error.value) and "prefix_init_from" in str(error.value), name
    # The folder to load is a saved prefix already: it brings its own, so a second start is refused.
    with pytest.raises(ValueError, match=r"is already a saved prefix"):
        Seq.from_pretrained(folder, prefix_init_from=folder)
    # On other weights the base check can be overridden, as for load_prefix.
    model = Seq.from_pretrained(bases["base"], pre_seq_len=4, prefix_init_from=foreign, ignore_mismatched_base=True)
    assert model.prefix_init_from == str(foreign)


# --- the scripts ---------------------------------------------------------------------------------------------


GLUE_STEP = {
    "task_name": "rte",
    "data_dir": FIXTURES / "glue_data",
    "do_train": True,
    "max_steps": 1,
    "per_device_train_batch_size": 2,
    "prefix": True,
    "pre_seq_len": 4,
}


def test_run_glue_starts_from_a_saved_prefix_and_records_it(tiny_model, tmp_path, capsys):
    source = randomised(Seq.from_pretrained(tiny_model, pre_seq_len=4, num_labels=3))
    folder = saved(source, tmp_path / "prefixes" / "mnli", "save_prefix")
    out = tmp_path / "out"
    # A zero learning rate keeps the prefix as it started, so the saved result shows where it started.
    run_glue.main(script_args(tiny_model, out, **GLUE_STEP, learning_rate=0.0, prefix_init_from=folder))
    weights = load_file(out / "model.safetensors")
    torch.testing.assert_close(weights["prefix_encoder.embedding.weight"], source.prefix_encoder.embedding.weight)
    assert weights["classifier.out_proj.weight"].shape[0] == 2  # RTE's own two labels, not the source's three
    settings = json.loads((out / "run_settings.json").read_text())
    assert settings["prefix_init_from"]["name"] == "mnli" and settings["prefix_init_from"]["fingerprint"]
    assert settings["prefix_init"] is None  # not the text start run_glue.py picks for a fresh prefix
    _, card = model_card(out)
    assert "| prefix started from | `mnli` (transfer; the head started fresh) |" in card
    # A length the saved prefix does not have: one line, exit status 2.
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_status:
        argv = script_args(tiny_model, tmp_path / "refused", **{**GLUE_STEP, "pre_seq_len": 8}, prefix_init_from=folder)
        run_script(lambda: run_glue.main(argv))
    assert exit_status.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert ": error: prefix_init_from " in lines[-1] and "pass pre_seq_len=4 (--pre_seq_len 4)" in lines[-1]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({}, "--prefix_init_from only applies with --prefix or --prompt"),
        ({"prefix": True, "prefix_init": "text"}, "--prefix_init_from sets where the prefix starts; --prefix_init"),
        ({"prompt": True, "prompt_init": "vocab"}, "--prefix_init_from sets where the prompt starts; --prompt_init"),
    ],
)
def test_the_flag_is_refused_without_a_method_or_beside_another_start(flags, message, tiny_model, tmp_path, capsys):
    argv = script_args(tiny_model, tmp_path / "out", task_name="rte", prefix_init_from=tmp_path, **flags)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_status:
        run_script(lambda: run_glue.main(argv))
    assert exit_status.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_every_task_script_documents_the_flag():
    for script in ("run_glue.py", "run_ner.py", "examples/run_qa.py"):
        assert "--prefix_init_from" in help_text(script), script
