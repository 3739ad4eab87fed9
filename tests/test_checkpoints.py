"""from_pretrained / save_pretrained: frozen after loading, prefix-only checkpoints, Auto classes."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from conftest import ALL_CLASSES, backbone_class, backbone_name, main_output, task_inputs, tiny_config
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tiny_families import ENCODER_CONFIGS
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertModel,
    ElectraModel,
    ViTConfig,
    ViTModel,
    pipeline,
)

import prefix_models as pm

LABEL_KEYS = ("labels", "start_positions", "end_positions")


def features(inputs):
    return {k: v for k, v in inputs.items() if k not in LABEL_KEYS}


def load(model_class, base_checkpoints, **kwargs):
    return model_class.from_pretrained(base_checkpoints[backbone_name(model_class)], pre_seq_len=5, **kwargs)


def trained_model(model_class, base_checkpoints):
    """A loaded model whose prefix and head moved away from their init, its inputs and its outputs."""
    model = load(model_class, base_checkpoints)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    inputs = features(task_inputs(model_class))
    model.eval()
    with torch.no_grad():
        expected = main_output(model_class, model(**inputs))
    return model, inputs, expected


@pytest.mark.parametrize("model_class", ALL_CLASSES, ids=lambda c: c.__name__)
def test_from_pretrained_loads_backbone_and_keeps_it_frozen(model_class, base_checkpoints):
    model = load(model_class, base_checkpoints, num_labels=3)
    assert model.config.pre_seq_len == 5 and model.config.num_labels == 3
    assert model.config.model_type == model_class.config_class.model_type
    name = backbone_name(model_class)
    reference = backbone_class(name).from_pretrained(base_checkpoints[name]).state_dict()
    loaded = model.base_model.state_dict()
    assert reference.keys() == loaded.keys()
    assert all(torch.equal(loaded[key], value) for key, value in reference.items())
    # transformers 5 re-creates parameters while loading; the backbone must still be frozen.
    assert not any(p.requires_grad for p in model.base_model.parameters())
    backbone_params = sum(p.numel() for p in model.base_model.parameters())
    assert 0 < model.num_trainable_parameters() < 0.2 * backbone_params

    model.train()
    before = {k: v.clone() for k, v in model.base_model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(**task_inputs(model_class)).loss.backward()
    optimizer.step()
    assert all(torch.equal(v, before[k]) for k, v in model.base_model.state_dict().items())


@pytest.mark.parametrize("model_class", ALL_CLASSES, ids=lambda c: c.__name__)
def test_save_load_round_trip_is_prefix_sized_and_exact(model_class, base_checkpoints, tmp_path):
    model, inputs, expected = trained_model(model_class, base_checkpoints)
    model.save_pretrained(tmp_path)

    weights = tmp_path / "model.safetensors"
    assert weights.stat().st_size <= model.num_trainable_parameters() * 4 + 64 * 1024
    with safe_open(weights, framework="pt") as f:
        assert not any(key.startswith(model.base_model_prefix + ".") for key in f.keys())
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["base_model_name_or_path"] == str(base_checkpoints[backbone_name(model_class)])

    reloaded = model_class.from_pretrained(tmp_path).eval()
    assert not any(p.requires_grad for p in reloaded.base_model.parameters())
    with torch.no_grad():
        assert torch.equal(main_output(model_class, reloaded(**inputs)), expected)


@pytest.mark.parametrize(
    "model_class",
    [pm.BertPrefixForSequenceClassification, pm.RobertaPromptForTokenClassification],
    ids=lambda c: c.__name__,
)
def test_sharded_prefix_only_save_reloads_exactly(model_class, base_checkpoints, tmp_path):
    model, inputs, expected = trained_model(model_class, base_checkpoints)
    model.save_pretrained(tmp_path, max_shard_size=200)  # bytes: about one tensor a shard
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) >= 2 and (tmp_path / "model.safetensors.index.json").is_file()
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert not any(key.startswith(model.base_model_prefix + ".") for key in index["weight_map"])

    reloaded = model_class.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(main_output(model_class, reloaded(**inputs)), expected)
    # Our Auto class reads the sharded checkpoint too.
    auto = getattr(pm, f"AutoPrefixModelFor{model_class.__name__.split('For')[1]}").from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(main_output(model_class, auto(**inputs)), expected)
    # A shard gone missing is a clear error, not a random backbone or head.
    shards[-1].unlink()
    with pytest.raises(ValueError, match=r"lists the shard .* but the file is missing"):
        model_class.from_pretrained(tmp_path)


def test_full_save_on_request_and_when_no_base_is_known(base_checkpoints, tmp_path, caplog):
    model = load(pm.BertPrefixForSequenceClassification, base_checkpoints).eval()
    inputs = features(task_inputs(pm.BertPrefixForSequenceClassification))
    with torch.no_grad():
        expected = model(**inputs).logits
    model.save_pretrained(tmp_path / "full", save_base_model=True)
    with safe_open(tmp_path / "full" / "model.safetensors", framework="pt") as f:
        assert any(key.startswith("bert.") for key in f.keys())
    reloaded = pm.BertPrefixForSequenceClassification.from_pretrained(tmp_path / "full").eval()
    assert not any(p.requires_grad for p in reloaded.bert.parameters())
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, expected)
    # A later default save of the reloaded model is prefix-only again.
    reloaded.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "model.safetensors").stat().st_size < 64 * 1024

    torch.manual_seed(0)
    from_config = pm.BertPrefixForSequenceClassification(tiny_config("Bert", pre_seq_len=3)).eval()
    with caplog.at_level(logging.WARNING):
        from_config.save_pretrained(tmp_path / "from_config")
    assert "saving the full model" in caplog.text
    # The attention implementation is not saved with a config: ask for the same one.
    again = pm.BertPrefixForSequenceClassification.from_pretrained(
        tmp_path / "from_config", attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        assert torch.equal(again(**inputs).logits, from_config(**inputs).logits)


def test_stock_auto_classes_and_pipeline_load_a_saved_prefix(base_checkpoints, tokenizer, tmp_path):
    for model_class, auto in [
        (pm.BertPrefixForSequenceClassification, AutoModelForSequenceClassification),
        (pm.BertPromptForTokenClassification, AutoModelForTokenClassification),
    ]:
        model = load(model_class, base_checkpoints, id2label={0: "neg", 1: "pos"}).eval()
        target = tmp_path / model_class.__name__
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        inputs = features(task_inputs(model_class))
        loaded = auto.from_pretrained(target).eval()
        assert type(loaded) is model_class
        with torch.no_grad():
            assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)

    classifier = pipeline("text-classification", model=str(tmp_path / "BertPrefixForSequenceClassification"))
    predictions = classifier(["the movie was good", "boring plot"])
    assert [p["label"] in {"neg", "pos"} for p in predictions] == [True, True]
    tagger = pipeline("token-classification", model=str(tmp_path / "BertPromptForTokenClassification"))
    assert all(entity["entity"] in {"neg", "pos"} for entity in tagger("the movie was good"))


def test_prefix_follows_a_moved_base_and_rejects_a_base_of_another_shape(base_checkpoints, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(base_checkpoints["Bert"], base)
    model = pm.BertPrefixForSequenceClassification.from_pretrained(base, pre_seq_len=2).eval()
    model.save_pretrained(tmp_path / "prefix")
    moved = tmp_path / "moved"
    base.rename(moved)

    with pytest.raises(ValueError, match="base_model_name_or_path"):
        pm.BertPrefixForSequenceClassification.from_pretrained(tmp_path / "prefix")
    reloaded = pm.BertPrefixForSequenceClassification.from_pretrained(
        tmp_path / "prefix", base_model_name_or_path=moved
    ).eval()
    inputs = features(task_inputs(pm.BertPrefixForSequenceClassification))
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, model(**inputs).logits)

    BertModel(tiny_config("Bert", num_hidden_layers=3)).save_pretrained(tmp_path / "deeper")
    with pytest.raises(ValueError, match="num_hidden_layers: prefix trained for 2, base has 3"):
        pm.BertPrefixForSequenceClassification.from_pretrained(
            tmp_path / "prefix", base_model_name_or_path=tmp_path / "deeper"
        )
    BertModel(tiny_config("Bert", hidden_size=48)).save_pretrained(tmp_path / "wider")
    with pytest.raises(ValueError, match="hidden_size"):
        pm.BertPrefixForSequenceClassification.from_pretrained(
            tmp_path / "prefix", base_model_name_or_path=tmp_path / "wider"
        )


def test_auto_prefix_classes_dispatch_on_model_type(base_checkpoints, tmp_path):
    bert = pm.AutoPrefixModelForSequenceClassification.from_pretrained(base_checkpoints["Bert"], pre_seq_len=3)
    assert type(bert) is pm.BertPrefixForSequenceClassification
    roberta = pm.AutoPrefixModelForTokenClassification.from_pretrained(
        base_checkpoints["Roberta"], method="prompt", pre_seq_len=3, num_labels=5
    )
    assert type(roberta) is pm.RobertaPromptForTokenClassification and roberta.config.num_labels == 5
    qa = pm.AutoPrefixModelForQuestionAnswering.from_pretrained(base_checkpoints["Roberta"])
    assert type(qa) is pm.RobertaPrefixForQuestionAnswering
    mc = pm.AutoPrefixModelForMultipleChoice.from_config(tiny_config("Bert", pre_seq_len=2), method="prompt")
    assert type(mc) is pm.BertPromptForMultipleChoice

    roberta.save_pretrained(tmp_path / "saved")
    again = pm.AutoPrefixModelForTokenClassification.from_pretrained(tmp_path / "saved")
    assert type(again) is pm.RobertaPromptForTokenClassification  # the saved method wins over the default
    with pytest.raises(ValueError, match="saved by a prompt-tuning model"):
        pm.AutoPrefixModelForTokenClassification.from_pretrained(tmp_path / "saved", method="prefix")

    ViTModel(
        ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path / "vit")
    with pytest.raises(
        ValueError, match=r"'vit' is not supported .*supported model types: albert, bert, deberta-v2, distilbert"
    ):
        pm.AutoPrefixModelForSequenceClassification.from_pretrained(tmp_path / "vit")


def test_prompt_text_init_through_from_pretrained(base_checkpoints, tokenizer, tmp_path):
    text = "a great film"
    model = pm.BertPromptForSequenceClassification.from_pretrained(
        base_checkpoints["Bert"], pre_seq_len=5, prompt_init="text", prompt_init_text=text, tokenizer=tokenizer
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    words = model.bert.get_input_embeddings().weight
    assert torch.equal(model.prompt_encoder.embedding.weight, words[(ids * 2)[:5]])

    # Reloading the trained prompt must not re-initialise it (and needs no tokenizer).
    with torch.no_grad():
        model.prompt_encoder.embedding.weight.add_(1.0)
    model.save_pretrained(tmp_path / "prompt")
    reloaded = pm.BertPromptForSequenceClassification.from_pretrained(tmp_path / "prompt")
    assert torch.equal(reloaded.prompt_encoder.embedding.weight, model.prompt_encoder.embedding.weight)


def test_a_checkpoint_of_another_model_type_is_refused_by_name(base_checkpoints, tmp_path):
    ElectraModel(ENCODER_CONFIGS["Electra"]()).save_pretrained(tmp_path / "electra")
    with pytest.raises(ValueError, match=r"holds a 'electra' checkpoint; the bert prefix classes .* load 'bert'"):
        pm.BertPrefixForSequenceClassification.from_pretrained(tmp_path / "electra", pre_seq_len=4)
    # Our own saves of the other method are another model type too.
    load(pm.BertPromptForTokenClassification, base_checkpoints).save_pretrained(tmp_path / "prompt")
    with pytest.raises(
        ValueError,
        match=r"is the prefix-tuning class; this config \(or checkpoint\) has prefix_method="
        r"'prompt': use BertPromptForTokenClassification",
    ):
        pm.BertPrefixForTokenClassification.from_pretrained(tmp_path / "prompt")


def test_every_pretrained_tensor_must_load(base_checkpoints, tmp_path):
    state = load_file(base_checkpoints["Bert"] / "model.safetensors")
    shutil.copytree(base_checkpoints["Bert"], tmp_path / "holed")
    key = next(k for k in state if "encoder.layer.1" in k and k.endswith("value.weight"))
    save_file(
        {k: v for k, v in state.items() if k != key},
        tmp_path / "holed" / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(ValueError, match=r"does not hold every pretrained tensor .*these would start random"):
        pm.BertPrefixForSequenceClassification.from_pretrained(tmp_path / "holed", pre_seq_len=4)

    # A checkpoint without a pooler (what token-classification models save) serves every head that
    # does not read the pooler; a pooled sequence head is told how to do without it.
    shutil.copytree(base_checkpoints["Bert"], tmp_path / "no_pooler")
    save_file(
        {k: v for k, v in state.items() if "pooler" not in k},
        tmp_path / "no_pooler" / "model.safetensors",
        metadata={"format": "pt"},
    )
    pm.BertPrefixForTokenClassification.from_pretrained(tmp_path / "no_pooler", pre_seq_len=4)
    pm.BertPrefixForSequenceClassification.from_pretrained(
        tmp_path / "no_pooler", pre_seq_len=4, classifier_pooling="cls"
    )
    with pytest.raises(ValueError, match=r"has no pooler: pass classifier_pooling='cls'"):
        pm.BertPrefixForSequenceClassification.from_pretrained(tmp_path / "no_pooler", pre_seq_len=4)


def test_the_method_is_a_config_field_and_a_component():
    """One config class per backbone carries the method (``prefix_method``); the *Prompt* config is its
    alias with another default and model type; the model runs the component the field names."""
    assert issubclass(pm.BertPromptConfig, pm.BertPrefixConfig)
    assert (pm.BertPrefixConfig().prefix_method, pm.BertPromptConfig().prefix_method) == ("prefix", "prompt")
    assert (pm.BertPrefixConfig.model_type, pm.BertPromptConfig.model_type) == ("bert_prefix", "bert_prompt")
    config = pm.BertPrefixConfig(**tiny_config("Bert", pre_seq_len=2).to_dict(), prefix_method="prompt")
    model = pm.AutoPrefixModelForSequenceClassification.from_config(config)
    assert type(model) is pm.BertPromptForSequenceClassification and type(model.tuning).__name__ == "PromptTuning"
    assert not hasattr(model, "prefix_encoder") and model.get_prompt(3).shape == (3, 2, 32)
    prefix = pm.AutoPrefixModelForSequenceClassification.from_config(tiny_config("Bert", pre_seq_len=2))
    assert type(prefix.tuning).__name__ == "PrefixTuning" and len(prefix.get_prompt(3)) == 2
    with pytest.raises(ValueError, match=r"prefix_method must be one of \('prefix', 'prompt'\), got 'lora'"):
        pm.BertPrefixForSequenceClassification(tiny_config("Bert", prefix_method="lora"))
