"""Every encoder family x method x task head on tiny random configs: the prefix enters every
attention layer, a masked prefix is exactly the stock backbone, only the prefix and head train,
gradient checkpointing changes nothing, prefix-only saves reload through the stock Auto classes,
and every pretrained backbone tensor loads (or the load is refused)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from tiny_families import EAGER_ONLY, ENCODER_CONFIGS, NO_TOKEN_TYPES, VOCAB
from transformers import CONFIG_MAPPING, AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

import prefix_models as pm
from prefix_models.families import ENCODER_FAMILIES, ENCODER_TASKS

FAMILIES = tuple(ENCODER_CONFIGS)
METHODS = ("Prefix", "Prompt")


def model_class(family: str, method: str, task: str):
    return getattr(pm, f"{family}{method}For{task}")


def inputs(family: str, task: str = "SequenceClassification", batch=3, seq=8, seed=1):
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, 2, seq) if task == "MultipleChoice" else (batch, seq)
    input_ids = torch.randint(5, VOCAB, shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    mask[1, ..., 5:] = 0
    mask[2, ..., 3:] = 0
    batch_inputs = {"input_ids": input_ids.masked_fill(mask == 0, 0), "attention_mask": mask}
    if family not in NO_TOKEN_TYPES:
        batch_inputs["token_type_ids"] = torch.zeros_like(input_ids).index_fill(-1, torch.arange(4, seq), 1) * mask
    if task == "SequenceClassification":
        batch_inputs["labels"] = torch.tensor([0, 1, 1])
    elif task == "TokenClassification":
        batch_inputs["labels"] = torch.randint(0, 2, shape, generator=generator).masked_fill(mask == 0, -100)
    elif task == "MultipleChoice":
        batch_inputs["labels"] = torch.tensor([0, 1, 1])
    else:
        batch_inputs["start_positions"], batch_inputs["end_positions"] = (
            torch.tensor([0, 1, 2]),
            torch.tensor([3, 4, 2]),
        )
    return batch_inputs


def make(
    family: str,
    method: str,
    task: str = "SequenceClassification",
    attn="eager",
    seed=0,
    config_override=None,
    **overrides,
):
    overrides.setdefault("pre_seq_len", 3)
    if family == "ModernBert" and method == "Prompt":
        # Soft tokens sit inside ModernBERT's local attention window (an index window, not a
        # position one): a window wider than the whole input keeps the plain model's view.
        overrides.setdefault("local_attention", 64)
    torch.manual_seed(seed)
    if config_override is not None:
        config = config_override
        config.update(overrides)
        config._attn_implementation_internal = attn
    else:
        config = ENCODER_CONFIGS[family](attn_implementation=attn, **overrides)
    model = model_class(family, method, task)(config).eval()
    with torch.no_grad():  # far from zero, so that the prefix visibly matters
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 1.0)
    return model


def stock_backbone(model, attn: str):
    """The stock backbone class with the model's backbone weights, under the stock attention."""
    config = CONFIG_MAPPING[model.config.base_model_type](**model.config.to_dict())
    stock = type(model.base_model)._from_config(config, attn_implementation=attn).eval()
    stock.load_state_dict(model.base_model.state_dict())
    return stock


def test_the_named_classes_and_auto_classes_cover_every_family():
    auto = {
        "SequenceClassification": pm.AutoPrefixModelForSequenceClassification,
        "TokenClassification": pm.AutoPrefixModelForTokenClassification,
        "MultipleChoice": pm.AutoPrefixModelForMultipleChoice,
        "QuestionAnswering": pm.AutoPrefixModelForQuestionAnswering,
    }
    assert {family.name for family in ENCODER_FAMILIES} == set(FAMILIES)
    for family in ENCODER_FAMILIES:
        model_type = family.config.model_type
        for method in METHODS:
            for task in ENCODER_TASKS:
                cls = model_class(family.name, method, task)
                assert cls.__module__ == "prefix_models.named_classes" and cls.backbone_class is family.backbone
                assert auto[task].model_class(model_type, method.lower()) is cls


ATTENTION_CASES = [(f, a) for f in FAMILIES for a in (["eager"] if f in EAGER_ONLY else ["eager", "sdpa"])]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("family", "attn"), ATTENTION_CASES)
def test_masked_prefix_equals_the_stock_backbone(family, method, attn):
    model = make(family, method, attn=attn)
    batch = inputs(family)
    batch.pop("labels")
    real = batch["attention_mask"].bool()
    stock = stock_backbone(model, attn)
    with torch.no_grad():
        expected = stock(**batch)
        masked = model.encode(**batch, prefix_attention_mask=torch.zeros(3, 3, dtype=torch.long))
        on = model.encode(**batch).sequence_output
    off, expected_pooled, expected = masked.sequence_output, getattr(expected, "pooler_output", None), expected[0]
    torch.testing.assert_close(off[real], expected[real], rtol=1e-5, atol=1e-5)
    if expected_pooled is not None:  # the head reads the backbone's own pooler (BERT, ALBERT, ...)
        torch.testing.assert_close(model.pooled_features(masked), expected_pooled, rtol=1e-5, atol=1e-5)
    assert (on[real] - expected[real]).abs().max() > 1e-3  # the prefix does reach the backbone


@pytest.mark.parametrize("family", FAMILIES)
def test_every_layer_gets_its_own_prefix(family):
    """Zeroing one layer's prefix changes the output: no layer reads another's, none is skipped."""
    model = make(family, "Prefix")
    batch = inputs(family)
    batch.pop("labels")
    with torch.no_grad():
        full = model.encode(**batch).sequence_output
        prompt = model.get_prompt(3)
        assert len(prompt) == model.config.num_hidden_layers
        for layer in range(model.config.num_hidden_layers):
            weight = model.prefix_encoder.embedding.weight
            saved = weight.clone()
            width = weight.shape[1] // model.config.num_hidden_layers
            weight[:, layer * width : (layer + 1) * width] = 0
            changed = model.encode(**batch).sequence_output
            weight.copy_(saved)
            assert (changed - full).abs().max() > 1e-3, f"layer {layer}'s prefix is not used"


@pytest.mark.parametrize("task", list(ENCODER_TASKS))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", FAMILIES)
def test_only_the_prefix_and_head_train(family, method, task):
    model = make(family, method, task)
    model.train()
    output = model(**inputs(family, task))
    output.loss.backward()
    encoder = "prefix_encoder." if method == "Prefix" else "prompt_encoder."
    trained = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(name.startswith(encoder) for name in trained)
    assert all(name.startswith((encoder, "classifier.", "qa_outputs.")) for name in trained), trained
    assert not any(p.requires_grad for p in model.base_model.parameters())


CHECKPOINTING = [f for f in FAMILIES if model_class(f, "Prefix", "TokenClassification").supports_gradient_checkpointing]


def test_gradient_checkpointing_is_refused_where_transformers_has_none():
    assert set(FAMILIES) - set(CHECKPOINTING) == {"Albert", "MPNet"}
    with pytest.raises(ValueError, match="does not support (gradient|activation) checkpointing"):
        make("Albert", "Prefix").gradient_checkpointing_enable()


@pytest.mark.parametrize("family", CHECKPOINTING)
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(family):
    results = []
    for checkpointing in (False, True):
        model = make(family, "Prefix", "TokenClassification")
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.train()  # dropout stays off: the tiny configs' dropout is 0 for attention, so set all to 0
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        loss = model(**inputs(family, "TokenClassification")).loss
        loss.backward()
        results.append((loss.detach(), model.prefix_encoder.embedding.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


@pytest.fixture(scope="module")
def family_checkpoints(tmp_path_factory):
    """A stock backbone checkpoint per family in a local directory, as a hub model would be."""
    paths = {}
    for family in FAMILIES:
        path = tmp_path_factory.mktemp(family)
        torch.manual_seed(11)
        AutoModel.from_config(ENCODER_CONFIGS[family]()).save_pretrained(path)
        paths[family] = path
    return paths


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_backbone_tensor_loads_and_prefix_only_saves_reload(family, method, family_checkpoints, tmp_path):
    base = family_checkpoints[family]
    auto = pm.AutoPrefixModelForTokenClassification
    model = auto.from_pretrained(base, method=method.lower(), pre_seq_len=3, num_labels=3).eval()
    assert type(model) is model_class(family, method, "TokenClassification")
    stock = AutoModel.from_pretrained(base)
    stock_state, loaded = stock.state_dict(), model.base_model.state_dict()
    assert set(stock_state) == set(loaded)
    for key, tensor in stock_state.items():
        assert torch.equal(loaded[key], tensor), key

    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter))
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert not any(key.startswith(f"{model.base_model_prefix}.") for key in handle.keys())
    batch = inputs(family, "TokenClassification")
    batch.pop("labels")
    with torch.no_grad():
        expected = model(**batch).logits
        reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
        assert type(reloaded) is type(model)
        torch.testing.assert_close(reloaded(**batch).logits, expected, rtol=0, atol=0)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "Bert"])
def test_a_checkpoint_of_another_family_is_refused(family, family_checkpoints):
    with pytest.raises(ValueError, match=r"holds a '[a-z0-9-]+' checkpoint; the bert prefix classes"):
        pm.BertPrefixForSequenceClassification.from_pretrained(family_checkpoints[family])


def test_pipeline_loads_a_saved_prefix_model_of_a_new_family(family_checkpoints, tmp_path, tokenizer):
    from transformers import pipeline

    model = pm.AutoPrefixModelForSequenceClassification.from_pretrained(family_checkpoints["Electra"], pre_seq_len=3)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    classify = pipeline("text-classification", model=str(tmp_path), tokenizer=str(tmp_path))
    assert isinstance(classify.model, pm.ElectraPrefixForSequenceClassification)
    assert classify("the cat sat")[0]["label"] in ("LABEL_0", "LABEL_1")
    stock = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(stock) is pm.ElectraPrefixForSequenceClassification


@pytest.mark.parametrize("family", ["Bert", "Roberta"])
def test_equals_the_cache_route(family):
    """The attention-level prefix computes exactly what the old route did: the stock backbone fed
    ``get_prompt``'s keys/values as its attention cache, with the real tokens' positions explicit."""
    from cache_route import prefix_cache_from

    from prefix_models.inputs import extend_attention_mask, real_position_ids

    model = make(family, "Prefix")
    batch = inputs(family)
    batch.pop("labels")
    stock = stock_backbone(model, "eager")
    with torch.no_grad():
        cache = prefix_cache_from(model.get_prompt(3))
        expected = stock(
            input_ids=batch["input_ids"],
            token_type_ids=batch["token_type_ids"],
            attention_mask=extend_attention_mask(batch["attention_mask"], 3, 3, 8, torch.device("cpu")),
            position_ids=real_position_ids(stock, batch["input_ids"], None),
            cache=cache,
        ).last_hidden_state
        torch.testing.assert_close(model.encode(**batch).sequence_output, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "layout",
    [
        # DeBERTa-v2 xlarge: a convolution after the first layer, c2p only, separate position keys.
        dict(
            conv_kernel_size=3,
            share_att_key=False,
            pos_att_type=["c2p"],
            position_biased_input=True,
            relative_attention=True,
            max_relative_positions=-1,
            position_buckets=-1,
        ),
        dict(relative_attention=False, position_biased_input=True),  # no relative terms at all
    ],
    ids=["v2-xlarge", "absolute-only"],
)
def test_deberta_v2_layouts_keep_the_masked_prefix_exact(layout):
    torch.manual_seed(0)
    config = ENCODER_CONFIGS["DebertaV2"](**{**layout, "type_vocab_size": 2})
    model = make("DebertaV2", "Prefix", config_override=config)
    batch = inputs("DebertaV2")
    batch.pop("labels")
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected = stock_backbone(model, "eager")(**batch).last_hidden_state
        off = model.encode(**batch, prefix_attention_mask=torch.zeros(3, 3, dtype=torch.long)).sequence_output
        on = model.encode(**batch).sequence_output
    torch.testing.assert_close(off[real], expected[real], rtol=1e-5, atol=1e-5)
    assert (on[real] - expected[real]).abs().max() > 1e-3


def test_each_example_may_carry_its_own_prefix():
    """The mechanism under named per-task prefixes: a batch whose rows carry different prefixes (rows of
    get_prompt's keys/values) equals each row run alone with its own prefix."""
    from prefix_models.methods.prefix_tuning.injection import PrefixState

    model = make("Bert", "Prefix")
    batch = inputs("Bert")
    batch.pop("labels")
    torch.manual_seed(3)
    prefixes = [model.get_prompt(1), tuple((k + torch.randn_like(k), v - 1) for k, v in model.get_prompt(1))]
    rows = [0, 1, 0]
    mixed = tuple(
        (torch.cat([prefixes[r][layer][0] for r in rows]), torch.cat([prefixes[r][layer][1] for r in rows]))
        for layer in range(model.config.num_hidden_layers)
    )
    with torch.no_grad():
        together = model.base_model(**batch, prefix_state=PrefixState(mixed)).last_hidden_state
        for row, choice in enumerate(rows):
            alone = model.base_model(
                **{k: v[row : row + 1] for k, v in batch.items()}, prefix_state=PrefixState(prefixes[choice])
            ).last_hidden_state
            real = batch["attention_mask"][row].bool()
            torch.testing.assert_close(together[row][real], alone[0][real], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1][: together.shape[1]], atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", FAMILIES)
def test_a_batch_mixing_named_prefixes_of_different_lengths_equals_each_row_alone(family, method):
    """Named prefixes (named_prefixes.py) on every family: shorter prefixes are padded with masked virtual
    tokens, which must change nothing, whatever the family's positions (absolute, relative, rotary)."""
    model = make(family, method)  # pre_seq_len 3
    model.add_prefix("longer", pre_seq_len=5, num_labels=3)
    with torch.no_grad():
        for parameter in model.prefix_bank.parameters():
            parameter.normal_(0, 1.0)
    batch = inputs(family)
    batch.pop("labels")
    names = ["longer", "default", "longer"]
    with torch.no_grad():
        mixed = model(**batch, prefix_names=names).logits
        for row, name in enumerate(names):
            alone = model(**{key: value[row : row + 1] for key, value in batch.items()}, prefix_names=[name]).logits
            width = model.prefix_config(name).num_labels
            torch.testing.assert_close(mixed[row : row + 1, :width], alone[:, :width], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(mixed[0, :2], mixed[1, :2], atol=1e-3)
