"""``prefix_layers``: a prefix on chosen layers only. Below the lowest prefixed layer the hidden states are the
stock backbone's and nothing is kept for the backward pass; the parameters hold the chosen layers only;
checkpointing, generation, saving, routing, ``get_prompt`` and the scripts' ``--prefix_layers`` follow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from script_runs import script_args
from test_causal_lm import FAMILIES as DECODER_FAMILIES
from test_causal_lm import stock_config
from test_families import FAMILIES as ENCODER_FAMILIES
from test_families import inputs, make
from test_seq2seq import FAMILIES as SEQ2SEQ_FAMILIES
from test_seq2seq import batch as seq2seq_batch
from test_seq2seq import checkpoints, load  # noqa: F401  (checkpoints is a fixture)
from transformers import AutoModelForCausalLM

import prefix_models as pm
from prefix_models.configuration import kv_geometry, top_layers
from prefix_models.errors import InputError
from prefix_models.methods.prefix_tuning.injection import LAYER_ATTRIBUTE

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "examples" / "data" / "movie_reviews"
DEPTH = 4


def perturbed(module: torch.nn.Module, seed: int) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 1.0)


def deep(family: str, layers, task: str = "SequenceClassification", **overrides):
    model = make(family, "Prefix", task, num_hidden_layers=DEPTH, prefix_layers=layers, **overrides)
    perturbed(model.prefix_encoder, seed=2)
    return model


def encoder_states(model, batch) -> tuple[torch.Tensor, ...]:
    batch = {key: value for key, value in batch.items() if key != "labels"}
    return model.base_model(**batch, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
@torch.no_grad()
def test_layers_below_the_prefix_are_the_stock_backbones_and_a_masked_prefix_is_the_stock_model(family):
    model = deep(family, [2, 3])
    batch = inputs(family)
    with model.disable_prefix():
        stock = encoder_states(model, batch)
    ours = encoder_states(model, batch)
    # hidden_states[i] is the input of layer i: layers 0 and 1 run stock, 2 and 3 take the prefix.
    for index in range(3):
        torch.testing.assert_close(ours[index], stock[index], rtol=0, atol=1e-6)
    assert not torch.allclose(ours[3], stock[3], atol=1e-3)

    masked = torch.zeros(3, model.config.pre_seq_len, dtype=torch.long)
    plain = model(**batch, prefix_attention_mask=masked).logits
    with model.disable_prefix():
        torch.testing.assert_close(plain, model(**batch).logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["Bert", "Albert", "DebertaV2", "MPNet", "ModernBert"])
def test_only_the_chosen_layers_have_parameters_and_take_their_own_rows(family):
    model = deep(family, [-1, 1])  # the top layer and layer 1, in any order
    _, heads, head_dim = kv_geometry(model.config)
    assert model.prefix_encoder.embedding.weight.shape == (3, 2 * 2 * heads * head_dim)
    assert [tuple(key.shape[1:]) for key, _ in model.get_prompt(2)] == [(heads, 3, head_dim)] * 2

    # Each chosen layer reads its own row: changing row r moves only what layer (1, 3)[r] feeds.
    batch = inputs(family)
    with torch.no_grad():
        before = encoder_states(model, batch)
        width = model.prefix_encoder.embedding.weight.shape[1] // 2
        model.prefix_encoder.embedding.weight[:, width:] += 1.0  # row 1: layer 3's keys and values
        after = encoder_states(model, batch)
    for index in range(4):  # the inputs of layers 0..3 (and so the outputs of layers below 3)
        torch.testing.assert_close(after[index], before[index], rtol=0, atol=1e-6)
    assert not torch.allclose(after[4], before[4], atol=1e-4)


def test_a_top_layers_prefix_keeps_nothing_for_the_backward_pass_below_it():
    """Autograd saves tensors for backward only inside the prefixed layers and above."""
    model = deep("Bert", top_layers(2)).train()
    model.config.hidden_dropout_prob = 0.0
    current: list[int | None] = [None]
    saved_in: set[int | None] = set()
    for index, layer in enumerate(model.bert.encoder.layer):
        layer.register_forward_pre_hook(lambda module, args, index=index: current.__setitem__(0, index))
    model.bert.embeddings.register_forward_pre_hook(lambda module, args: current.__setitem__(0, "embeddings"))

    def pack(tensor):
        saved_in.add(current[0])
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(**inputs("Bert")).loss.backward()
    assert {2, 3} <= saved_in
    assert not saved_in & {0, 1, "embeddings"}

    everywhere = deep("Bert", None).train()
    current[0], saved_in = None, set()
    for index, layer in enumerate(everywhere.bert.encoder.layer):
        layer.register_forward_pre_hook(lambda module, args, index=index: current.__setitem__(0, index))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        everywhere(**inputs("Bert")).loss.backward()
    assert {0, 1, 2, 3} <= saved_in  # the control: a prefix at layer 0 keeps every layer


@pytest.mark.parametrize("family", ["Bert", "DebertaV2"])
def test_gradient_checkpointing_gives_equal_gradients(family):
    grads = []
    for checkpointing in (False, True):
        model = deep(family, [1, 3], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model(**inputs(family)).loss.backward()
        grads.append(model.prefix_encoder.embedding.weight.grad.clone())
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable == {name for name in trainable if name.startswith(("prefix_encoder.", "classifier."))}


def test_save_and_reload_give_identical_logits_and_a_checkpoint_of_the_chosen_layers(tmp_path, tiny_model):
    full = pm.BertPrefixForSequenceClassification.from_pretrained(tiny_model, pre_seq_len=4)
    top = pm.BertPrefixForSequenceClassification.from_pretrained(tiny_model, pre_seq_len=4, prefix_layers=[-1])
    perturbed(top.prefix_encoder, seed=3)
    top.eval()
    batch = inputs("Bert")
    batch.pop("labels")
    top.save_pretrained(tmp_path / "top")
    full.save_pretrained(tmp_path / "full")
    assert json.loads((tmp_path / "top" / "config.json").read_text())["prefix_layers"] == [-1]
    reloaded = pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "top").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, top(**batch).logits, rtol=0, atol=0)
    layers = full.config.num_hidden_layers
    assert top.prefix_encoder.embedding.weight.numel() * layers == full.prefix_encoder.embedding.weight.numel()
    # A prefix saved for some layers refuses to load onto others, by name.
    with pytest.raises(InputError, match=r"prefix_encoder.embedding.weight"):
        pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "top", prefix_layers=None)


@pytest.mark.parametrize("family", DECODER_FAMILIES)
@torch.no_grad()
def test_a_decoder_prefix_on_the_top_layers_generates_and_leaves_the_layers_below_stock(family):
    config = stock_config(family, pre_seq_len=3, num_hidden_layers=DEPTH, prefix_layers=[-2, -1])
    torch.manual_seed(0)
    stock = AutoModelForCausalLM.from_config(stock_config(family, num_hidden_layers=DEPTH)).eval()
    model = pm.AutoPrefixModelForCausalLM.from_config(config).eval()
    model.load_state_dict(stock.state_dict(), strict=False)
    perturbed(model.prefix_encoder, seed=1)
    assert model.prefix_encoder.embedding.weight.shape[1] == 2 * 2 * kv_geometry(config)[1] * kv_geometry(config)[2]
    input_ids = torch.randint(3, 60, (2, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(input_ids)
    ours = model.base_model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
    plain = stock.base_model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
    for index in range(3):
        torch.testing.assert_close(ours[index], plain[index], rtol=0, atol=1e-5)
    assert not torch.allclose(ours[-1], plain[-1], atol=1e-3)

    generated = model.generate(input_ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert generated.shape == (2, 10)
    # Generation with the cache equals the step-by-step forward without it.
    logits = model(generated, attention_mask=torch.ones_like(generated)).logits
    torch.testing.assert_close(logits[:, 5:-1].argmax(-1), generated[:, 6:])
    masked = torch.zeros(2, 3, dtype=torch.long)
    torch.testing.assert_close(
        model(input_ids, attention_mask=mask, prefix_attention_mask=masked).logits,
        stock(input_ids, attention_mask=mask).logits,
        rtol=0,
        atol=1e-5,
    )


@pytest.mark.parametrize("family", SEQ2SEQ_FAMILIES)
@torch.no_grad()
def test_an_encoder_decoder_applies_prefix_layers_per_attention_kind(family, checkpoints):  # noqa: F811
    model = load(checkpoints, family, prefix_layers=[-1])
    kinds = model.get_prompt_by_kind(2)
    assert list(kinds) == ["encoder", "decoder", "cross"] and all(len(rows) == 1 for rows in kinds.values())
    tags = {module._prefix_layer_index for module in model.modules() if hasattr(module, LAYER_ATTRIBUTE)}
    assert len(tags) > 3  # every attention is tagged; the state maps only the top layer of each kind
    input_ids, mask, decoder_input_ids = seq2seq_batch()
    logits = model(input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    encoded = model.get_encoder()(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
    with model.disable_prefix():
        plain = model.get_encoder()(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
        plain_logits = model(input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    torch.testing.assert_close(encoded.hidden_states[1], plain.hidden_states[1], rtol=0, atol=1e-6)
    assert not torch.allclose(encoded.last_hidden_state, plain.last_hidden_state, atol=1e-3)
    assert not torch.allclose(logits, plain_logits, atol=1e-3)
    generated = model.generate(input_ids, attention_mask=mask, max_new_tokens=3, do_sample=False)
    assert generated.shape[0] == input_ids.shape[0]

    cross_top = load(checkpoints, family, prefix_kinds=["cross"], prefix_layers=[0])
    assert list(cross_top.get_prompt_by_kind(1)) == ["cross"] and len(cross_top.get_prompt(1)) == 1
    cross_top(input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids)


@torch.no_grad()
def test_routed_tasks_of_one_depth_share_a_batch_and_of_two_depths_are_refused_by_name():
    model = deep("Bert", [2, 3], task="TokenClassification")
    model.add_prefix("b")
    perturbed(model.task_modules("b")["prefix_encoder"], seed=4)
    model.add_prefix("shallow", prefix_layers=[3])
    batch = inputs("Bert", "TokenClassification")
    batch.pop("labels")
    names = ["default", "b", "b"]
    together = model(**batch, prefix_names=names).logits
    for row, name in enumerate(names):
        alone = model(**{key: value[row : row + 1] for key, value in batch.items()}, prefix_names=[name]).logits
        torch.testing.assert_close(together[row : row + 1, :, : alone.shape[-1]], alone, rtol=0, atol=1e-5)
    alone = model(**batch, prefix_names=["shallow"] * 3).logits  # a task of its own depth, batched alone
    assert (
        model.task_modules("shallow")["prefix_encoder"].embedding.weight.shape[1] * 2
        == (model.prefix_encoder.embedding.weight.shape[1])
    )
    assert alone.shape[:2] == batch["input_ids"].shape
    with pytest.raises(
        InputError,
        match=r"different layers in one batch .*default: prefix_layers=\[2, 3\].*"
        r"shallow: prefix_layers=\[3\]",
    ):
        model(**batch, prefix_names=["default", "shallow", "b"])


def test_peft_export_of_a_partial_depth_prefix_is_refused_and_writes_nothing(tmp_path):
    config = stock_config("gpt2", pre_seq_len=3, prefix_layers=[-1])
    model = pm.AutoPrefixModelForCausalLM.from_config(config)
    model.config.base_model_name_or_path = "some/base"
    with pytest.raises(InputError, match=r"prefix on every layer.*prefix_layers=\[-1\]"):
        model.save_peft_adapter(tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


BAD = {
    "out of range": ([4], r"prefix_layers has \[4\], out of range: it takes distinct layer indices in \[-4, 3\]"),
    "below the bottom": ([-5, 1], r"prefix_layers has \[-5\], out of range"),
    "a duplicate": ([1, -3], r"prefix_layers names layer \[1\] more than once"),
    "empty": ([], r"prefix_layers must be a non-empty list of distinct layer indices in \[-4, 3\].*got \[\]"),
    "not integers": (["top2"], r"prefix_layers must be a non-empty list"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_prefix_layers_fail_by_name_with_the_allowed_range(case):
    layers, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        deep("Bert", layers)


def test_prefix_layers_with_prompt_tuning_is_refused():
    with pytest.raises(ValueError, match=r"prefix_layers applies to prefix tuning"):
        make("Bert", "Prompt", prefix_layers=[1])


def run_glue(model: Path, output_dir: Path, *args: str, **options: object) -> subprocess.CompletedProcess:
    """run_glue.py in a process of its own, training on the shipped movie reviews."""
    argv = script_args(model, output_dir, *args, train_file=REVIEWS / "train.csv", **options)
    return subprocess.run(
        [sys.executable, str(ROOT / "run_glue.py"), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )


def test_run_glue_prefix_layers_top_n_trains_and_saves_the_top_layers(tmp_path, tiny_model):
    out = tmp_path / "out"
    completed = run_glue(
        tiny_model,
        out,
        validation_file=REVIEWS / "validation.csv",
        max_train_samples=16,
        max_eval_samples=8,
        prefix=True,
        prefix_layers="top1",
        do_train=True,
        do_eval=True,
        num_train_epochs=1,
        per_device_train_batch_size=8,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["prefix_layers"] == [-1]


@pytest.mark.parametrize(
    "value, message",
    [
        ("9", r"prefix_layers has \[9\], out of range: it takes distinct layer indices in \[-2, 1\]"),
        ("0,0", r"prefix_layers names layer \[0\] more than once"),
        ("top", r"--prefix_layers 'top': takes 'all', 'topN'"),
        ("one,two", r"--prefix_layers 'one,two': takes"),
    ],
)
def test_run_glue_bad_prefix_layers_fail_before_anything_is_written(tmp_path, tiny_model, value, message):
    out = tmp_path / "out"
    completed = run_glue(tiny_model, out, prefix=True, prefix_layers=value, do_train=True)
    assert completed.returncode != 0
    assert re.search(message, completed.stderr), completed.stderr[-2000:]
    assert not out.exists()


def test_run_glue_prefix_layers_with_prompt_is_refused(tmp_path, tiny_model):
    out = tmp_path / "out"
    prompt = run_glue(tiny_model, out, prompt=True, prefix_layers="top1", do_train=True)
    assert "--prefix_layers applies to --prefix" in prompt.stderr and not out.exists()
