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
from safetensors.torch import load_file
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
        model = loader.from_pretrained(
            RELEASE / name, base_model_name_or_path=str(RELEASE / base), attn_implementation=attn
        ).eval()
        assert type(model) is cls
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask).logits
        real = mask.bool()  # padded positions are not compared (no label reads them)
        if logits.dim() == 2:  # sequence classification: one row per example
            real = torch.ones(len(logits), dtype=torch.bool)
        torch.testing.assert_close(logits[real], torch.tensor(expected[name])[real], rtol=1e-5, atol=1e-5)


# Saved by the release before the classes became class statements (commit 6e7a7b8: made with type() at
# import, four mixins in each MRO): full saves of a BERT prefix on its top layer only (prefix_layers=[-1]),
# a BERT prompt and a Llama prefix LM, with the logits that code computed.
RELEASE_12_01 = FIXTURES / "release-2026-12-01"
CASES_12_01 = [
    ("bert_prefix_seq_cls", pm.BertPrefixForSequenceClassification, AutoModelForSequenceClassification),
    ("bert_prompt_token_cls", pm.BertPromptForTokenClassification, AutoModelForTokenClassification),
    ("llama_prefix_lm", pm.LlamaPrefixForCausalLM, AutoModelForCausalLM),
]


@pytest.mark.parametrize(("name", "cls", "stock_auto"), CASES_12_01, ids=[case[0] for case in CASES_12_01])
def test_a_checkpoint_of_the_generated_type_release_gives_its_logits(name, cls, stock_auto):
    inputs = json.loads((RELEASE_12_01 / "inputs.json").read_text())
    input_ids, mask = torch.tensor(inputs["input_ids"]), torch.tensor(inputs["attention_mask"])
    expected = load_file(RELEASE_12_01 / "expected_logits.safetensors")[name]
    for loader in (cls, stock_auto, pm.AutoPrefixModelForCausalLM if "lm" in name else None):
        if loader is None:
            continue
        model = loader.from_pretrained(RELEASE_12_01 / name).eval()
        assert type(model) is cls
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask).logits
        torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    if name == "bert_prefix_seq_cls":
        assert model.config.prefix_layers == [-1]
        assert model.prefix_encoder.embedding.weight.shape[-1] == 2 * 16  # one layer's keys and values
