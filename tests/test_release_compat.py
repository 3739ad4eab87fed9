"""Checkpoints saved by the release before attention-level injection (commit 62f9906, the prefix entered
through the attention cache) load into today's classes and give the logits that release computed.

The fixtures in ``tests/fixtures/release-2026-11-27`` were written by that code: two tiny stock
backbones, a BERT prefix (with the reparameterisation MLP) for sequence classification, a BERT
prompt for token classification and a GPT-2 prefix LM, each saved prefix-only, with the inputs and
logits in ``expected.json``. The one edit since: their configs' ``base_model_name_or_path`` (an
absolute path on the machine that wrote them) now reads ``/moved-away/...``, so the tests must pass
``base_model_name_or_path``, as for any base that moved, on every machine alike.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import FIXTURES
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoModelForTokenClassification

import prefix_models as pm

RELEASE = FIXTURES / "release-2026-11-27"
CASES = [
    ("bert-prefix-seqcls", "bert-base", pm.BertPrefixForSequenceClassification, AutoModelForSequenceClassification),
    ("bert-prompt-tokcls", "bert-base", pm.BertPromptForTokenClassification, AutoModelForTokenClassification),
    ("gpt2-prefix-lm", "gpt2-base", pm.GPT2PrefixLMHeadModel, AutoModelForCausalLM),
]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize(("name", "base", "cls", "stock_auto"), CASES, ids=[case[0] for case in CASES])
def test_a_checkpoint_of_the_cache_route_release_gives_its_logits(name, base, cls, stock_auto, attn):
    expected = json.loads((RELEASE / "expected.json").read_text())
    input_ids, mask = torch.tensor(expected["input_ids"]), torch.tensor(expected["attention_mask"])
    for loader in (cls, stock_auto):
        model = loader.from_pretrained(RELEASE / name, base_model_name_or_path=str(RELEASE / base),
                                       attn_implementation=attn).eval()  # fmt: skip
        assert type(model) is cls
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask).logits
        real = mask.bool()  # padded positions are not compared (no label reads them)
        if logits.dim() == 2:  # sequence classification: one row per example
            real = torch.ones(len(logits), dtype=torch.bool)
        torch.testing.assert_close(logits[real], torch.tensor(expected[name])[real], rtol=1e-5, atol=1e-5)
