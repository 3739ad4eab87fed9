"""The shared mechanism on its own: encoders, the cache, masks, positions, prompt init."""

from __future__ import annotations

import pytest
import torch
from cache_route import prefix_cache
from conftest import ALL_CLASSES, main_output, make_model, task_inputs, tiny_config
from torch import nn
from transformers import BertModel, LlamaConfig, RobertaModel

import prefix_models as pm
from prefix_models.configuration import kv_geometry
from prefix_models.inputs import first_position, real_position_ids


def prefix_config(**overrides):
    return pm.BertPrefixConfig(**{**tiny_config("Bert").to_dict(), "model_type": "bert_prefix", **overrides})


def test_prefix_table_and_projection_shapes():
    config = prefix_config(pre_seq_len=5)
    table = pm.PrefixEncoder(config)
    assert table().shape == (5, 2 * 2 * 32)
    assert sum(p.numel() for p in table.parameters()) == 5 * 2 * 2 * 32

    config = prefix_config(pre_seq_len=5, prefix_projection=True, prefix_hidden_size=24)
    mlp = pm.PrefixEncoder(config)
    assert mlp().shape == (5, 128)
    assert [type(m) for m in mlp.trans] == [nn.Linear, nn.Tanh, nn.Linear]
    assert mlp.trans[0].out_features == 24 and mlp.embedding.weight.shape == (5, 32)


def test_merge_projection_keeps_outputs_and_drops_the_mlp():
    model = make_model(pm.BertPrefixForSequenceClassification, prefix_projection=True, prefix_hidden_size=16)
    inputs = {k: v for k, v in task_inputs(pm.BertPrefixForSequenceClassification).items() if k != "labels"}
    with torch.no_grad():
        before = model(**inputs).logits
    trainable_before = model.num_trainable_parameters()
    model.merge_prefix_projection()
    assert not hasattr(model.prefix_encoder, "trans") and model.config.prefix_projection is False
    assert model.prefix_encoder.embedding.weight.shape == (4, 2 * 2 * 32)
    assert model.prefix_encoder.embedding.weight.requires_grad
    assert model.num_trainable_parameters() < trainable_before
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, before, rtol=0, atol=1e-6)


def test_prefix_cache_layout_and_dropout():
    config = prefix_config(pre_seq_len=3)
    table = torch.randn(3, 2 * 2 * 32)
    cache = prefix_cache(table, batch_size=2, config=config, dropout=nn.Identity())
    assert len(cache.layers) == 2 and cache.get_seq_length() == 3
    keys, values = cache.layers[1].keys, cache.layers[1].values
    assert keys.shape == values.shape == (2, 4, 3, 8)  # (batch, heads, pre_seq_len, head_dim)
    # Layout [layer][key|value][head][head_dim]: layer 1's keys are the third quarter of each row.
    expected_keys = table[:, 64:96].view(3, 4, 8).permute(1, 0, 2)
    assert torch.equal(keys[0], expected_keys) and torch.equal(keys[1], expected_keys)
    assert torch.equal(values[0], table[:, 96:].view(3, 4, 8).permute(1, 0, 2))

    dropped = prefix_cache(table, batch_size=2, config=config, dropout=nn.Dropout(0.5).train())
    k = dropped.layers[0].keys
    assert (k == 0).any() and not torch.equal(k[0], k[1])  # each example gets its own dropout mask


@pytest.mark.parametrize("model_class", ALL_CLASSES, ids=lambda c: c.__name__)
def test_get_prompt_is_what_the_forward_adds(model_class):
    """get_prompt(b), the reference's name, is the one place the prefix is built: per layer (key, value)
    for prefix models, the soft tokens for prompt models; the forward runs on exactly that."""
    model = make_model(model_class)
    prompt = model.get_prompt(3)
    if model.prefix_method == "prefix":
        layers, heads, head_dim = kv_geometry(model.config)
        assert len(prompt) == layers
        for key, value in prompt:
            assert key.shape == value.shape == (3, heads, model.config.pre_seq_len, head_dim)
        table = model.prefix_encoder().view(model.config.pre_seq_len, 2 * layers, heads, head_dim)
        assert torch.equal(prompt[1][0][2], table[:, 2].transpose(0, 1))  # layer 1's keys, example 2
    else:
        assert prompt.shape == (3, model.config.pre_seq_len, model.config.hidden_size)
        assert torch.equal(prompt[0], model.prompt_encoder.embedding.weight)
    # A different prefix out of get_prompt is a different output: the forward reads nothing else.
    inputs = {
        k: v for k, v in task_inputs(model_class).items() if k not in ("labels", "start_positions", "end_positions")
    }
    with torch.no_grad():
        before = main_output(model_class, model(**inputs))
        original = model.get_prompt
        model.get_prompt = lambda b: (
            tuple((k + 3, v - 3) for k, v in original(b))
            if model.prefix_method == "prefix"
            else original(b).roll(1, dims=-1) * 5
        )
        assert not torch.allclose(main_output(model_class, model(**inputs)), before)


def test_get_prompt_applies_the_prefix_dropout_per_example():
    model = make_model(pm.BertPrefixForSequenceClassification, hidden_dropout_prob=0.5).train()
    key = model.get_prompt(2)[0][0]
    assert (key == 0).any() and not torch.equal(key[0], key[1])
    model.eval()
    key = model.get_prompt(2)[0][0]
    assert torch.equal(key[0], key[1])


def test_kv_geometry_uses_key_value_heads():
    llama = LlamaConfig(hidden_size=64, num_attention_heads=8, num_key_value_heads=2, num_hidden_layers=3)
    assert kv_geometry(llama) == (3, 2, 8)
    assert kv_geometry(tiny_config("Bert")) == (2, 4, 8)


def test_positions_match_the_plain_backbone():
    torch.manual_seed(0)
    roberta = RobertaModel(tiny_config("Roberta")).eval()
    ids = torch.tensor([[0, 7, 8, 9, 2, 1, 1], [0, 7, 2, 1, 1, 1, 1]])
    positions = real_position_ids(roberta, ids, None)
    assert positions.tolist() == [[2, 3, 4, 5, 6, 1, 1], [2, 3, 4, 1, 1, 1, 1]]  # padding keeps padding_idx
    assert first_position(roberta) == 2
    bert = BertModel(tiny_config("Bert"))
    assert real_position_ids(bert, ids, None).tolist() == [list(range(7))] * 2
    assert first_position(bert) == 0


@pytest.mark.parametrize("backbone", ["Bert", "Roberta"])
def test_prompt_init_vocab_copies_word_embedding_rows(backbone):
    model = make_model(getattr(pm, f"{backbone}PromptForSequenceClassification"), pre_seq_len=6, prompt_init="vocab")
    words = model.base_model.get_input_embeddings().weight
    rows = model.prompt_encoder.embedding.weight
    matches = [(words == row).all(dim=1).nonzero().flatten().tolist() for row in rows]
    assert all(len(m) == 1 for m in matches)
    assert len({m[0] for m in matches}) == 6  # distinct vocabulary rows


@pytest.mark.parametrize("pre_seq_len", [2, 7])
def test_prompt_init_text_truncates_or_repeats(tokenizer, pre_seq_len):
    config = tiny_config("Bert", pre_seq_len=pre_seq_len, prompt_init="text", prompt_init_text="the movie was good")
    torch.manual_seed(0)
    model = pm.BertPromptForSequenceClassification(config, tokenizer=tokenizer)
    ids = tokenizer("the movie was good", add_special_tokens=False)["input_ids"]
    expected_ids = (ids * 3)[:pre_seq_len]
    words = model.bert.get_input_embeddings().weight
    assert torch.equal(model.prompt_encoder.embedding.weight, words[expected_ids])


def test_random_prompt_init_differs_from_vocab_rows():
    model = make_model(pm.BertPromptForSequenceClassification, prompt_init="random")
    words = model.bert.get_input_embeddings().weight
    for row in model.prompt_encoder.embedding.weight:
        assert not (words == row).all(dim=1).any()
