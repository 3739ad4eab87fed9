"""The scripts around named prefixes, on a tiny BERT and the GLUE fixture files: ``examples/run_multitask.py``
trains several tasks in mixed batches and scores each, ``run_glue.py --ensemble_prefixes`` evaluates saved
prefixes as an ensemble; and ``add_prefix``, the fresh task those scripts build on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, task_inputs
from script_runs import load_example, model_card, run_launched, script_args, torchrun

import prefix_models as pm
import run_glue

ROOT = Path(__file__).resolve().parents[1]
GLUE = FIXTURES / "glue_data"
RTE = {"task_name": "rte", "data_dir": GLUE}
BATCHES = {"per_device_train_batch_size": 4, "per_device_eval_batch_size": 8}
# Three GLUE tasks of three kinds (pairs, regression, single sentences), each on a prefix of its own.
THREE_TASKS = {
    "task_names": "rte,stsb,sst2",
    "data_dir": GLUE,
    "prefix": True,
    "pre_seq_len": 4,
    "learning_rate": 1e-2,
    "do_train": True,
}


def test_add_prefix_makes_a_fresh_task_with_its_own_labels(tiny_model):
    model = pm.BertPrefixForSequenceClassification.from_pretrained(tiny_model, pre_seq_len=4, num_labels=2).eval()
    model.add_prefix("sts", pre_seq_len=6, num_labels=1, problem_type="regression")
    config = model.prefix_config("sts")
    assert (config.pre_seq_len, config.num_labels, config.problem_type) == (6, 1, "regression")
    assert model.prefix_config("default").num_labels == 2  # the model's own task is untouched
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert any(name.startswith("prefix_bank.sts.prefix_encoder") for name in trainable)
    batch = task_inputs(type(model), batch_size=3)
    batch["labels"] = torch.tensor([1.0, 0.5, 0.0])  # one labels tensor for both tasks: floats
    output = model(**batch, prefix_names=["default", "sts", "sts"])
    assert output.logits.shape == (3, 2) and torch.isinf(output.logits[1:, 1]).all()
    assert torch.isfinite(output.loss)
    with pytest.raises(ValueError, match=r"not fields of BertPrefixConfig"):
        model.add_prefix("x", pre_seq_lenn=3)
    with pytest.raises(ValueError, match=r"pre_seq_len must be a positive integer"):
        model.add_prefix("x", pre_seq_len=0)
    assert model.prefix_names == ["default", "sts"]


def test_run_multitask_trains_tasks_together_and_scores_each(tiny_model, tmp_path):
    script = load_example("run_multitask")
    results = script.main(script_args(tiny_model, tmp_path, **BATCHES, **THREE_TASKS, num_train_epochs=1, do_eval=True))
    for key in ("eval_rte_accuracy", "eval_stsb_pearson", "eval_sst2_accuracy"):
        assert key in results
    # The whole model reloads with every task; each task alone reloads as a one-task model.
    saved = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert saved.prefix_names == ["default", "sst2", "stsb"]  # the model's own, then by name
    alone = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "prefixes" / "stsb").eval()
    assert alone.config.problem_type == "regression"
    batch = task_inputs(type(saved), batch_size=2)
    batch.pop("labels")
    with torch.no_grad():
        torch.testing.assert_close(saved(**batch, prefix_names=["stsb", "stsb"]).logits[:, :1], alone(**batch).logits)
    assert json.loads((tmp_path / "eval_results.json").read_text())["eval_sst2_samples"] > 0
    assert "| task | one prefix per task: rte, stsb, sst2 |" in model_card(tmp_path)[1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--task_names", "rte", "--prefix"], r"at least two"),
        (["--task_names", "rte,copa", "--prefix"], r"copa need another model"),
        (["--task_names", "rte,rte", "--prefix"], r"names a task twice"),
        (["--task_names", "rte,mrpc"], r"pass --prefix or --prompt"),
    ],
)
def test_run_multitask_refuses_bad_flags(flags, message, tiny_model, tmp_path):
    script = load_example("run_multitask")
    with pytest.raises(ValueError, match=message):
        script.main(script_args(tiny_model, tmp_path / "out", *flags, **BATCHES, data_dir=GLUE, do_train=True))
    assert not (tmp_path / "out").exists()


def test_run_glue_evaluates_an_ensemble_of_saved_prefixes(tiny_model, tmp_path):
    members = []
    for seed in range(3):
        folder = tmp_path / f"member{seed}"
        run_glue.main(
            script_args(
                tiny_model,
                folder,
                **BATCHES,
                **RTE,
                prefix=True,
                pre_seq_len=3 + seed,
                learning_rate=1e-2,
                max_steps=2,
                seed=seed,
                do_train=True,
            )
        )
        members.append(folder)
    results = run_glue.main(
        script_args(
            members[0],
            tmp_path / "eval",
            **BATCHES,
            **RTE,
            do_eval=True,
            do_predict=True,
            ensemble_prefixes=members[1:],
        )
    )
    for name in ("default", "member1", "member2"):
        assert f"eval_{name}_accuracy" in results
    assert "eval_accuracy" in results and (tmp_path / "eval" / "RTE.tsv").exists()
    with pytest.raises(ValueError, match=r"does not train"):
        run_glue.main(
            script_args(members[0], tmp_path / "x", **BATCHES, **RTE, do_train=True, ensemble_prefixes=members[1:2])
        )


def test_run_multitask_trains_under_ddp_with_gradient_checkpointing(tiny_model, tmp_path):
    """Two processes, tasks routed per example and gradient checkpointing: a batch that lacks a task leaves its
    prefix and head unused, which DDP is told (it used to stop with "parameters that were not used")."""
    import os

    options = {**BATCHES, **THREE_TASKS, "max_steps": 3, "activation_checkpointing": True, "ddp_backend": "gloo"}
    script = [str(ROOT / "examples" / "run_multitask.py"), *script_args(tiny_model, tmp_path, **options)]
    run_launched([*torchrun(2, 29700 + os.getpid() % 200), *script])
    saved = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path)
    assert saved.prefix_names == ["default", "sst2", "stsb"]


def write_task(folder: Path, name: str, labels: list[str], pairs: bool = False, rows: int = 12) -> dict[str, Path]:
    """A small csv task (train and dev) with its own label set, as a user's files would be."""
    words = ["the", "a", "good", "bad", "film", "news", "day", "is", "was", "not"]
    files = {}
    for split in ("train", "validation"):
        lines = ["sentence1,sentence2,label" if pairs else "sentence,label"]
        for row in range(rows):
            text = " ".join(words[(row * 3 + k) % len(words)] for k in range(5))
            lines.append(
                f"{text},{text[::-1]},{labels[row % len(labels)]}" if pairs else f"{text},{labels[row % len(labels)]}"
            )
        files[split] = folder / f"{name}_{split}.csv"
        files[split].write_text("\n".join(lines) + "\n")
    return files


@pytest.fixture
def local_tasks(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return {
        "reviews": write_task(folder, "reviews", ["negative", "positive"]),
        "nli": write_task(folder, "nli", ["contradiction", "entailment", "neutral"], pairs=True),
        "topic": write_task(folder, "topic", ["business", "sport", "tech", "politics"], rows=6),
    }


def local_flags(tasks: dict[str, dict[str, Path]], **more) -> dict:
    return {
        "task_names": ",".join(tasks),
        "train_files": ",".join(str(files["train"]) for files in tasks.values()),
        "validation_files": ",".join(str(files["validation"]) for files in tasks.values()),
        "prefix": True,
        "pre_seq_len": 4,
        "learning_rate": 1e-2,
        **more,
    }


def test_run_multitask_shared_prefix_on_local_files_saves_each_task_with_the_one_prefix(
    tiny_model, tmp_path, local_tasks
):
    script = load_example("run_multitask")
    flags = local_flags(local_tasks, shared_prefix=True, sampling_temperature=2.0)
    results = script.main(
        script_args(tiny_model, tmp_path / "out", **BATCHES, **flags, num_train_epochs=1, do_train=True, do_eval=True)
    )
    for key in ("eval_reviews_accuracy", "eval_nli_accuracy", "eval_topic_accuracy"):
        assert key in results
    saved = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    assert [saved.prefix_config(name).num_labels for name in saved.prefix_names] == [2, 3, 4]  # default, nli, topic
    assert saved.prefix_config("topic").id2label[3] == "tech"  # its own labels, read from its own file (sorted)
    # Every task's folder holds the one trained prefix, with its own head.
    folders = {name: tmp_path / "out" / "prefixes" / name for name in local_tasks}
    tables = [
        pm.AutoPrefixModelForSequenceClassification.from_pretrained(folder).prefix_encoder.embedding.weight
        for folder in folders.values()
    ]
    torch.testing.assert_close(tables[0], tables[1])
    torch.testing.assert_close(tables[0], tables[2])
    torch.testing.assert_close(tables[0], saved.prefix_encoder.embedding.weight)
    assert "| task | one prefix shared by: reviews, nli, topic |" in model_card(tmp_path / "out")[1]
    # A new task starts from it (run_glue.py --prefix_init_from) with the prefix as trained.
    run_glue.main(
        script_args(
            tiny_model,
            tmp_path / "adapted",
            **BATCHES,
            train_file=local_tasks["reviews"]["train"],
            validation_file=local_tasks["reviews"]["validation"],
            prefix=True,
            pre_seq_len=4,
            prefix_init_from=folders["nli"],
            max_steps=1,
            learning_rate=0.0,
            do_train=True,
        )
    )
    adapted = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "adapted")
    torch.testing.assert_close(adapted.prefix_encoder.embedding.weight, tables[0])


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda f: {**f, "train_files": f["train_files"].rsplit(",", 1)[0]},
            r"--train_files has 2 file\(s\) for 3 tasks",
        ),
        (lambda f: {**f, "task_names": "reviews,nli,reviews"}, r"names a task twice"),
        (lambda f: {**f, "task_names": "reviews,nli,to pic"}, r"not task names"),
        (
            lambda f: {**f, "validation_files": f["validation_files"].replace("topic_validation", "missing")},
            r"--validation_files: .*missing.csv \(task topic\) does not exist",
        ),
        (lambda f: {**f, "validation_files": None}, r"--do_eval needs --validation_files"),
        (lambda f: {**f, "sampling_temperature": 0.0}, r"--sampling_temperature must be a positive number"),
        (lambda f: {**f, "data_dir": GLUE}, r"pick one data source"),
    ],
)
def test_run_multitask_refuses_bad_local_task_flags(change, message, tiny_model, tmp_path, local_tasks):
    script = load_example("run_multitask")
    flags = {key: value for key, value in change(local_flags(local_tasks)).items() if value is not None}
    with pytest.raises(ValueError, match=message):
        script.main(script_args(tiny_model, tmp_path / "out", **BATCHES, **flags, do_train=True, do_eval=True))
    assert not (tmp_path / "out").exists()


def test_run_multitask_refuses_a_task_file_without_labels(tiny_model, tmp_path, local_tasks):
    script = load_example("run_multitask")
    unlabelled = tmp_path / "data" / "unlabelled.csv"
    unlabelled.write_text("sentence\nthe good film\na bad day\n")
    flags = local_flags(local_tasks)
    flags["train_files"] = flags["train_files"].replace(str(local_tasks["topic"]["train"]), str(unlabelled))
    with pytest.raises(ValueError, match=r"task topic: --train_file .*unlabelled.csv lacks column\(s\) \['label'\]"):
        script.main(script_args(tiny_model, tmp_path / "out", **BATCHES, **flags, do_train=True))


def test_temperature_mixing_moves_small_tasks_up_and_keeps_the_total():
    from prefix_models.scripts.multitask import mix_training_sets, mixture_sizes

    assert mixture_sizes([900, 100], 1.0) == [900, 100]
    drawn = mixture_sizes([900, 100], 2.0)
    assert sum(drawn) == 1000 and drawn[1] == 250  # sqrt: 30 : 10
    assert mixture_sizes([900, 100], 1e9) == [500, 500]
    import datasets

    parts = [datasets.Dataset.from_dict({"task": [0] * 9}), datasets.Dataset.from_dict({"task": [1] * 3})]
    mixed = mix_training_sets(parts, 2.0, seed=0)
    counts = [mixed["task"].count(0), mixed["task"].count(1)]
    assert counts == mixture_sizes([9, 3], 2.0) and sum(counts) == 12
