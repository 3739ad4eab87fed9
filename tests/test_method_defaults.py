"""The method-aware defaults (``prefix_models.defaults``): Python and the scripts build the same model from the same
checkpoint, Python gets the scripts' recipe from the same table, ``--help`` says what each method picks, and a run
uses what ``--help`` says; a value given always wins."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES
from script_runs import load_example, script_args
from transformers import Trainer, TrainingArguments

import prefix_models
import run_glue
import run_ner
from prefix_models import (
    AutoPrefixModelForMultipleChoice,
    AutoPrefixModelForSequenceClassification,
    AutoPrefixModelForTokenClassification,
)
from prefix_models.defaults import (
    METHODS,
    TASKS,
    format_rate,
    learning_rate_help,
    recommended_model_kwargs,
    recommended_training_arguments,
)
from prefix_models.errors import InputError
from prefix_models.scripts import ModelArguments, apply_method_defaults, build_model

TRAINER_LEARNING_RATE = TrainingArguments.__dataclass_fields__["learning_rate"].default
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "text-classification.md"


def sentence_transformers_folder(model: Path, folder: Path, pooling: str = "mean") -> Path:
    """``model`` laid out as sentence-transformers saves a checkpoint: modules.json and the Pooling module's
    config beside the transformer's files."""
    checkpoint = Path(shutil.copytree(model, folder))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (checkpoint / "modules.json").write_text(json.dumps(modules))
    (checkpoint / "1_Pooling").mkdir()
    config = {"pooling_mode_cls_token": pooling == "cls", "pooling_mode_mean_tokens": pooling == "mean"}
    (checkpoint / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return checkpoint


@pytest.fixture(scope="module")
def st_checkpoint(tiny_model, tmp_path_factory) -> Path:
    return sentence_transformers_folder(tiny_model, tmp_path_factory.mktemp("st") / "model")


BATCH = {
    "input_ids": torch.tensor([[2, 7, 9, 11, 3], [2, 5, 6, 3, 0]]),
    "attention_mask": torch.tensor([[1] * 5, [1] * 4 + [0]]),
}


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_python_builds_the_model_the_script_builds_from_a_sentence_transformers_checkpoint(
    method, st_checkpoint, caplog
):
    """The issue: the script read such a checkpoint through its mean, AutoPrefixModelFor*.from_pretrained through
    the never-trained pooler. Both now give the same model (same seed: the same logits)."""
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="prefix_models.checkpoints"):
        python = AutoPrefixModelForSequenceClassification.from_pretrained(
            st_checkpoint, method=method, pre_seq_len=2, num_labels=2
        ).eval()
    assert "classifier_pooling='mean'" in caplog.text  # picked, and said
    torch.manual_seed(0)
    model_args = ModelArguments(model_name_or_path=str(st_checkpoint), pre_seq_len=2, **{method: True})
    script = build_model(model_args, "sequence_classification", num_labels=2).eval()
    assert python.config.classifier_pooling == script.config.classifier_pooling == "mean"
    with torch.no_grad():
        torch.testing.assert_close(python(**BATCH).logits, script(**BATCH).logits)

    choice = AutoPrefixModelForMultipleChoice.from_pretrained(st_checkpoint, method=method, pre_seq_len=2)
    assert choice.config.classifier_pooling == "mean"  # every pooled task

    # The named class itself, as the Auto class picks it: the same model.
    named = getattr(prefix_models, f"Bert{method.capitalize()}ForSequenceClassification")
    torch.manual_seed(0)
    direct = named.from_pretrained(st_checkpoint, pre_seq_len=2, num_labels=2).eval()
    assert direct.config.classifier_pooling == "mean"
    with torch.no_grad():
        torch.testing.assert_close(direct(**BATCH).logits, python(**BATCH).logits)
    assert named.from_pretrained(st_checkpoint, classifier_pooling="pooler").config.classifier_pooling == "pooler"


def test_a_keyword_given_wins_and_other_checkpoints_keep_the_pooler(st_checkpoint, tiny_model, tmp_path):
    auto = AutoPrefixModelForSequenceClassification
    assert auto.from_pretrained(st_checkpoint, classifier_pooling="pooler").config.classifier_pooling == "pooler"
    assert auto.from_pretrained(st_checkpoint, classifier_pooling="cls").config.classifier_pooling == "cls"
    assert auto.from_pretrained(tiny_model).config.classifier_pooling == "pooler"  # not a sentence-transformers one
    cls_pooled = sentence_transformers_folder(tiny_model, tmp_path / "cls-pooled", pooling="cls")
    assert auto.from_pretrained(cls_pooled).config.classifier_pooling == "cls"  # the pooling it was trained with

    # A saved prefix model keeps the pooling it was saved with, even in a folder that looks like sentence-transformers.
    auto.from_pretrained(st_checkpoint, classifier_pooling="pooler", pre_seq_len=2).save_pretrained(tmp_path / "saved")
    shutil.copytree(st_checkpoint / "1_Pooling", tmp_path / "saved" / "1_Pooling")
    shutil.copy(st_checkpoint / "modules.json", tmp_path / "saved")
    assert auto.from_pretrained(tmp_path / "saved").config.classifier_pooling == "pooler"


def test_tasks_that_read_every_token_take_no_pooling(st_checkpoint):
    model = AutoPrefixModelForTokenClassification.from_pretrained(st_checkpoint, pre_seq_len=2, num_labels=3)
    assert model.config.classifier_pooling == "pooler"  # the config's own default, unread by a token classifier


@pytest.mark.parametrize("method", ["prefix", "prompt", None])
def test_python_gets_the_scripts_recipe_from_the_same_table(method, tiny_model, tmp_path):
    for task in TASKS:
        model_args = ModelArguments(
            model_name_or_path=str(tiny_model), prefix=method == "prefix", prompt=method == "prompt"
        )
        training_args = TrainingArguments(output_dir=str(tmp_path))
        picked = apply_method_defaults(model_args, training_args, task)
        assert picked == {**recommended_training_arguments(method, task), **recommended_model_kwargs(method, task)}
        recommended = TrainingArguments(output_dir=str(tmp_path), **recommended_training_arguments(method, task))
        assert recommended.learning_rate == training_args.learning_rate
    with pytest.raises(InputError, match="method must be one of"):
        recommended_training_arguments("lora")
    with pytest.raises(InputError, match="task must be one of"):
        recommended_model_kwargs("prefix", "summarization")


def test_the_recommended_model_kwargs_build_what_the_script_builds(tiny_model):
    """From Python, the recipe's text init reads the checkpoint's own tokenizer: no tokenizer= needed."""
    kwargs = recommended_model_kwargs("prefix", "sequence_classification")
    assert kwargs == {"prefix_init": "text"}
    model = AutoPrefixModelForSequenceClassification.from_pretrained(tiny_model, pre_seq_len=3, **kwargs)
    assert model.config.prefix_init == "text"
    assert recommended_model_kwargs("prefix", "sequence_classification", prefix_projection=True) == {}


# --- --help, and the run doing what it says


def record_training_arguments(monkeypatch) -> list[TrainingArguments]:
    """The arguments each ``Trainer`` is built with, wherever the script imports it."""
    seen, original = [], Trainer.__init__

    def record(self, *args, **kwargs):
        seen.append(kwargs["args"])
        original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "__init__", record)
    return seen


def script_help(main, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def flag_help(text: str, flag: str) -> str:
    """The help of ``flag`` in ``--help`` output, on one line."""
    block = re.search(rf"\n  {flag} .*?(?=\n  -)", text, re.S).group(0)
    return " ".join(block.split())


@pytest.mark.parametrize("script", ["run_glue", "run_ner", "run_clm", "run_qa"])
def test_help_says_what_each_method_picks_not_the_trainers_default(script, capsys):
    main = {"run_glue": run_glue.main, "run_ner": run_ner.main}.get(script) or load_example(script).main
    text = script_help(main, capsys)
    learning_rate = flag_help(text, "--learning_rate")
    assert learning_rate.endswith(" ".join(learning_rate_help(TRAINER_LEARNING_RATE).split()))
    assert "(default: 5e-05)" not in learning_rate  # the Trainer's value, which a --prefix run does not use
    assert "with --prefix 3e-2" in learning_rate and "with --prompt 3e-2" in learning_rate
    prefix_init = flag_help(text, "--prefix_init")
    assert "Default: text for sequence and token classification" in prefix_init and "(default: None)" not in prefix_init


def stated_rate(help_text: str, pattern: str) -> float:
    return float(re.search(pattern, help_text).group(1).rstrip(";."))


# What the help says each run picks (a pattern over --learning_rate's help), and the run it says it of.
HELP_CASES = [
    (["--prefix"], "rte", r"with --prefix (\S+) for sequence and token classification"),
    (["--prefix"], "copa", r"with --prefix [^;]*, (\S+) for other tasks"),  # multiple choice
    (["--prompt"], "rte", r"with --prompt (\S+)"),
    ([], "rte", r"the Trainer's (\S+)$"),
]


@pytest.mark.parametrize(("flags", "task", "pattern"), HELP_CASES, ids=["prefix", "prefix-mc", "prompt", "full"])
def test_the_run_uses_the_learning_rate_help_states(flags, task, pattern, tiny_model, tmp_path, monkeypatch, capsys):
    said = stated_rate(flag_help(script_help(run_glue.main, capsys), "--learning_rate"), pattern)
    seen = record_training_arguments(monkeypatch)
    data = FIXTURES / ("super_glue_data" if task == "copa" else "glue_data")
    run_glue.main(script_args(tiny_model, tmp_path, *flags, task_name=task, data_dir=data, do_eval=True))
    assert seen[0].learning_rate == pytest.approx(said)
    # A flag given wins over what the method picks.
    seen.clear()
    run_glue.main(
        script_args(
            tiny_model,
            tmp_path / "given",
            *flags,
            "--learning_rate",
            "0.001",
            task_name=task,
            data_dir=data,
            do_eval=True,
        )
    )
    assert seen[0].learning_rate == 1e-3


def test_a_ner_prefix_run_uses_the_rate_its_help_states(tiny_model, tmp_path, monkeypatch, capsys):
    pattern = r"with --prefix (\S+) for sequence and token classification"
    said = stated_rate(flag_help(script_help(run_ner.main, capsys), "--learning_rate"), pattern)
    seen = record_training_arguments(monkeypatch)
    run_ner.main(script_args(tiny_model, tmp_path, "--prefix", data_dir=FIXTURES / "ner_data", do_eval=True))
    assert seen[0].learning_rate == pytest.approx(said)


def test_the_guide_table_says_what_help_says():
    row = next(line for line in GUIDE.read_text().splitlines() if line.startswith("| `learning_rate` |"))
    cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
    stated = learning_rate_help(TRAINER_LEARNING_RATE)
    for method, cell in zip(METHODS, cells[1:3], strict=True):
        assert f"with --{method} {cell};" in stated, (method, cell)
    assert format_rate(TRAINER_LEARNING_RATE) in cells[3]
