"""A script's output folder belongs to one run: the settings that define the run are recorded there
(``run_settings.json``), a training run with other settings is refused in one line that changes nothing, the
same settings resume; an evaluation-only run leaves a trained run's results and card as they were; and no
machine path is written into the files that are ours (the card, the record). Every script, tiny runs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from conftest import FIXTURES, save_checkpoint, tiny_config
from script_runs import load_example, script_args
from tiny_families import DECODER_CONFIGS, SEQ2SEQ_CONFIGS
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, BertModel

import run_glue
import run_ner
from prefix_models import scripts
from prefix_models.errors import InputError
from prefix_models.scripts import run_settings
from prefix_models.scripts.arguments import ModelArguments
from prefix_models.scripts.runs import run_script

ROOT = Path(__file__).resolve().parents[1]
GLUE = FIXTURES / "glue_data"
# One one-example step on RTE, checkpointed: a folder with a checkpoint and a finished run's results and card.
RTE_STEP = {
    "task_name": "rte",
    "data_dir": GLUE,
    "do_train": True,
    "max_steps": 1,
    "per_device_train_batch_size": 1,
    "save_strategy": "steps",
    "save_steps": 1,
}
# The runs a folder is first trained with, and the changes of settings refused on top of each.
FIRST_RUNS = {
    "prefix": {"prefix": True, "pre_seq_len": 4},
    "mlp": {"prefix": True, "pre_seq_len": 4, "prefix_projection": True, "prefix_hidden_size": 8},
    "prompt": {"prompt": True, "pre_seq_len": 4},
}
OTHER_SETTINGS = [
    # (first run, flags changed (None: left out), what the refusal names)
    ("prefix", {"prefix": None, "prompt": True}, "method prefix -> prompt"),
    ("prefix", {"prefix": None, "pre_seq_len": None, "head_only": True}, "method prefix -> head_only"),
    ("prefix", {"prefix": None, "pre_seq_len": None}, "method prefix -> full_fine_tuning; --pre_seq_len 4 -> unset"),
    ("prefix", {"pre_seq_len": 8}, "--pre_seq_len 4 -> 8"),
    ("prefix", {"prefix_projection": True}, "--prefix_projection false -> true"),
    ("mlp", {"prefix_hidden_size": 16}, "--prefix_hidden_size 8 -> 16"),
    ("mlp", {"merge_prefix_projection": True}, "--merge_prefix_projection false -> true"),
    ("prefix", {"prefix_layers": "top1"}, "--prefix_layers unset -> top1"),
    ("prefix", {"prefix_init": "random"}, "--prefix_init unset -> random"),
    ("prefix", {"prefix_init_text": "a start"}, "--prefix_init unset -> text; --prefix_init_text unset -> a start"),
    ("prefix", {"classifier_pooling": "cls"}, "--classifier_pooling unset -> cls"),
    ("prefix", {"hidden_dropout_prob": 0.0}, "--hidden_dropout_prob unset -> 0.0"),
    ("prefix", {"prefix_init_from": "saved-prefix"}, "--prefix_init_from unset -> saved-prefix"),
    ("prompt", {"prompt_init": "vocab"}, "--prompt_init unset -> vocab"),
    ("prompt", {"prompt_init": "text", "prompt_init_text": "a start"}, "--prompt_init_text unset -> a start"),
    # The model, the tokenizer or config taken apart from it, the revision.
    ("prefix", {"model_name_or_path": "other"}, "--model_name_or_path tiny-bert -> tiny-bert (other contents)"),
    ("prefix", {"tokenizer_name": "same"}, "--tokenizer_name unset -> tiny-bert"),
    ("prefix", {"config_name": "same"}, "--config_name unset -> tiny-bert"),
    ("prefix", {"model_revision": "v2"}, "--model_revision main -> v2"),
    # The task and its data, the head's labels, the inputs' length.
    ("prefix", {"task_name": "mrpc"}, "--task_name rte -> mrpc"),
    ("prefix", {"data_dir": GLUE / "RTE"}, "--data_dir glue_data -> RTE"),
    ("prefix", {"label_column_name": "gold"}, "--label_column_name label -> gold"),
    ("prefix", {"max_seq_length": 16}, "--max_seq_length unset -> 16"),
    ("prefix", {"max_train_samples": 8}, "--max_train_samples unset -> 8"),
    # What the checkpoint's optimizer and scheduler were built with, and the data order.
    ("prefix", {"learning_rate": 0.1}, "--learning_rate unset -> 0.1"),
    ("prefix", {"per_device_train_batch_size": 2}, "total_train_batch_size 1 -> 2"),
    ("prefix", {"seed": 1}, "--seed 0 -> 1"),
    ("prefix", {"lr_scheduler_type": "constant"}, "--lr_scheduler_type linear -> constant"),
]


def tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A stock tiny BERT and its tokenizer in ``folder``; ``seed`` 0 gives the same bytes every time."""

    def build(_):
        torch.manual_seed(seed)
        return BertModel(tiny_config("Bert", max_position_embeddings=64))

    return save_checkpoint(folder, build)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """``tiny-bert``; a byte-identical copy of it in another folder; another ``tiny-bert`` with other weights."""
    root = tmp_path_factory.mktemp("models")
    return {
        "model": tiny_bert(root / "here" / "tiny-bert"),
        "copy": tiny_bert(root / "there" / "tiny-bert"),
        "other": tiny_bert(root / "elsewhere" / "tiny-bert", seed=1),
    }


def glue_args(model: Path, output_dir: Path, **options: object) -> list[str]:
    return script_args(model, output_dir, **{**RTE_STEP, **options})


@pytest.fixture(scope="module")
def trained(models, tmp_path_factory) -> dict[str, Path]:
    """A folder per first run, each one step trained, checkpointed, with its results and card."""
    folders = {}
    for name, method in FIRST_RUNS.items():
        folders[name] = tmp_path_factory.mktemp(f"run-{name}")
        run_glue.main(glue_args(models["model"], folders[name], **method))
    return folders


def state(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file and folder below ``folder``: a file's bytes and modification time, a folder as None."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def assert_refused_in_one_line(main, argv: list[str], folder: Path, named: str, capsys) -> str:
    """``main(argv)`` as a command ends with exit status 2 and one ``error:`` line naming ``named`` and the ways
    out; nothing below ``folder`` changed."""
    before = state(folder)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_status:
        run_script(lambda: main(argv))
    assert exit_status.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert ": error: --output_dir " in line and named in line, line
    assert "Nothing was changed" in line and "new --output_dir" in line and "--overwrite_output_dir" in line
    assert state(folder) == before
    return line


@pytest.mark.parametrize(("first", "change", "named"), OTHER_SETTINGS, ids=[n for _, _, n in OTHER_SETTINGS])
def test_a_run_with_other_settings_is_refused_and_changes_nothing(first, change, named, models, trained, capsys):
    options = {**FIRST_RUNS[first], "max_steps": 2, **change}
    model = models[options.pop("model_name_or_path", "model")]
    for flag in ("tokenizer_name", "config_name"):
        if flag in options:
            options[flag] = models["model"]
    assert_refused_in_one_line(
        run_glue.main, glue_args(model, trained[first], **options), trained[first], named, capsys
    )


def test_every_flag_that_defines_a_run_is_checked():
    """Each model and method flag is refused when changed (above) unless it is declared operational."""
    changed = {flag for _, change, _ in OTHER_SETTINGS for flag in change}
    defining = {field.name for field in dataclasses.fields(ModelArguments)} - run_settings.OPERATIONAL
    assert defining <= changed, f"not tested: {sorted(defining - changed)}"


def test_the_same_settings_resume_from_a_moved_copy_of_the_model(models, trained, tmp_path, monkeypatch):
    """A longer run with the same settings, other operational flags and a byte-identical model elsewhere resumes."""
    folder = shutil.copytree(trained["prefix"], tmp_path / "out")
    resumed_from = []
    train_and_save = scripts.train_and_save

    def record(trainer, last_checkpoint, *args):
        resumed_from.append(last_checkpoint)
        return train_and_save(trainer, last_checkpoint, *args)

    monkeypatch.setattr(scripts, "train_and_save", record)
    operational = {"logging_steps": 7, "per_device_eval_batch_size": 3, "ignore_mismatched_base": True}
    run_glue.main(glue_args(models["copy"], folder, **FIRST_RUNS["prefix"], **operational, max_steps=2))
    assert resumed_from == [str(folder / "checkpoint-1")]
    assert json.loads((folder / "trainer_state.json").read_text())["global_step"] == 2


def test_resuming_a_checkpoint_of_a_run_with_other_settings_is_refused(models, trained, tmp_path):
    checkpoint = trained["prefix"] / "checkpoint-1"
    before = state(trained["prefix"])
    args = glue_args(models["model"], tmp_path / "out", **FIRST_RUNS["prompt"], resume_from_checkpoint=checkpoint)
    with pytest.raises(
        InputError, match=r"^--resume_from_checkpoint .*checkpoint-1 is a checkpoint of a run with other "
    ):
        run_glue.main(args)
    assert state(trained["prefix"]) == before and not (tmp_path / "out").exists()


def test_a_folder_from_before_the_record_resumes_and_is_recorded(models, trained, tmp_path):
    folder = shutil.copytree(trained["prefix"], tmp_path / "out")
    recorded = json.loads((folder / run_settings.SETTINGS_FILE).read_text())
    (folder / run_settings.SETTINGS_FILE).unlink()
    run_glue.main(glue_args(models["model"], folder, **FIRST_RUNS["prefix"], max_steps=2))
    assert json.loads((folder / "trainer_state.json").read_text())["global_step"] == 2
    assert json.loads((folder / run_settings.SETTINGS_FILE).read_text()) == recorded


def test_overwrite_output_dir_trains_another_run_over_it(models, trained, tmp_path):
    folder = shutil.copytree(trained["prefix"], tmp_path / "out")
    (folder / "checkpoint-7").mkdir()  # the old run's, numbered past anything the new run writes
    shutil.copytree(folder / "checkpoint-1", folder / "checkpoint-7", dirs_exist_ok=True)
    run_glue.main(glue_args(models["model"], folder, **FIRST_RUNS["prompt"], overwrite_output_dir=True))
    assert json.loads((folder / run_settings.SETTINGS_FILE).read_text())["method"] == "prompt"
    # Only the new run's checkpoints are left, so a later re-run resumes this run, not the one trained over.
    assert sorted(path.name for path in folder.glob("checkpoint-*")) == ["checkpoint-1"]
    assert json.loads((folder / "checkpoint-1" / "config.json").read_text())["prefix_method"] == "prompt"


def test_a_run_refused_on_its_data_leaves_no_record_and_a_lone_record_refuses_nothing(models, trained, tmp_path):
    with pytest.raises(ValueError, match="--max_seq_length 500 is above"):  # found after the folder was checked
        run_glue.main(glue_args(models["model"], tmp_path / "out", **FIRST_RUNS["prefix"], max_seq_length=500))
    assert not (tmp_path / "out").exists()
    # A record beside no checkpoint or result (a run stopped before its first save) is replaced, not obeyed.
    recorded = json.loads((trained["prompt"] / run_settings.SETTINGS_FILE).read_text())
    run_settings.write_settings(tmp_path / "out", recorded)
    run_glue.main(glue_args(models["model"], tmp_path / "out", **FIRST_RUNS["prefix"], save_strategy="no"))
    assert json.loads((tmp_path / "out" / run_settings.SETTINGS_FILE).read_text())["method"] == "prefix"


def assert_no_machine_path(folder: Path, *paths: Path) -> None:
    """The card and the record name no absolute path of the test's folders."""
    for name in ("README.md", run_settings.SETTINGS_FILE):
        text = (folder / name).read_text()
        for path in paths:
            assert str(path) not in text and str(path.resolve()) not in text, (name, path)


def test_the_card_and_the_record_hold_no_machine_path(models, trained, tmp_path_factory):
    folder = trained["prefix"]
    assert_no_machine_path(folder, tmp_path_factory.getbasetemp(), FIXTURES)
    card = (folder / "README.md").read_text()
    assert "`tiny-bert` (a local folder)" in card and "| data_dir data | `tests/fixtures/glue_data` |" in card


class ScriptCase(NamedTuple):
    """A script's one-step training run (``train``: every phase it has) and an evaluation-only run
    (``evaluate``; its model, when not the trained folder, as ``model_name_or_path``) into the trained folder:
    the folder under ``evaluations/`` the evaluation writes, and the files it writes there besides its results."""

    main: Callable[[list[str]], dict]
    model: Path
    train: dict[str, object]
    evaluate: dict[str, object]
    folder: str
    written: tuple[str, ...]


PREFIX_STEPS = {"prefix": True, "pre_seq_len": 4, "do_train": True, "do_eval": True}
CAPS = {"max_train_samples": 4, "max_eval_samples": 4, "max_predict_samples": 4}


def glue_case(models, data) -> ScriptCase:
    evaluate = {"task_name": "rte", "validation_file": data["rte_dev"], "test_file": data["rte_test"], **CAPS}
    train = {**RTE_STEP, **PREFIX_STEPS, "do_predict": True}
    return ScriptCase(run_glue.main, models["model"], train, evaluate, "dev+test", ("predict_results_rte.txt",))


def ner_case(models, data) -> ScriptCase:
    ner = {"data_dir": FIXTURES / "ner_data", "max_seq_length": 32, "max_eval_samples": 4, "max_predict_samples": 4}
    train = {**ner, **PREFIX_STEPS, "do_predict": True}
    return ScriptCase(run_ner.main, models["model"], train, ner, "ner_data", ("predictions.txt",))


def qa_case(models, data) -> ScriptCase:
    squad = FIXTURES / "squad"
    files = {"validation_file": squad / "dev-v1.1.json", "test_file": squad / "test.jsonl"}
    files |= {"max_seq_length": 32, "doc_stride": 8, **CAPS}
    train = {"train_file": squad / "train-v1.1.json", **files, **PREFIX_STEPS, "do_predict": True}
    written = ("predictions.json", "nbest_predictions.json", "predict_predictions.json")
    return ScriptCase(load_example("run_qa").main, models["model"], train, files, "dev-v1.1+test", written)


def clm_case(models, data) -> ScriptCase:
    files = {"train_file": data["text"], "validation_file": data["text"], "block_size": 16, "max_eval_samples": 1}
    return ScriptCase(load_example("run_clm").main, models["gpt2"], {**files, **PREFIX_STEPS}, files, "train", ())


def seq2seq_case(models, data) -> ScriptCase:
    files = {"train_file": data["reviews_train"], "validation_file": data["reviews_validation"]}
    files |= {"test_file": data["reviews_test"], "text_column": "sentence", "summary_column": "label"}
    files |= {"max_source_length": 16, "generation_max_length": 2}
    train = {**files, **PREFIX_STEPS, "do_predict": True}
    main = load_example("run_seq2seq").main
    return ScriptCase(main, models["bart"], train, files, "validation+test", ("generated_predictions.txt",))


def multitask_case(models, data) -> ScriptCase:
    tasks = {"task_names": "rte,sst2", "data_dir": GLUE, **CAPS}
    # run_multitask.py builds its tasks' prefixes on a base (it does not read its own saved folder back).
    evaluate = {**tasks, "prefix": True, "pre_seq_len": 4, "model_name_or_path": models["model"]}
    main = load_example("run_multitask").main
    return ScriptCase(main, models["model"], {**tasks, **PREFIX_STEPS}, evaluate, "rte_sst2", ())


SCRIPT_CASES = {
    "run_glue": glue_case,
    "run_ner": ner_case,
    "run_qa": qa_case,
    "run_clm": clm_case,
    "run_seq2seq": seq2seq_case,
    "run_multitask": multitask_case,
}


@pytest.fixture(scope="module")
def script_models(models, tmp_path_factory) -> dict[str, Path]:
    """``models`` and a tiny GPT-2 and BART (byte-level BPE tokenizer fixture)."""
    special = {"bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
    gpt2 = save_checkpoint(
        tmp_path_factory.mktemp("gpt2"),
        lambda t: AutoModelForCausalLM.from_config(
            DECODER_CONFIGS["GPT2"](vocab_size=len(t), n_positions=64, **special)
        ),
        "tiny-roberta-tokenizer",
    )
    bart = save_checkpoint(
        tmp_path_factory.mktemp("bart"),
        lambda t: AutoModelForSeq2SeqLM.from_config(
            SEQ2SEQ_CONFIGS["Bart"](vocab_size=len(t), max_position_embeddings=64)
        ),
        "tiny-roberta-tokenizer",
    )
    return {**models, "gpt2": gpt2, "bart": bart}


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, Path]:
    """RTE's dev and test rows as csv files of other names, and a small text file."""
    import csv

    root = tmp_path_factory.mktemp("data")
    paths = {}
    for split, source in (("rte_dev", "dev.tsv"), ("rte_test", "test.tsv")):
        with open(GLUE / "RTE" / source, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        paths[split] = root / f"{split.split('_')[1]}.csv"
        with open(paths[split], "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[k for k in rows[0] if k != "index"])
            writer.writeheader()
            writer.writerows({k: v for k, v in row.items() if k != "index"} for row in rows)
    paths["text"] = root / "train.txt"
    paths["text"].write_text("the cat sat on the mat and looked at the dog\n" * 4)
    reviews = (ROOT / "examples" / "data" / "movie_reviews" / "train.csv").read_text().splitlines()
    (root / "reviews").mkdir()
    for split in ("train", "validation", "test"):  # four reviews each
        paths[f"reviews_{split}"] = root / "reviews" / f"{split}.csv"
        paths[f"reviews_{split}"].write_text("\n".join(reviews[:5]) + "\n")
    return paths


@pytest.mark.parametrize("script", SCRIPT_CASES)
def test_every_script_records_refuses_and_keeps_a_trained_run_from_an_evaluation(
    script, script_models, data_files, tmp_path, tmp_path_factory, capsys
):
    case = SCRIPT_CASES[script](script_models, data_files)
    out = tmp_path / "out"
    single = {"per_device_train_batch_size": 1, "max_steps": 1, "save_strategy": "steps", "save_steps": 1}
    case.main(script_args(case.model, out, **{**case.train, **single}))
    assert (out / run_settings.SETTINGS_FILE).is_file() and (out / "checkpoint-1").is_dir()
    assert_no_machine_path(out, tmp_path_factory.getbasetemp(), FIXTURES)

    # Another method into the trained folder: refused, nothing changed.
    other = {**case.train, **single, "max_steps": 2, "prefix": None, "pre_seq_len": None, "prompt": True}
    assert_refused_in_one_line(case.main, script_args(case.model, out, **other), out, "method prefix -> prompt", capsys)

    # An evaluation into the trained folder: the run's results, predictions and card stay as they were, byte for
    # byte; the evaluation's own go to a folder named after its data.
    before = state(out)
    evaluate = dict(case.evaluate)
    model = evaluate.pop("model_name_or_path", out)
    main_args = script_args(model, out, do_eval=True, do_predict=case.train.get("do_predict"), **evaluate)
    case.main(main_args)
    assert {name: kept for name, kept in state(out).items() if not name.startswith("evaluations")} == before
    elsewhere = out / run_settings.EVALUATIONS_FOLDER / case.folder
    written = {path.name for path in elsewhere.iterdir()}
    assert {"all_results.json", "eval_results.json", *case.written} <= written, written
