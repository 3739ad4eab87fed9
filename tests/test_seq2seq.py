"""Prefix encoder-decoders (T5, mT5, BART) on tiny random configs: a masked prefix is the stock model,
each attention kind (encoder self, decoder self, cross) carries its own switchable prefix, only the
prefix trains, gradient checkpointing changes nothing, generate() equals a no-cache greedy loop and
batches equal single rows, prefix-only saves reload through the stock AutoModelForSeq2SeqLM."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from tiny_families import BEAM_SEARCH, SEQ2SEQ_CONFIGS
from transformers import AutoModelForSeq2SeqLM

import prefix_models as pm

FAMILIES = tuple(SEQ2SEQ_CONFIGS)
SPECIAL = [0, 1, 2]  # pad / eos / start: suppressed so that random tiny models generate varied tokens


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    paths = {}
    for family in FAMILIES:
        for attn in ("eager", "sdpa"):
            torch.manual_seed(5)
            path = tmp_path_factory.mktemp(f"{family}-{attn}")
            AutoModelForSeq2SeqLM.from_config(SEQ2SEQ_CONFIGS[family](attn_implementation=attn)).save_pretrained(path)
            paths[family, attn] = path
    return paths


def load(checkpoints, family, attn="eager", method="prefix", **kwargs):
    kwargs.setdefault("pre_seq_len", 3)
    model = pm.AutoPrefixModelForSeq2SeqLM.from_pretrained(
        checkpoints[family, attn], attn_implementation=attn, method=method, **kwargs
    ).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # far from zero, so that the prefix visibly matters
        for parameter in model.parameters():
            if not parameter.requires_grad:
                continue
            parameter.normal_(0, 1.0)
    return model


def batch(seed=1):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, 60, (2, 7), generator=generator)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    return input_ids.masked_fill(mask == 0, 0), mask, torch.randint(3, 60, (2, 5), generator=generator)


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_masked_prefix_equals_the_stock_model(family, attn, method, checkpoints):
    model = load(checkpoints, family, attn, method)
    assert type(model).__name__ == f"{family}{method.capitalize()}ForConditionalGeneration"
    stock = AutoModelForSeq2SeqLM.from_pretrained(checkpoints[family, attn], attn_implementation=attn).eval()
    input_ids, mask, decoder_ids = batch()
    with torch.no_grad():
        expected = stock(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
        off = model(
            input_ids=input_ids,
            attention_mask=mask,
            decoder_input_ids=decoder_ids,
            prefix_attention_mask=torch.zeros(2, 3, dtype=torch.long),
        ).logits
        on = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    # A prompt sits before the source: T5's relative positions leave the real tokens as they were; BART's
    # absolute positions move them by pre_seq_len, so a masked prompt is not the stock BART.
    if not (method == "prompt" and family == "Bart"):
        torch.testing.assert_close(off, expected, rtol=1e-5, atol=1e-5)
    assert (on - expected).abs().max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_each_attention_kind_has_its_own_switchable_prefix(family, checkpoints):
    model = load(checkpoints, family)
    kinds = model.get_prompt_by_kind(2)
    assert list(kinds) == ["encoder", "decoder", "cross"] and all(len(layers) == 2 for layers in kinds.values())
    assert all(key.shape == (2, 4, 3, 8) for layers in kinds.values() for key, _ in layers)
    input_ids, mask, decoder_ids = batch()
    with torch.no_grad():
        full = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
        weight = model.prefix_encoder.embedding.weight
        width = weight.shape[1] // 6
        for row in range(6):  # every layer of every kind is read, and only by its own attention
            saved = weight.clone()
            weight[:, row * width : (row + 1) * width] = 0
            changed = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
            weight.copy_(saved)
            assert (changed - full).abs().max() > 1e-6, f"prefix row block {row} is not used"  # unused: exactly 0

    cross_only = load(checkpoints, family, prefix_kinds=["cross"])
    assert list(cross_only.get_prompt_by_kind(2)) == ["cross"]
    stock = AutoModelForSeq2SeqLM.from_pretrained(checkpoints[family, "eager"]).eval()
    with torch.no_grad():  # no encoder prefix: the encoder is exactly the stock one
        encoded = cross_only.encode_source(input_ids, mask).last_hidden_state
        torch.testing.assert_close(encoded, stock.get_encoder()(input_ids, attention_mask=mask).last_hidden_state)


@pytest.mark.parametrize("family", FAMILIES)
def test_only_the_prefix_trains_and_checkpointing_changes_nothing(family, checkpoints):
    input_ids, mask, labels = batch()
    results = []
    for checkpointing in (False, True):
        model = load(checkpoints, family)
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        trained = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert trained == {"prefix_encoder.embedding.weight"}
        results.append((loss.detach(), model.prefix_encoder.embedding.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def greedy(model, input_ids, mask, steps):
    decoded = torch.full((len(input_ids), 1), model.config.decoder_start_token_id)
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoded, use_cache=False)
        scores = logits.logits[:, -1]
        scores[:, SPECIAL] = float("-inf")
        decoded = torch.cat([decoded, scores.argmax(-1, keepdim=True)], dim=1)
    return decoded


def assert_generates_like_a_greedy_loop_row_by_row(model, input_ids, mask) -> None:
    """Greedy generation equals the loop above, and each row generated alone (unpadded) equals its batch row."""
    generated = model.generate(
        input_ids, attention_mask=mask, max_new_tokens=5, do_sample=False, suppress_tokens=SPECIAL
    )
    assert torch.equal(generated, greedy(model, input_ids, mask, 5))
    for row, length in enumerate((7, 5)):
        alone = model.generate(
            input_ids[row : row + 1, :length], max_new_tokens=5, do_sample=False, suppress_tokens=SPECIAL
        )
        assert torch.equal(alone[0], generated[row])


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_equals_a_greedy_loop_and_batches_equal_single_rows(family, checkpoints):
    model = load(checkpoints, family)
    input_ids, mask, _ = batch()
    assert_generates_like_a_greedy_loop_row_by_row(model, input_ids, mask)
    beams = model.generate(input_ids, attention_mask=mask, max_new_tokens=4, **BEAM_SEARCH, suppress_tokens=SPECIAL)
    assert beams.shape == (4, 5)
    off = torch.zeros(2, 3, dtype=torch.long)
    stock = AutoModelForSeq2SeqLM.from_pretrained(checkpoints[family, "eager"]).eval()
    torch.testing.assert_close(  # the prefix mask reaches every generation step
        model.generate(
            input_ids,
            attention_mask=mask,
            prefix_attention_mask=off,
            max_new_tokens=5,
            do_sample=False,
            suppress_tokens=SPECIAL,
        ),
        stock.generate(input_ids, attention_mask=mask, max_new_tokens=5, do_sample=False, suppress_tokens=SPECIAL),
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_backbone_loads_whole_and_prefix_only_saves_reload(family, checkpoints, tmp_path):
    model = load(checkpoints, family)
    stock = AutoModelForSeq2SeqLM.from_pretrained(checkpoints[family, "eager"])
    loaded = model.seq2seq.state_dict()
    for key, tensor in stock.state_dict().items():
        assert torch.equal(loaded[key], tensor), key
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert set(handle.keys()) == {"prefix_encoder.embedding.weight"}
    input_ids, mask, decoder_ids = batch()
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
        for loader in (pm.AutoPrefixModelForSeq2SeqLM, AutoModelForSeq2SeqLM):
            again = loader.from_pretrained(tmp_path, attn_implementation="eager").eval()
            assert type(again) is type(model)
            actual = again(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
            torch.testing.assert_close(actual, expected, rtol=0, atol=0)


def test_bad_input(checkpoints):
    with pytest.raises(ValueError, match=r"holds a 'bart' checkpoint; the t5 prefix classes"):
        pm.T5PrefixForConditionalGeneration.from_pretrained(checkpoints["Bart", "eager"])
    with pytest.raises(ValueError, match=r"prefix_kinds must be a non-empty list drawn from \['encoder', 'decoder'"):
        pm.AutoPrefixModelForSeq2SeqLM.from_pretrained(checkpoints["T5", "eager"], prefix_kinds=["self"])
    with pytest.raises(ValueError, match=r"prefix_kinds applies to prefix tuning of encoder-decoder models"):
        pm.BertPrefixForSequenceClassification(pm.BertPrefixConfig(prefix_kinds=["cross"]))
    with pytest.raises(ValueError, match=r"prefix_kinds applies to prefix tuning of encoder-decoder models"):
        pm.AutoPrefixModelForSeq2SeqLM.from_pretrained(
            checkpoints["T5", "eager"], method="prompt", prefix_kinds=["cross"]
        )


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_tuning_generates_trains_and_saves(family, attn, checkpoints, tmp_path):
    model = load(checkpoints, family, attn, "prompt")
    input_ids, mask, decoder_ids = batch()
    with torch.no_grad():
        on = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    assert_generates_like_a_greedy_loop_row_by_row(model, input_ids, mask)

    model.train()
    model(input_ids=input_ids, attention_mask=mask, labels=decoder_ids).loss.backward()
    trained = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == {"prompt_encoder.embedding.weight"}
    model.eval().save_pretrained(tmp_path)
    again = AutoModelForSeq2SeqLM.from_pretrained(tmp_path, attn_implementation=attn).eval()
    assert type(again) is type(model)
    with torch.no_grad():
        reloaded = again(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    torch.testing.assert_close(reloaded, on, rtol=0, atol=0)
