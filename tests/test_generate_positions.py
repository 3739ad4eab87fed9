"""generate() runs the positions forward runs, in every position mode (``VIRTUAL_TOKEN_POSITIONS``), for both
methods and every decoder family: its logits at every step equal a step-by-step loop over forward (the whole
sequence re-run, no cache), with the cache on and off, and a left-padded batch generates what each row alone does.
Given ``position_ids`` number the real tokens as the plain model would (generate passes them); the position mode
moves them (peft's positions: after the virtual tokens)."""

from __future__ import annotations

import pytest
import torch
from tiny_families import DECODER_CONFIGS, EAGER_ONLY, SEQ2SEQ_CONFIGS

from prefix_models import AutoPrefixModelForCausalLM, AutoPrefixModelForSeq2SeqLM
from prefix_models.configuration import PREFIX_METHODS, VIRTUAL_TOKEN_POSITIONS
from prefix_models.errors import InputError

VOCAB = 60
SPECIAL = [0, 1, 2]  # pad / bos / eos: suppressed so that every row generates its full length
STEPS = 3
PAD = (0, 2)  # left padding of the batch's two rows


def make(family: str, method: str, positions: str, pre_seq_len: int = 3):
    attn = "eager" if family in EAGER_ONLY else "sdpa"
    config = DECODER_CONFIGS[family](
        vocab_size=VOCAB,
        attn_implementation=attn,
        prefix_method=method,
        pre_seq_len=pre_seq_len,
        virtual_token_positions=positions,
    )
    torch.manual_seed(0)
    model = AutoPrefixModelForCausalLM.model_class(family.lower(), method)(config).eval()
    with torch.no_grad():  # virtual tokens far from zero, so that where they sit visibly matters
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 1.0)
    return model


def batch():
    input_ids = torch.randint(3, VOCAB, (len(PAD), 6), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(input_ids)
    for row, pad in enumerate(PAD):
        mask[row, :pad] = 0
    return input_ids.masked_fill(mask == 0, 0), mask


def forward_loop(model, input_ids, mask, steps=STEPS, **kwargs):
    """Greedy decoding on forward, the whole sequence each step (no cache): the tokens and each step's logits."""
    scores = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids, attention_mask=mask, use_cache=False, **kwargs).logits[:, -1]
            scores.append(logits)
            logits = logits.clone()
            logits[:, SPECIAL] = float("-inf")
            input_ids = torch.cat([input_ids, logits.argmax(-1, keepdim=True)], dim=1)
            mask = torch.cat([mask, mask.new_ones(len(input_ids), 1)], dim=1)
    return input_ids, torch.stack(scores)


def generate(model, input_ids, mask, use_cache, steps=STEPS, **kwargs):
    out = model.generate(
        input_ids,
        attention_mask=mask,
        max_new_tokens=steps,
        do_sample=False,
        suppress_tokens=SPECIAL,
        use_cache=use_cache,
        output_logits=True,
        return_dict_in_generate=True,
        **kwargs,
    )
    return out.sequences, torch.stack(out.logits)


def assert_logits_close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


CASES = [
    (family, method, positions)
    for family in DECODER_CONFIGS
    for method in PREFIX_METHODS
    for positions in VIRTUAL_TOKEN_POSITIONS
]


@pytest.mark.parametrize(("family", "method", "positions"), CASES)
def test_generate_equals_a_forward_loop_in_every_position_mode(family, method, positions):
    model = make(family, method, positions)
    input_ids, mask = batch()
    expected, expected_logits = forward_loop(model, input_ids, mask)
    for use_cache in (True, False):
        tokens, logits = generate(model, input_ids, mask, use_cache)
        assert_logits_close(logits[0], expected_logits[0])  # the first step: the prompt's own forward
        assert_logits_close(logits, expected_logits)
        assert torch.equal(tokens, expected), f"use_cache={use_cache}"
    with torch.no_grad():
        batch_logits = model(input_ids, attention_mask=mask).logits
    for row, pad in enumerate(PAD):  # each row alone, unpadded, reads and generates what it does in the batch
        with torch.no_grad():
            assert_logits_close(model(input_ids[row : row + 1, pad:]).logits[0], batch_logits[row, pad:])
        alone, alone_logits = generate(model, input_ids[row : row + 1, pad:], None, use_cache=True)
        assert torch.equal(alone[0, -STEPS:], expected[row, -STEPS:])
        assert_logits_close(alone_logits[:, 0], expected_logits[:, row])


@pytest.mark.parametrize("method", PREFIX_METHODS)
@pytest.mark.parametrize("family", ["GPT2", "Llama"])
def test_position_ids_number_the_real_tokens_in_every_mode(family, method):
    """Given positions are the plain model's (as generate gives them): forward with them equals forward without,
    and peft's positions then differ from ours, so the modes are not the same model."""
    input_ids, mask = batch()
    plain = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    real = mask.bool()
    logits = {}
    for positions in VIRTUAL_TOKEN_POSITIONS:
        model = make(family, method, positions)
        with torch.no_grad():
            logits[positions] = model(input_ids, attention_mask=mask).logits
            given = model(input_ids, attention_mask=mask, position_ids=plain).logits
        assert_logits_close(given[real], logits[positions][real])
    assert (logits["peft"][real] - logits["none"][real]).abs().max() > 1e-3


@pytest.mark.parametrize("method", PREFIX_METHODS)
@pytest.mark.parametrize("family", ["GPT2", "Llama"])
def test_named_prefixes_of_other_lengths_generate_at_their_own_positions(family, method):
    """Each row's shift is its own prefix's length: a batch routed to prefixes of two lengths generates what a
    forward loop with the same routing does."""
    model = make(family, method, "peft")
    model.add_prefix("longer", pre_seq_len=5)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 1.0)
    input_ids, mask = batch()
    names = ["longer", "default"]
    expected, expected_logits = forward_loop(model, input_ids, mask, prefix_names=names)
    for use_cache in (True, False):
        tokens, logits = generate(model, input_ids, mask, use_cache, prefix_names=names)
        assert_logits_close(logits, expected_logits)
        assert torch.equal(tokens, expected)


@pytest.mark.parametrize("method", PREFIX_METHODS)
def test_seq2seq_models_take_no_other_position_mode(method):
    """Encoder-decoders have one position mode (their real tokens keep their positions): peft's is refused by name."""
    others = [positions for positions in VIRTUAL_TOKEN_POSITIONS if positions != "none"]
    for positions in others:
        config = SEQ2SEQ_CONFIGS["T5"](prefix_method=method, pre_seq_len=3, virtual_token_positions=positions)
        with pytest.raises(InputError, match="virtual_token_positions"):
            AutoPrefixModelForSeq2SeqLM.model_class("t5", method)(config)
