"""The backbone module carries the method: a caller of ``model.bert`` / ``model.model`` / an encoder-decoder's
stacks gets the model's prefix (or prompt), routed by ``prefix_names``, with the real tokens only in its
outputs; ``disable_prefix()`` gives the plain backbone; a deep copy carries its own prefix."""

from __future__ import annotations

import copy

import pytest
import torch
from test_causal_lm import FAMILIES as DECODER_FAMILIES
from test_causal_lm import capability_config, stock_config
from test_families import FAMILIES as ENCODER_FAMILIES
from test_families import inputs, make
from test_seq2seq import FAMILIES as SEQ2SEQ_FAMILIES
from test_seq2seq import batch as seq2seq_batch
from test_seq2seq import checkpoints, load  # noqa: F401  (checkpoints is a fixture)

import prefix_models as pm
from prefix_models.errors import InputError


def perturbed(module: torch.nn.Module, seed: int) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 1.0)


@pytest.mark.parametrize("method", ["Prefix", "Prompt"])
@pytest.mark.parametrize("family", ENCODER_FAMILIES)
@torch.no_grad()
def test_an_encoder_backbone_called_directly_is_the_models_features(family, method):
    model = make(family, method, "TokenClassification")
    model.add_prefix("b")
    perturbed(model.task_modules("b")[model.tuning.encoder_attribute], seed=3)
    batch = inputs(family, "TokenClassification")
    batch.pop("labels")
    seq_len = batch["input_ids"].shape[1]

    direct = model.base_model(**batch, output_hidden_states=True)
    assert direct.last_hidden_state.shape[1] == seq_len  # real tokens only, for prompts too
    assert all(state.shape[1] == seq_len for state in direct.hidden_states)
    torch.testing.assert_close(model.classifier(direct.last_hidden_state), model(**batch).logits, rtol=0, atol=0)
    with model.disable_prefix():
        plain = model.base_model(**batch).last_hidden_state
    assert not torch.allclose(plain, direct.last_hidden_state, atol=1e-3)
    # Positional arguments bind as the stock forward's do.
    torch.testing.assert_close(
        model.base_model(batch["input_ids"], batch["attention_mask"]).last_hidden_state,
        model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state,
    )

    names = ["default", "b", "b"]
    routed = model.base_model(**batch, prefix_names=names).last_hidden_state
    logits = model(**batch, prefix_names=names).logits
    head_b = model.task_modules("b")["classifier"]
    torch.testing.assert_close(head_b(routed[1:]), logits[1:, :, : model.prefix_config("b").num_labels])
    torch.testing.assert_close(routed[:1], direct.last_hidden_state[:1], rtol=0, atol=1e-5)
    alone = model.base_model(**{key: value[2:] for key, value in batch.items()}, adapter_names=["b"])
    torch.testing.assert_close(routed[2:], alone.last_hidden_state, rtol=0, atol=1e-5)
    with pytest.raises(InputError, match=r"unknown prefix names \['nope'\]"):
        model.base_model(**batch, prefix_names=["default", "nope", "b"])


def decoder_batch(vocab: int = 60):
    generator = torch.Generator().manual_seed(4)
    input_ids = torch.randint(3, vocab, (3, 7), generator=generator)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, :2] = 0  # left padding, as generation uses
    return input_ids.masked_fill(mask == 0, 0), mask


def output_layer(model, hidden: torch.Tensor) -> torch.Tensor:
    """What the family's LM does after its backbone, written out from its config."""
    logits = model.get_output_embeddings()(hidden)
    config = model.config
    if config.base_model_type == "granite":
        logits = logits / config.logits_scaling
    if config.base_model_type == "cohere":
        logits = logits * config.logit_scale
    if getattr(config, "final_logit_softcapping", None):  # Gemma-2
        logits = torch.tanh(logits / config.final_logit_softcapping) * config.final_logit_softcapping
    return logits


DECODER_CASES = [*DECODER_FAMILIES, "granite", "cohere"]


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("family", DECODER_CASES)
@torch.no_grad()
def test_a_decoder_backbone_then_its_output_layer_is_the_models_logits(family, method):
    if family in DECODER_FAMILIES:
        config = stock_config(family, pre_seq_len=3)
    else:
        scale = {"granite": {"logits_scaling": 4.0}, "cohere": {"logit_scale": 0.5}}[family]
        config = capability_config(family, pre_seq_len=3, **scale)
    torch.manual_seed(0)
    model = pm.AutoPrefixModelForCausalLM.from_config(config, method=method).eval()
    perturbed(model.task_modules("default")[model.tuning.encoder_attribute], seed=1)
    input_ids, mask = decoder_batch(config.vocab_size)

    logits = model(input_ids, attention_mask=mask).logits
    hidden = model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    assert hidden.shape[1] == input_ids.shape[1]
    real = mask.bool()
    torch.testing.assert_close(output_layer(model, hidden)[real], logits[real], rtol=0, atol=1e-5)
    with model.disable_prefix():
        plain = model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(plain[real], hidden[real], atol=1e-3)


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("family", SEQ2SEQ_FAMILIES)
@torch.no_grad()
def test_seq2seq_stacks_called_directly_carry_the_method(family, method, checkpoints):  # noqa: F811
    model = load(checkpoints, family, method=method)
    input_ids, mask, decoder_input_ids = seq2seq_batch()
    logits = model(input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    # A custom loop: the encoder stack by hand, then the stock model decoding from its output.
    encoded = model.get_encoder()(input_ids=input_ids, attention_mask=mask)
    direct = model.seq2seq(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    torch.testing.assert_close(direct, logits, rtol=0, atol=1e-5)
    with model.disable_prefix():
        plain = model(input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    assert not torch.allclose(plain, logits, atol=1e-3)


def test_disable_prefix_nests_restores_and_matches_the_stock_model():
    model = make("Bert", "Prefix")
    perturbed(model.prefix_encoder, seed=2)
    batch = inputs("Bert")
    batch.pop("labels")
    with torch.no_grad():
        on = model.bert(**batch).last_hidden_state
        masked = model.bert(**batch, prefix_attention_mask=torch.zeros(3, 3, dtype=torch.long)).last_hidden_state
        with pytest.raises(RuntimeError, match="inside"):
            with model.disable_adapter():  # peft's name
                with model.disable_prefix():
                    torch.testing.assert_close(model.bert(**batch).last_hidden_state, masked, rtol=0, atol=1e-5)
                torch.testing.assert_close(model.bert(**batch).last_hidden_state, masked, rtol=0, atol=1e-5)
                raise RuntimeError("inside")
        torch.testing.assert_close(model.bert(**batch).last_hidden_state, on, rtol=0, atol=0)


def test_a_deep_copy_carries_its_own_prefix():
    model = make("Bert", "Prefix")
    batch = inputs("Bert")
    batch.pop("labels")
    twin = copy.deepcopy(model)
    perturbed(twin.prefix_encoder, seed=5)
    with torch.no_grad():
        ours, theirs = model.bert(**batch).last_hidden_state, twin.bert(**batch).last_hidden_state
        torch.testing.assert_close(twin(**batch).logits, twin.classifier(twin.bert.pooler(theirs)), rtol=0, atol=0)
    assert not torch.allclose(ours, theirs, atol=1e-3)


def test_packed_rows_are_refused_by_name():
    config = stock_config("llama", pre_seq_len=3)
    model = pm.AutoPrefixModelForCausalLM.from_config(config).eval()
    input_ids = torch.randint(3, 60, (1, 8))
    packed = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3]])  # two sequences in one row, as padding-free packing gives
    with pytest.raises(InputError, match="padding_free=False"):
        model(input_ids, position_ids=packed)
    model(input_ids, position_ids=torch.arange(8)[None])  # ordinary positions are fine


@pytest.mark.parametrize("family", ["Bert", "DebertaV2", "MPNet"])
def test_a_pickled_model_carries_its_own_prefix(family):
    """torch.save / pickle (multiprocessing, checkpoints of whole objects) rebuild the backbone's forward
    around the unpickled backbone: the copy runs its own prefix, not the stock forward."""
    import io

    model = make(family, "Prefix")
    batch = inputs(family)
    batch.pop("labels")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    twin = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        torch.testing.assert_close(twin(**batch).logits, model(**batch).logits, rtol=0, atol=0)
        perturbed(twin.prefix_encoder, seed=6)
        prefixed = twin.base_model(**batch).last_hidden_state
        with twin.disable_prefix():
            plain = twin.base_model(**batch).last_hidden_state
    assert not torch.allclose(prefixed, plain, atol=1e-3)
    assert not torch.allclose(twin(**batch).logits, model(**batch).logits, atol=1e-4)
