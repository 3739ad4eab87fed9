"""``prefix_init="text"``: a prefix that starts as the backbone's own keys and values of a text.

The sharpest check is on decoders: read at peft's positions (real tokens after the virtual ones), a prefix
started from text T *is* T already read, so the model on x equals the stock model on T followed by x.
"""

from __future__ import annotations

import pytest
import torch
from conftest import FIXTURES, tiny_config
from tiny_families import DECODER_CONFIGS, ENCODER_CONFIGS
from transformers import AutoModelForCausalLM, AutoTokenizer, BertModel

import prefix_models as pm

TEXT = "the director loved the music and the script"


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer")


@pytest.mark.parametrize("family", ["GPT2", "Llama"])
def test_a_decoder_prefix_from_text_equals_the_stock_model_reading_that_text_first(family, tokenizer, tmp_path):
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(DECODER_CONFIGS[family](attn_implementation="eager")).save_pretrained(tmp_path)
    text_ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(
        tmp_path,
        pre_seq_len=len(text_ids),
        prefix_init="text",
        prefix_init_text=TEXT,
        virtual_token_positions="peft",
        tokenizer=tokenizer,
        attn_implementation="eager",
    ).eval()
    stock = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    inputs = torch.randint(5, 100, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = stock(torch.cat([torch.tensor([text_ids] * 2), inputs], dim=1)).logits[:, len(text_ids) :]
        torch.testing.assert_close(model(inputs).logits, expected, rtol=1e-5, atol=1e-5)


def test_an_encoder_prefix_from_text_holds_the_backbone_keys_and_values_of_that_text(tokenizer, tmp_path):
    torch.manual_seed(0)
    BertModel(tiny_config("Bert")).save_pretrained(tmp_path)
    model = pm.BertPrefixForSequenceClassification.from_pretrained(
        tmp_path, pre_seq_len=5, prefix_init="text", prefix_init_text=TEXT, tokenizer=tokenizer
    )
    # The text is cut to pre_seq_len tokens; each layer's keys/values, computed here from the stock layers.
    ids = torch.tensor([tokenizer(TEXT, add_special_tokens=False)["input_ids"][:5]])
    stock = BertModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        hidden = stock(ids, output_hidden_states=True).hidden_states
        key_values = model.get_prompt(1)
        for layer, block in enumerate(stock.encoder.layer):
            attention = block.attention.self
            key = attention.key(hidden[layer]).view(1, 5, 4, 8).transpose(1, 2)
            value = attention.value(hidden[layer]).view(1, 5, 4, 8).transpose(1, 2)
            torch.testing.assert_close(key_values[layer][0], key, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(key_values[layer][1], value, rtol=1e-5, atol=1e-5)
    # A prefix that was saved is loaded as saved, not read from the text again.
    with torch.no_grad():
        model.prefix_encoder.embedding.weight.add_(1.0)
    model.save_pretrained(tmp_path / "saved")
    again = pm.BertPrefixForSequenceClassification.from_pretrained(tmp_path / "saved", tokenizer=tokenizer)
    torch.testing.assert_close(again.prefix_encoder.embedding.weight, model.prefix_encoder.embedding.weight)


@pytest.mark.parametrize("family", ["Albert", "DebertaV2", "MPNet", "DistilBert", "ModernBert"])
def test_every_encoder_family_starts_a_prefix_from_text(family, tokenizer):
    config = ENCODER_CONFIGS[family](pre_seq_len=4, prefix_init="text", prefix_init_text=TEXT)
    torch.manual_seed(0)
    model = pm.AutoPrefixModelForSequenceClassification.from_config(config, tokenizer=tokenizer)
    table = model.prefix_encoder.embedding.weight.clone()
    config.prefix_init_text = "bad boring acting"
    torch.manual_seed(0)
    other = pm.AutoPrefixModelForSequenceClassification.from_config(config, tokenizer=tokenizer).prefix_encoder
    assert torch.isfinite(table).all() and not torch.allclose(table, other.embedding.weight)


def test_prefix_init_text_refuses_what_it_cannot_do(tokenizer):
    cases = {
        "prompt tuning": (dict(prefix_method="prompt"), r'prompt tuning has prompt_init="text"'),
        "with the MLP": (dict(prefix_projection=True), r"prefix_projection=True"),
        "an empty text": (dict(prefix_init_text="  "), r"prefix_init_text must be a non-empty text"),
        "an unknown init": (dict(prefix_init="vocab"), r"prefix_init must be one of \('random', 'text'\)"),
    }
    for overrides, message in cases.values():
        with pytest.raises(ValueError, match=message):
            pm.BertPrefixForSequenceClassification(
                tiny_config("Bert", **{"prefix_init": "text", **overrides}), tokenizer=tokenizer
            )
    with pytest.raises(ValueError, match=r"needs a tokenizer"):
        pm.BertPrefixForSequenceClassification(tiny_config("Bert", prefix_init="text"))


def test_add_prefix_starts_a_new_task_as_its_config_says(tokenizer, tmp_path):
    """A task added to a text-initialised model starts from the text too, at its own length; without a
    tokenizer that is refused (the model unchanged) rather than silently left random."""
    torch.manual_seed(0)
    BertModel(tiny_config("Bert")).save_pretrained(tmp_path)
    model = pm.BertPrefixForSequenceClassification.from_pretrained(
        tmp_path, pre_seq_len=5, prefix_init="text", prefix_init_text=TEXT, tokenizer=tokenizer
    )
    model.add_prefix("longer", tokenizer=tokenizer, pre_seq_len=9)
    reference = pm.BertPrefixForSequenceClassification.from_pretrained(
        tmp_path, pre_seq_len=9, prefix_init="text", prefix_init_text=TEXT, tokenizer=tokenizer
    )
    added = model.task_modules("longer")["prefix_encoder"].embedding.weight
    torch.testing.assert_close(added, reference.prefix_encoder.embedding.weight, rtol=1e-5, atol=1e-5)
    # Its own config decides: a task asking for random init gets transformers' init, not the text.
    model.add_prefix("random", prefix_init="random")
    random_table = model.task_modules("random")["prefix_encoder"].embedding.weight
    assert random_table.shape == model.prefix_encoder.embedding.weight.shape
    assert not torch.allclose(random_table, model.prefix_encoder.embedding.weight)
    with pytest.raises(ValueError, match=r"needs a tokenizer .*add_prefix"):
        model.add_prefix("no_tokenizer")
    assert model.prefix_names == ["default", "longer", "random"]


def test_add_prefix_starts_a_prompt_from_its_text(tokenizer):
    config = tiny_config("Bert", prefix_method="prompt", pre_seq_len=3, prompt_init="text", prompt_init_text=TEXT)
    model = pm.BertPromptForSequenceClassification(config, tokenizer=tokenizer)
    model.add_prefix("other", tokenizer=tokenizer, prompt_init_text="bad boring acting")
    ids = tokenizer("bad boring acting", add_special_tokens=False)["input_ids"]
    expected = model.get_input_embeddings().weight[(ids * 3)[:3]]  # cut or repeated to pre_seq_len
    torch.testing.assert_close(model.task_modules("other")["prompt_encoder"].embedding.weight, expected)
