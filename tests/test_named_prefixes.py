"""Several tasks on one frozen backbone (``named_prefixes.py``): a mixed batch equals each task alone
(encoder heads, decoder and encoder-decoder ``generate``), each task trains from its own examples only,
one task saves and reloads alone, a model holding several saves and reloads whole, and an ensemble of
prefixes equals the mean of its members."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import main_output, minilm, task_inputs, tiny_config
from tiny_families import DECODER_CONFIGS, SEQ2SEQ_CONFIGS
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    BertModel,
    Trainer,
    TrainingArguments,
)

import prefix_models as pm

TASKS = ("SequenceClassification", "TokenClassification", "MultipleChoice", "QuestionAnswering")
# Three tasks on one base: different lengths, label counts and (sequence tasks) pooling.
TASK_SETTINGS = {
    "default": dict(pre_seq_len=4, num_labels=2),
    "b": dict(pre_seq_len=6, num_labels=3),
    "c": dict(pre_seq_len=3, num_labels=2, classifier_pooling="mean"),
}


def auto_class(task: str):
    return getattr(pm, f"AutoPrefixModelFor{task}")


def randomize(model, seed: int) -> None:
    """Trainable tensors far from their init, so that a wrong prefix or head shows."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 0.5)


@pytest.fixture(scope="module")
def bert_base(tmp_path_factory):
    path = tmp_path_factory.mktemp("named-base")
    torch.manual_seed(123)
    BertModel(tiny_config("Bert")).save_pretrained(path)
    return path


_SAVED: dict = {}


def saved_tasks(bert_base, tmp_path_factory, task: str, method: str, attn: str = "eager") -> dict[str, object]:
    """Three one-task checkpoints of ``task`` on the same base: name -> folder."""
    key = (task, method, attn)
    if key not in _SAVED:
        folders = {}
        for seed, (name, settings) in enumerate(TASK_SETTINGS.items()):
            model = auto_class(task).from_pretrained(bert_base, method=method, attn_implementation=attn, **settings)
            randomize(model, seed)
            folders[name] = tmp_path_factory.mktemp(f"{task}-{method}-{attn}-{name}")
            model.save_pretrained(folders[name])
        _SAVED[key] = folders
    return _SAVED[key]


def multi_task_model(folders, task: str, attn: str = "eager"):
    model = auto_class(task).from_pretrained(folders["default"], attn_implementation=attn).eval()
    model.load_prefix(folders["b"], "b")
    model.load_prefix(folders["c"], "c")
    return model


def rows(batch: dict, row: int) -> dict:
    return {key: value[row : row + 1] for key, value in batch.items()}


def own_part(model_output: torch.Tensor, alone: torch.Tensor) -> torch.Tensor:
    """A routed row's output cut to the width its task's head has."""
    return model_output[(slice(None),) * (alone.dim() - 1) + (slice(0, alone.shape[-1]),)]


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("task", TASKS)
def test_a_mixed_batch_equals_each_task_alone(task, method, bert_base, tmp_path_factory):
    folders = saved_tasks(bert_base, tmp_path_factory, task, method)
    model = multi_task_model(folders, task)
    assert model.prefix_names == ["default", "b", "c"]
    model_class = type(model)
    batch = task_inputs(model_class, batch_size=3)
    names = ["b", "default", "c"]
    with torch.no_grad():
        mixed = model(**batch, prefix_names=names)
        for row, name in enumerate(names):
            alone_model = auto_class(task).from_pretrained(folders[name]).eval()
            alone = alone_model(**rows(batch, row))
            expected = main_output(model_class, alone)
            got = main_output(model_class, mixed)[:, row : row + 1] if task == "QuestionAnswering" else None
            if got is None:
                got = own_part(mixed.logits[row : row + 1], expected)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        # Columns past a row's own labels are -inf (task b has 3 labels, the others 2).
        if task in ("SequenceClassification", "TokenClassification"):
            assert mixed.logits.shape[-1] == 3
            assert torch.isinf(mixed.logits[1, ..., 2]).all() and torch.isfinite(mixed.logits[0]).all()
        # The loss is the per-example mean: tasks weighted by how many examples they have.
        losses = [
            auto_class(task).from_pretrained(folders[name]).eval()(**rows(batch, row)).loss
            for row, name in enumerate(names)
        ]
        torch.testing.assert_close(mixed.loss, torch.stack(losses).mean(), rtol=1e-5, atol=1e-6)
        # peft's name for the argument, and positions in prefix_names, route the same way.
        aliased = model(**batch, adapter_names=names)
        by_position = model(**batch, prefix_names=torch.tensor([1, 0, 2]))
    torch.testing.assert_close(main_output(model_class, aliased), main_output(model_class, mixed))
    torch.testing.assert_close(main_output(model_class, by_position), main_output(model_class, mixed))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_mixed_batches_hold_under_both_attention_implementations_and_no_names_is_unchanged(
    attn, bert_base, tmp_path_factory
):
    folders = saved_tasks(bert_base, tmp_path_factory, "SequenceClassification", "prefix", attn)
    model = multi_task_model(folders, "SequenceClassification", attn)
    alone = auto_class("SequenceClassification").from_pretrained(folders["default"], attn_implementation=attn).eval()
    batch = task_inputs(type(model), batch_size=3)
    with torch.no_grad():
        # Loading more tasks does not change the model's own outputs, with or without names.
        torch.testing.assert_close(model(**batch).logits, alone(**batch).logits)
        routed = model(**batch, prefix_names=["default"] * 3).logits
        torch.testing.assert_close(routed, alone(**batch).logits, rtol=1e-5, atol=1e-5)
        b_alone = auto_class("SequenceClassification").from_pretrained(folders["b"], attn_implementation=attn).eval()
        mixed = model(**batch, prefix_names=["default", "b", "b"]).logits
        expected = torch.cat([b_alone(**rows(batch, row)).logits for row in (1, 2)])
        torch.testing.assert_close(mixed[1:], expected, rtol=1e-5, atol=1e-5)


def test_each_task_trains_from_its_own_examples_only(bert_base, tmp_path_factory):
    folders = saved_tasks(bert_base, tmp_path_factory, "SequenceClassification", "prefix")
    model = multi_task_model(folders, "SequenceClassification").train()
    batch = task_inputs(type(model), batch_size=3)
    model(**batch, prefix_names=["default", "b", "b"]).loss.backward()
    grads = {
        name: [p.grad for module in model.task_modules(name).values() for p in module.parameters()]
        for name in model.prefix_names
    }
    assert all(g is not None and g.abs().sum() > 0 for name in ("default", "b") for g in grads[name])
    assert all(g is None or not g.any() for g in grads["c"])  # no example of c: its prefix and head get nothing
    assert all(p.grad is None for p in model.base_model.parameters())


def test_the_stock_trainer_trains_tasks_in_mixed_batches(bert_base, tmp_path_factory, tmp_path):
    """A dataset column ``prefix_names`` (positions in ``model.prefix_names``) reaches the model through the
    Trainer's collator; a task without examples stays exactly as loaded."""
    folders = saved_tasks(bert_base, tmp_path_factory, "SequenceClassification", "prefix")
    model = multi_task_model(folders, "SequenceClassification")
    before = {
        name: {key: value.clone() for key, value in model.prefix_bank[name].state_dict().items()} for name in ("b", "c")
    }
    generator = torch.Generator().manual_seed(0)
    examples = [
        {
            "input_ids": torch.randint(5, 100, (8,), generator=generator).tolist(),
            "label": index % 2,
            "prefix_names": index % 2,
        }  # default and b only
        for index in range(8)
    ]
    args = TrainingArguments(
        tmp_path,
        per_device_train_batch_size=4,
        num_train_epochs=1,
        learning_rate=0.1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
    )
    Trainer(model=model, args=args, train_dataset=examples).train()
    after = {name: model.prefix_bank[name].state_dict() for name in ("b", "c")}
    assert any(not torch.equal(before["b"][key], after["b"][key]) for key in after["b"])
    assert all(torch.equal(before["c"][key], after["c"][key]) for key in after["c"])


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_one_task_saves_alone_and_a_multi_task_model_reloads_whole(method, bert_base, tmp_path_factory, tmp_path):
    folders = saved_tasks(bert_base, tmp_path_factory, "SequenceClassification", method)
    model = multi_task_model(folders, "SequenceClassification")
    batch = task_inputs(type(model), batch_size=3)
    names = ["c", "b", "default"]
    with torch.no_grad():
        mixed = model(**batch, prefix_names=names).logits
    # One task, alone: our Auto class and, after `import prefix_models`, the stock one.
    model.save_prefix("b", tmp_path / "b")
    for loader in (auto_class("SequenceClassification"), AutoModelForSequenceClassification):
        alone = loader.from_pretrained(tmp_path / "b").eval()
        assert alone.prefix_names == ["default"] and alone.config.num_labels == 3
        with torch.no_grad():
            torch.testing.assert_close(alone(**rows(batch, 1)).logits, mixed[1:2], rtol=1e-5, atol=1e-5)
    # The whole model: every task comes back, under its name.
    model.save_pretrained(tmp_path / "all")
    again = auto_class("SequenceClassification").from_pretrained(tmp_path / "all").eval()
    assert again.prefix_names == ["default", "b", "c"]
    with torch.no_grad():
        torch.testing.assert_close(again(**batch, prefix_names=names).logits, mixed)
    again.delete_prefix("c")
    assert again.prefix_names == ["default", "b"] and set(again.config.prefix_tasks) == {"b"}


@pytest.mark.parametrize("problem", ["single_label_classification", "regression"])
def test_an_ensemble_equals_the_mean_of_its_members(problem, bert_base, tmp_path):
    members = {}
    for seed, name in enumerate(("default", "p1", "p2")):
        labels = 1 if problem == "regression" else 3
        model = auto_class("SequenceClassification").from_pretrained(
            bert_base, pre_seq_len=3 + seed, num_labels=labels, problem_type=problem
        )
        randomize(model, seed)
        model.save_pretrained(tmp_path / name)
        members[name] = tmp_path / name
    model = auto_class("SequenceClassification").from_pretrained(members["default"]).eval()
    model.load_prefix(members["p1"], "p1")
    model.load_prefix(members["p2"], "p2")
    ensemble = model.prefix_ensemble(["default", "p1", "p2"])
    batch = task_inputs(type(model), batch_size=3)
    labels = batch.pop("labels")
    if problem == "regression":
        labels = labels.float()
    with torch.no_grad():
        output = ensemble(**batch, labels=labels)
        singles = [model(**batch, prefix_names=[name] * 3).logits for name in ("default", "p1", "p2")]
    if problem == "regression":
        torch.testing.assert_close(output.logits, torch.stack(singles).mean(0))
    else:
        mean = torch.stack([single.softmax(-1) for single in singles]).mean(0)
        torch.testing.assert_close(output.logits.softmax(-1), mean)
        torch.testing.assert_close(output.loss, torch.nn.functional.nll_loss(mean.log(), labels))


def _unchanged(model):
    return list(model.prefix_names), dict(model.config.prefix_tasks or {}), sorted(model.state_dict())


def test_bad_names_and_foreign_prefixes_are_clear_errors_that_change_nothing(bert_base, tmp_path_factory, tmp_path):
    folders = saved_tasks(bert_base, tmp_path_factory, "SequenceClassification", "prefix")
    model = multi_task_model(folders, "SequenceClassification")
    batch = task_inputs(type(model), batch_size=3)
    state = _unchanged(model)
    other_base = tmp_path / "other-base"
    torch.manual_seed(9)
    BertModel(tiny_config("Bert")).save_pretrained(other_base)
    foreign = auto_class("SequenceClassification").from_pretrained(other_base, pre_seq_len=4)
    foreign.save_pretrained(tmp_path / "foreign")
    prompt_task = saved_tasks(bert_base, tmp_path_factory, "SequenceClassification", "prompt")["b"]
    token_task = saved_tasks(bert_base, tmp_path_factory, "TokenClassification", "prefix")["b"]
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text('{"peft_type": "LORA", "base_model_name_or_path": "x", "r": 8}')
    cases = {
        "unknown name": (lambda: model(**batch, prefix_names=["b", "nope", "c"]), r"unknown prefix names \['nope'\]"),
        "wrong length": (lambda: model(**batch, prefix_names=["b", "c"]), r"prefix_names has 2 entries.*3 examples"),
        "a string": (lambda: model(**batch, prefix_names="b"), r"one prefix name per example"),
        "both names": (lambda: model(**batch, prefix_names=["b"] * 3, adapter_names=["b"] * 3), r"not both"),
        "position out of range": (lambda: model(**batch, prefix_names=torch.tensor([0, 3, 1])), r"\[0, 3\)"),
        "another base": (lambda: model.load_prefix(tmp_path / "foreign", "f"), r"trained on the base model .*other"),
        "another method": (lambda: model.load_prefix(prompt_task, "p"), r"prompt-tuning task.*prefix tuning"),
        "another task kind": (lambda: model.load_prefix(token_task, "t"), r"ForTokenClassification task"),
        "a name taken": (lambda: model.load_prefix(folders["b"], "b"), r"already loaded"),
        "the default name": (lambda: model.load_prefix(folders["b"], "default"), r"already loaded"),
        "a name with a dot": (lambda: model.load_prefix(folders["b"], "a.b"), r"letters, digits"),
        "a backbone checkpoint": (lambda: model.load_prefix(bert_base, "base"), r"not a prefix-only checkpoint"),
        "a LoRA adapter": (lambda: model.load_prefix(lora, "lora"), r"LORA.*prefix"),
        "an unknown name to save": (lambda: model.save_prefix("nope", tmp_path / "x"), r"unknown prefix name"),
        "deleting the default": (lambda: model.delete_prefix("default"), r"cannot be deleted"),
        "ensemble of unknown": (lambda: model.prefix_ensemble(["b", "zz"]), r"unknown prefix names"),
        "ensemble across label counts": (lambda: model.prefix_ensemble(["default", "b"]), r"share their labels"),
    }
    for name, (call, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            call()
        assert _unchanged(model) == state, name
    assert not (tmp_path / "x").exists()


# --- decoders and encoder-decoders: generate() with a mixed batch ---------------------------------------


@pytest.fixture(scope="module")
def lm_bases(tmp_path_factory):
    paths = {}
    for family in ("GPT2", "Llama"):
        torch.manual_seed(7)
        paths[family] = tmp_path_factory.mktemp(f"named-{family}")
        AutoModelForCausalLM.from_config(DECODER_CONFIGS[family](vocab_size=60)).save_pretrained(paths[family])
    torch.manual_seed(7)
    paths["T5"] = tmp_path_factory.mktemp("named-T5")
    AutoModelForSeq2SeqLM.from_config(SEQ2SEQ_CONFIGS["T5"]()).save_pretrained(paths["T5"])
    return paths


def _lm_tasks(auto, base, method, tmp_path):
    folders = {}
    for seed, (name, length) in enumerate((("default", 3), ("b", 5), ("c", 2))):
        model = auto.from_pretrained(base, method=method, pre_seq_len=length)
        randomize(model, seed)
        folders[name] = tmp_path / name
        model.save_pretrained(folders[name])
    model = auto.from_pretrained(folders["default"]).eval()
    model.load_prefix(folders["b"], "b")
    model.load_prefix(folders["c"], "c")
    return model, folders


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("family", ["GPT2", "Llama", "T5"])
def test_generate_with_a_mixed_batch_equals_each_task_alone(family, method, lm_bases, tmp_path):
    seq2seq = family == "T5"
    auto = pm.AutoPrefixModelForSeq2SeqLM if seq2seq else pm.AutoPrefixModelForCausalLM
    model, folders = _lm_tasks(auto, lm_bases[family], method, tmp_path)
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(3, 60, (3, 6), generator=generator)
    mask = torch.ones(3, 6, dtype=torch.long)
    lengths = (6, 4, 3)
    for row, length in enumerate(lengths):  # decoders pad on the left, encoder-decoders on the right
        if seq2seq:
            mask[row, length:] = 0
        else:
            mask[row, : 6 - length] = 0
    input_ids = input_ids.masked_fill(mask == 0, 0)
    names = ["b", "c", "default"]
    settings = dict(max_new_tokens=4, do_sample=False, pad_token_id=0, suppress_tokens=[0, 1, 2])
    for beams in (1, 2):
        mixed = model.generate(input_ids, attention_mask=mask, prefix_names=names, num_beams=beams, **settings)
        for row, name in enumerate(names):
            alone_model = auto.from_pretrained(folders[name]).eval()
            real = mask[row].bool()
            alone = alone_model.generate(input_ids[row : row + 1, real], num_beams=beams, **settings)
            new = alone[0, -4:] if not seq2seq else alone[0]
            got = mixed[row, -4:] if not seq2seq else mixed[row, : len(new)]
            assert got.tolist() == new.tolist(), (row, name, beams)


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The named-prefix example of the docs' many-tasks guide, as written, on the pretrained MiniLM the setup
    installs."""
    minilm()  # skips when the README setup was not followed
    readme = (Path(__file__).resolve().parents[1] / "docs/guides/many-tasks.md").read_text()
    block = readme.split("<!-- readme:named-prefixes -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "docs/guides/many-tasks.md", "exec"), namespace)
    assert capsys.readouterr().out.splitlines()[:2] == ["['default', 'topic']", "torch.Size([2, 4])"]
    assert torch.isinf(namespace["logits"][0, 2:]).all() and torch.isfinite(namespace["logits"][1]).all()
    torch.testing.assert_close(namespace["probabilities"].sum(-1), torch.ones(2))
    assert (tmp_path / "tasks" / "topic-alone" / "model.safetensors").exists()


def test_merging_folds_every_named_mlp_and_masks_combine_with_routes(bert_base, tmp_path):
    model = auto_class("SequenceClassification").from_pretrained(bert_base, pre_seq_len=3).eval()
    model.add_prefix("mlp", pre_seq_len=5, prefix_projection=True, prefix_hidden_size=16)
    randomize(model, 4)
    batch = task_inputs(type(model), batch_size=3)
    batch.pop("labels")
    names = ["mlp", "default", "mlp"]
    with torch.no_grad():
        before = model(**batch, prefix_names=names).logits
        model.merge_prefix_projection()
        torch.testing.assert_close(model(**batch, prefix_names=names).logits, before, rtol=1e-5, atol=1e-5)
    assert not hasattr(model.prefix_bank["mlp"].prefix_encoder, "trans")
    model.save_pretrained(tmp_path / "merged")
    again = auto_class("SequenceClassification").from_pretrained(tmp_path / "merged").eval()
    assert again.prefix_config("mlp").prefix_projection is False
    with torch.no_grad():
        torch.testing.assert_close(again(**batch, prefix_names=names).logits, before, rtol=1e-5, atol=1e-5)
        # A prefix_attention_mask with routes is (batch, longest prefix); zeros switch every row's prefix off.
        off = torch.zeros(3, 5, dtype=torch.long)
        plain = again(**batch, prefix_names=names, prefix_attention_mask=off).logits
        torch.testing.assert_close(
            plain[1:2, :2],
            again(**rows(batch, 1), prefix_attention_mask=torch.zeros(1, 3, dtype=torch.long)).logits,
            rtol=1e-5,
            atol=1e-5,
        )
    with pytest.raises(ValueError, match=r"\(batch, longest prefix in the batch\) = \(3, 5\)"):
        again(**batch, prefix_names=names, prefix_attention_mask=torch.ones(3, 3, dtype=torch.long))


def test_bart_prompts_of_different_lengths_are_refused_in_one_batch(tmp_path):
    torch.manual_seed(7)
    AutoModelForSeq2SeqLM.from_config(SEQ2SEQ_CONFIGS["Bart"]()).save_pretrained(tmp_path / "base")
    model = pm.AutoPrefixModelForSeq2SeqLM.from_pretrained(tmp_path / "base", method="prompt", pre_seq_len=3)
    model.add_prefix("same", pre_seq_len=3)
    model.add_prefix("longer", pre_seq_len=5)
    input_ids = torch.randint(3, 60, (2, 6))
    model.generate(input_ids, prefix_names=["same", "default"], max_new_tokens=2)  # equal lengths: fine
    with pytest.raises(ValueError, match=r"prompts of different lengths \(\[3, 5\]\).*Group the examples"):
        model.generate(input_ids, prefix_names=["longer", "default"], max_new_tokens=2)
