"""NER tasks in ``examples/run_multitask.py`` (``--ner_tasks``), on a tiny BERT and the toy NER fixtures: NER tasks
alone on one token-classification prefix model, NER beside a sequence task on two models sharing one prefix module
(``prefix_models/scripts/mixed_tasks.py``), one-kind batches, saves that reload, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES
from script_runs import help_text, load_example, model_card, script_args
from test_multitask_scripts import write_task
from transformers import AutoTokenizer, DataCollatorForTokenClassification, DataCollatorWithPadding

import prefix_models as pm
import run_ner
from prefix_models.scripts.mixed_tasks import (
    SEQUENCE,
    TOKEN,
    TOKEN_FOLDER,
    KindBlockSampler,
    MixedCollator,
    MixedTaskModel,
)

NER = FIXTURES / "ner_data"
BATCHES = {"per_device_train_batch_size": 4, "per_device_eval_batch_size": 8}
SMALL = {"max_train_samples": 16, "max_eval_samples": 8}


def write_people(folder: Path) -> dict[str, Path]:
    """A second NER task in json lines with a tag set of its own: the fixtures' PER entities as PERSON, the rest O."""
    files = {}
    for split, source in (("train", "train.jsonl"), ("validation", "dev.jsonl")):
        rows = [json.loads(line) for line in (NER / source).read_text().splitlines() if line.strip()]
        lines = []
        for row in rows:
            tags = [tag.replace("-PER", "-PERSON") if tag.endswith("-PER") else "O" for tag in row["ner_tags"]]
            lines.append(json.dumps({"tokens": row["tokens"], "ner_tags": tags}))
        files[split] = folder / f"people_{split}.jsonl"
        files[split].write_text("\n".join(lines) + "\n")
    return files


@pytest.fixture
def tasks(tmp_path) -> dict[str, dict[str, Path]]:
    folder = tmp_path / "data"
    folder.mkdir()
    return {
        "reviews": write_task(folder, "reviews", ["negative", "positive"]),
        "conll": {"train": NER / "train.txt", "validation": NER / "dev.txt"},
        "people": write_people(folder),
    }


def flags(tasks: dict[str, dict[str, Path]], names: list[str], ner: list[str], **more) -> dict:
    return {
        "task_names": ",".join(names),
        "ner_tasks": ",".join(ner) or None,
        "train_files": ",".join(str(tasks[name]["train"]) for name in names),
        "validation_files": ",".join(str(tasks[name]["validation"]) for name in names),
        "prefix": True,
        "pre_seq_len": 4,
        "learning_rate": 1e-2,
        **BATCHES,
        **SMALL,
        **more,
    }


def prefix_table(folder: Path, auto=pm.AutoPrefixModelForTokenClassification) -> torch.Tensor:
    return auto.from_pretrained(folder).prefix_encoder.embedding.weight.detach()


def grad_of(module: torch.nn.Module) -> torch.Tensor | None:
    """How much gradient ``module``'s parameters got (None: not one of them was reached)."""
    grads = [parameter.grad for parameter in module.parameters() if parameter.grad is not None]
    return sum(grad.abs().sum() for grad in grads) if grads else None


def token_batch(tokenizer, num_labels: int, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    batch = dict(tokenizer(["the director of the scene", "a good film"], padding=True, return_tensors="pt"))
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, num_labels, batch["input_ids"].shape, generator=generator)
    batch["labels"] = labels.masked_fill(batch["attention_mask"] == 0, -100)
    if names is not None:
        batch["prefix_names"] = names
    return batch


def test_ner_tasks_alone_share_one_prefix_and_transfer_to_run_ner(tiny_model, tmp_path, tasks):
    script = load_example("run_multitask")
    out = tmp_path / "out"
    options = flags(
        tasks, ["conll", "people"], ["conll", "people"], shared_prefix=True, return_entity_level_metrics=True
    )
    results = script.main(script_args(tiny_model, out, **options, num_train_epochs=1, do_train=True, do_eval=True))
    for name in ("conll", "people"):
        for metric in ("f1", "precision", "recall", "accuracy", "strict_f1", "samples"):
            assert f"eval_{name}_{metric}" in results
    assert "eval_conll_LOC_f1" in results and "eval_people_PERSON_f1" in results  # each scored in its own tags
    assert results["eval_conll_samples"] == 8

    saved = pm.AutoPrefixModelForTokenClassification.from_pretrained(out).eval()
    assert saved.prefix_names == ["default", "people"]
    assert saved.config.id2label[1] == "B-LOC" and saved.prefix_config("people").id2label == {0: "O", 1: "B-PERSON"}
    tables = {name: prefix_table(out / "prefixes" / name) for name in ("conll", "people")}
    torch.testing.assert_close(tables["conll"], tables["people"])
    torch.testing.assert_close(tables["conll"], saved.prefix_encoder.embedding.weight.detach())
    # A task's folder runs as the whole model runs that task.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    alone = pm.AutoPrefixModelForTokenClassification.from_pretrained(out / "prefixes" / "people").eval()
    batch = token_batch(tokenizer, 2)
    batch.pop("labels")
    with torch.no_grad():
        together = saved(**batch, prefix_names=["people", "people"]).logits[..., :2]
        torch.testing.assert_close(together, alone(**batch).logits)

    # The shared prefix learns from both tasks' examples, each head from its own only.
    saved.train()
    saved.zero_grad()
    saved(**token_batch(tokenizer, 2, ["people", "people"])).loss.backward()
    assert saved.prefix_encoder.embedding.weight.grad.abs().sum() > 0
    assert grad_of(saved.prefix_bank["people"].classifier) > 0
    assert grad_of(saved.classifier) is None
    saved.zero_grad(set_to_none=True)
    saved(**token_batch(tokenizer, 2, ["default", "default"])).loss.backward()
    assert saved.prefix_encoder.embedding.weight.grad.abs().sum() > 0
    assert grad_of(saved.classifier) > 0
    assert grad_of(saved.prefix_bank["people"].classifier) is None

    # run_ner.py starts a new task from it with the prefix as trained (learning rate 0: nothing moves).
    run_ner.main(
        script_args(
            tiny_model,
            tmp_path / "adapted",
            **BATCHES,
            train_file=NER / "train.jsonl",
            validation_file=NER / "dev.jsonl",
            prefix=True,
            pre_seq_len=4,
            prefix_init_from=out / "prefixes" / "people",
            max_steps=1,
            learning_rate=0.0,
            max_train_samples=8,
            do_train=True,
        )
    )
    torch.testing.assert_close(prefix_table(tmp_path / "adapted"), tables["people"])


def test_a_sequence_task_and_a_ner_task_train_one_shared_prefix(tiny_model, tmp_path, tasks):
    script = load_example("run_multitask")
    options = flags(tasks, ["reviews", "conll"], ["conll"], shared_prefix=True)
    start = tmp_path / "start"  # nothing moves at learning rate 0: the prefix the run starts from
    script.main(script_args(tiny_model, start, **{**options, "learning_rate": 0.0}, max_steps=1, do_train=True))
    out = tmp_path / "out"
    results = script.main(script_args(tiny_model, out, **options, num_train_epochs=2, do_train=True, do_eval=True))
    assert {"eval_reviews_accuracy", "eval_conll_f1", "eval_conll_strict_f1"} <= set(results)

    sequence_auto = pm.AutoPrefixModelForSequenceClassification
    reviews, conll = prefix_table(out / "prefixes" / "reviews", sequence_auto), prefix_table(out / "prefixes" / "conll")
    torch.testing.assert_close(reviews, conll)  # one prefix, trained by both kinds of task
    assert not torch.allclose(reviews, prefix_table(start / "prefixes" / "reviews", sequence_auto))
    torch.testing.assert_close(
        prefix_table(start / "prefixes" / "reviews", sequence_auto), prefix_table(start / "prefixes" / "conll")
    )
    # The run folder: the sequence model, and the token model under token_classification/, both with that prefix.
    sequence_model = sequence_auto.from_pretrained(out).eval()
    token_model = pm.AutoPrefixModelForTokenClassification.from_pretrained(out / TOKEN_FOLDER).eval()
    torch.testing.assert_close(sequence_model.prefix_encoder.embedding.weight.detach(), reviews)
    torch.testing.assert_close(token_model.prefix_encoder.embedding.weight.detach(), reviews)
    assert token_model.config.id2label[0] == "O" and sequence_model.config.id2label[1] == "positive"
    assert "| task | one prefix shared by: reviews, conll (NER) |" in model_card(out)[1]


@pytest.mark.parametrize("names, ner", [(["reviews", "conll"], ["conll"]), (["conll", "people"], ["conll", "people"])])
def test_without_shared_prefix_each_task_trains_a_prefix_of_its_own(names, ner, tiny_model, tmp_path, tasks):
    script = load_example("run_multitask")
    out = tmp_path / "out"
    results = script.main(script_args(tiny_model, out, **flags(tasks, names, ner), max_steps=4, do_train=True))
    assert results["train_samples"] > 0
    autos = {name: pm.AutoPrefixModelForTokenClassification for name in ner}
    tables = [
        prefix_table(out / "prefixes" / name, autos.get(name, pm.AutoPrefixModelForSequenceClassification))
        for name in names
    ]
    assert not torch.allclose(tables[0], tables[1])  # both start from the same text, then learn apart
    token_folder = out / TOKEN_FOLDER if len(ner) < len(names) else out
    token_model = pm.AutoPrefixModelForTokenClassification.from_pretrained(token_folder)
    assert token_model.prefix_names == ["default", *ner[1:]]
    assert "one prefix per task" in model_card(out)[1]


def mixed_model(tiny_model) -> MixedTaskModel:
    """The two models a mixed run builds, the token model's prefix encoder the sequence model's."""
    sequence_model = pm.AutoPrefixModelForSequenceClassification.from_pretrained(
        tiny_model, method="prefix", pre_seq_len=4, num_labels=2
    )
    token_model = pm.AutoPrefixModelForTokenClassification.from_pretrained(
        tiny_model, method="prefix", pre_seq_len=4, num_labels=3
    )
    token_model.prefix_encoder = sequence_model.prefix_encoder
    token_model.add_head("people", num_labels=2, id2label={0: "O", 1: "B-PERSON"}, label2id={"O": 0, "B-PERSON": 1})
    return MixedTaskModel(sequence_model, token_model)


def test_mixed_model_routes_each_kind_and_its_gradients(tiny_model, tmp_path):
    from prefix_models.scripts.mixed_tasks import share_frozen_backbone

    model = mixed_model(tiny_model).train()
    assert model.shares_prefix
    assert share_frozen_backbone(model.sequence_model, model.token_model) > 0
    # No tensor twice in what the Trainer saves and optimises.
    state = model.state_dict()
    assert len({tensor.data_ptr() for tensor in state.values()}) == len(state)
    assert "token_parts.classifier.out_proj.weight" in state and not any(key.startswith("token_model") for key in state)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    encoder = model.sequence_model.prefix_encoder.embedding.weight

    ner = token_batch(tokenizer, 2, None)
    ner["prefix_names"] = torch.tensor([1, 1])  # "people"
    model(**ner, task_kind=torch.tensor([TOKEN, TOKEN])).loss.backward()
    assert encoder.grad.abs().sum() > 0
    assert grad_of(model.token_model.prefix_bank["people"].classifier) > 0
    assert grad_of(model.sequence_model.classifier) is None  # a NER batch never reaches the sequence head
    assert grad_of(model.token_model.classifier) is None
    model.zero_grad(set_to_none=True)
    sequence = dict(tokenizer(["a good film", "a bad day"], padding=True, return_tensors="pt"))
    model(**sequence, labels=torch.tensor([1, 0]), task_kind=torch.tensor([SEQUENCE, SEQUENCE])).loss.backward()
    assert encoder.grad.abs().sum() > 0 and grad_of(model.sequence_model.classifier) > 0
    assert grad_of(model.token_model.prefix_bank["people"].classifier) is None
    with pytest.raises(ValueError, match=r"holds one kind of task"):
        model(**sequence, task_kind=torch.tensor([SEQUENCE, TOKEN]))

    # One optimiser step, then each task saved alone reloads to the same logits as the trained model.
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
    model.eval()
    model.sequence_model.save_prefix("default", tmp_path / "reviews")
    model.token_model.save_prefix("people", tmp_path / "people")
    plain = dict(tokenizer(["the director of the scene", "a good film"], padding=True, return_tensors="pt"))
    with torch.no_grad():
        reviews = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "reviews").eval()
        torch.testing.assert_close(reviews(**plain).logits, model.sequence_model(**plain).logits)
        people = pm.AutoPrefixModelForTokenClassification.from_pretrained(tmp_path / "people").eval()
        trained = model.token_model(**plain, prefix_names=["people", "people"]).logits[..., :2]
        torch.testing.assert_close(people(**plain).logits, trained)
    # A whole-run save reloads into both models (resume, best checkpoint).
    model.save_pretrained(tmp_path / "whole")
    again = mixed_model(tiny_model)
    again.load_trained(tmp_path / "whole")
    torch.testing.assert_close(again.sequence_model.prefix_encoder.embedding.weight, encoder)
    for mine, theirs in zip(again.token_parts.parameters(), model.token_parts.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs)
    # Modes and device/dtype moves reach the token model, whose backbone the wrapper does not register.
    again.train()
    assert again.token_model.training and again.token_model.base_model.training
    again.eval().to(torch.float64)
    assert not again.token_model.base_model.training
    assert {parameter.dtype for parameter in again.token_model.parameters()} == {torch.float64}


def test_kind_block_sampler_batches_one_kind_and_reshuffles():
    kinds = [SEQUENCE] * 7 + [TOKEN] * 5
    sampler = KindBlockSampler(kinds, block_size=3, seed=0)
    first = list(sampler)
    assert len(first) == len(sampler) == 9 + 6  # each kind's last block filled up with its own rows
    assert set(first) == set(range(12))
    blocks = [first[i : i + 3] for i in range(0, len(first), 3)]
    assert all(len({kinds[i] for i in block}) == 1 for block in blocks)
    assert {kinds[block[0]] for block in blocks} == {SEQUENCE, TOKEN}
    second = list(sampler)
    assert second != first  # a new epoch, a new order
    sampler.set_epoch(0)
    assert list(sampler) == first  # seeded by the epoch
    with pytest.raises(ValueError, match=r"block size of at least 1"):
        KindBlockSampler(kinds, block_size=0)


def test_mixed_collator_pads_each_kind_its_own_way(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    collate = MixedCollator(DataCollatorWithPadding(tokenizer), DataCollatorForTokenClassification(tokenizer))
    rows = [dict(tokenizer(text), task_kind=TOKEN, prefix_names=0) for text in ("a good film", "the director")]
    for row in rows:
        row["labels"] = [0] * len(row["input_ids"])
    batch = collate(rows)
    assert batch["labels"].shape == batch["input_ids"].shape and (batch["labels"][1] == -100).any()
    sequence_rows = [dict(tokenizer(text), task_kind=SEQUENCE, labels=1.0) for text in ("a good film", "the director")]
    assert collate(sequence_rows)["labels"].shape == (2,)
    with pytest.raises(ValueError, match=r"mixes sequence and token rows"):
        collate([rows[0], sequence_rows[0]])


def bad_dev(tmp_path, tasks):
    path = tmp_path / "data" / "people_bad.jsonl"
    path.write_text(json.dumps({"tokens": ["the", "director"], "ner_tags": ["O", "B-ORG"]}) + "\n")
    return {**tasks, "people": {**tasks["people"], "validation": path}}


def one_tag(tmp_path, tasks):
    path = tmp_path / "data" / "people_o.jsonl"
    path.write_text(json.dumps({"tokens": ["the", "film"], "ner_tags": ["O", "O"]}) + "\n")
    return {**tasks, "people": {**tasks["people"], "train": path}}


@pytest.mark.parametrize(
    "names, ner, change, message",
    [
        (["reviews", "conll"], ["conll", "nope"], None, r"--ner_tasks: \['nope'\] are not among --task_names"),
        (["reviews", "conll"], ["conll", "conll"], None, r"--ner_tasks names a task twice"),
        (["reviews", "conll"], ["reviews", "conll"], None, r"task reviews \(--ner_tasks\): --train_files .*reviews"),
        (["conll", "people"], ["conll", "people"], bad_dev, r"task people \(--ner_tasks\): .*'B-ORG' is not among"),
        (
            ["conll", "people"],
            ["conll", "people"],
            one_tag,
            r"task people \(--ner_tasks\): .*has only the tags \['O'\]",
        ),
    ],
)
def test_run_multitask_refuses_bad_ner_tasks(names, ner, change, message, tiny_model, tmp_path, tasks):
    script = load_example("run_multitask")
    given = change(tmp_path, tasks) if change else tasks
    with pytest.raises(ValueError, match=message) as caught:
        script.main(script_args(tiny_model, tmp_path / "out", **flags(given, names, ner), do_train=True, do_eval=True))
    assert "\n" not in str(caught.value) and "label_names_file" not in str(caught.value)


def test_run_multitask_refuses_ner_tasks_without_local_files(tiny_model, tmp_path):
    script = load_example("run_multitask")
    argv = script_args(
        tiny_model,
        tmp_path / "out",
        task_names="rte,mrpc",
        ner_tasks="mrpc",
        data_dir=FIXTURES / "glue_data",
        prefix=True,
        do_train=True,
    )
    with pytest.raises(ValueError, match=r"--ner_tasks needs local files"):
        script.main(argv)
    assert not (tmp_path / "out").exists()


def test_run_multitask_help_documents_ner_tasks():
    text = help_text("examples/run_multitask.py")
    assert "--ner_tasks" in text and "--return_entity_level_metrics" in text and "token_classification" in text
