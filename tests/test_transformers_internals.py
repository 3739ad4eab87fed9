"""The transformers internals the prefix injection leans on, each checked by name.

pyproject.toml admits transformers 5.x from the release these tests ran on. A later 5.x release that
renames or changes one of these fails here, with the internal named, instead of training a model that
silently ignores its prefix. Behaviour (masked prefix == plain model, equal gradients under checkpointing)
is pinned in test_mechanism.py and test_reliability.py; this file says *what* broke. The internals:

* ``AttentionInterface`` / ``AttentionMaskInterface``: registering an attention function and its mask by
  name (``methods/prefix_tuning/injection.py`` registers ``prefix_sdpa`` / ``prefix_eager``);
* a keyword argument given to a backbone's ``forward`` reaching every attention call (the prefix travels as
  ``prefix_state``), and T5's relative-position bias reaching it as ``position_bias``;
* ``config._attn_implementation_internal`` choosing the attention function;
* each family's module-level ``eager_attention_forward`` (what ``prefix_eager`` calls);
* the attributes and helpers of DeBERTa-v2's and MPNet's attention that ``attention_patches.py`` reuses.
"""

from __future__ import annotations

import inspect
import sys

import pytest
import torch
import transformers
from tiny_families import DECODER_CONFIGS, ENCODER_CONFIGS, SEQ2SEQ_CONFIGS
from transformers import AttentionInterface, AutoModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.deberta_v2 import modeling_deberta_v2
from transformers.models.mpnet import modeling_mpnet

import prefix_models  # noqa: F401  (registers prefix_sdpa / prefix_eager)
from prefix_models.methods.prefix_tuning.injection import PREFIX_ATTENTION

BROKE = f"transformers {transformers.__version__} changed an internal prefix-models relies on"
PROBE = "prefix_models_internals_probe"
CALLS: list[dict] = []


def _probe(module, query, key, value, attention_mask, **kwargs):
    CALLS.append({"module": module, "kwargs": dict(kwargs)})
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(PROBE, _probe)
AttentionMaskInterface.register(PROBE, sdpa_mask)
# The families whose attention dispatches through the interface (DeBERTa-v2 and MPNet are patched instead).
INTERFACE_FAMILIES = {
    **{k: v for k, v in ENCODER_CONFIGS.items() if k not in ("DebertaV2", "MPNet")},
    **DECODER_CONFIGS,
    **SEQ2SEQ_CONFIGS,
}


def test_attention_and_mask_functions_register_by_name():
    for name in PREFIX_ATTENTION.values():
        assert name in ALL_ATTENTION_FUNCTIONS, f"{BROKE}: AttentionInterface.register no longer adds {name!r}"
        assert name in ALL_MASK_ATTENTION_FUNCTIONS, f"{BROKE}: AttentionMaskInterface.register ({name!r})"
    assert ALL_ATTENTION_FUNCTIONS[PROBE] is _probe, f"{BROKE}: ALL_ATTENTION_FUNCTIONS[name] is not the function"


def _probed(config) -> torch.nn.Module:
    torch.manual_seed(0)
    model = AutoModel.from_config(config).eval()
    for module in model.modules():
        sub = getattr(module, "config", None)
        if sub is not None:
            sub._attn_implementation_internal = PROBE
    assert model.config._attn_implementation == PROBE, f"{BROKE}: config._attn_implementation_internal"
    return model


@pytest.mark.parametrize("family", ["Bert", "Llama", "T5"])
def test_a_keyword_argument_reaches_every_attention_call(family):
    """What the prefix rides on: ``backbone(..., prefix_state=...)`` arrives at the attention function."""
    configs = {**ENCODER_CONFIGS, **DECODER_CONFIGS, **SEQ2SEQ_CONFIGS}
    model = _probed(configs[family](attn_implementation="sdpa"))
    token = object()
    input_ids = torch.randint(3, 50, (2, 5))
    CALLS.clear()
    with torch.no_grad():
        if family == "T5":  # each stack is called on its own (attachment.py carries the prefix per stack)
            encoded = model.get_encoder()(input_ids=input_ids, probe_token=token).last_hidden_state
            model.get_decoder()(input_ids=input_ids[:, :3], encoder_hidden_states=encoded, probe_token=token)
        else:
            model(input_ids=input_ids, probe_token=token)
    layers = model.config.num_hidden_layers * (3 if family == "T5" else 1)  # T5: encoder, decoder self, cross
    assert len(CALLS) == layers, (
        f"{BROKE}: {family} ran {len(CALLS)} attention calls, not {layers}, through the interface"
    )
    assert all(call["kwargs"].get("probe_token") is token for call in CALLS), (
        f"{BROKE}: {family}'s forward no longer passes its keyword arguments down to the attention function"
    )
    if family == "T5":
        assert all(torch.is_tensor(call["kwargs"].get("position_bias")) for call in CALLS), (
            f"{BROKE}: T5's attention no longer receives its relative-position bias as position_bias"
        )


@pytest.mark.parametrize("family", INTERFACE_FAMILIES)
def test_each_family_has_the_eager_attention_function_prefix_eager_calls(family):
    model = AutoModel.from_config(INTERFACE_FAMILIES[family](attn_implementation="eager"))
    attention = [m for m in model.modules() if type(m).__name__.endswith("Attention") and hasattr(m, "config")]
    assert attention, f"{BROKE}: {type(model).__name__} has no *Attention modules"
    for module in attention:
        function = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
        assert callable(function), f"{BROKE}: {type(module).__module__}.eager_attention_forward is gone"
        parameters = list(inspect.signature(function).parameters)
        assert parameters[:5] == ["module", "query", "key", "value", "attention_mask"], (
            f"{BROKE}: {type(module).__module__}.eager_attention_forward takes {parameters[:5]}"
        )


def test_deberta_v2_attention_has_what_the_patch_reuses():
    config = ENCODER_CONFIGS["DebertaV2"]()
    attention = modeling_deberta_v2.DisentangledSelfAttention(config)
    for name in (
        "query_proj",
        "key_proj",
        "value_proj",
        "transpose_for_scores",
        "disentangled_attention_bias",
        "pos_dropout",
        "dropout",
        "pos_att_type",
        "relative_attention",
        "num_attention_heads",
    ):
        assert hasattr(attention, name), f"{BROKE}: DisentangledSelfAttention.{name}"
    assert callable(getattr(modeling_deberta_v2, "scaled_size_sqrt", None)), f"{BROKE}: deberta_v2.scaled_size_sqrt"
    parameters = list(inspect.signature(modeling_deberta_v2.DisentangledSelfAttention.forward).parameters)
    expected = [
        "self",
        "hidden_states",
        "attention_mask",
        "output_attentions",
        "query_states",
        "relative_pos",
        "rel_embeddings",
    ]
    assert parameters == expected, f"{BROKE}: DisentangledSelfAttention.forward takes {parameters}"


def test_mpnet_attention_has_what_the_patch_reuses():
    attention = modeling_mpnet.MPNetSelfAttention(ENCODER_CONFIGS["MPNet"]())
    for name in ("q", "k", "v", "o", "attention_head_size", "all_head_size", "dropout"):
        assert hasattr(attention, name), f"{BROKE}: MPNetSelfAttention.{name}"
    parameters = list(inspect.signature(modeling_mpnet.MPNetSelfAttention.forward).parameters)
    assert parameters[:5] == ["self", "hidden_states", "attention_mask", "position_bias", "output_attentions"], (
        f"{BROKE}: MPNetSelfAttention.forward takes {parameters}"
    )


def test_loss_and_file_helpers_exist(tmp_path):
    from transformers.loss.loss_utils import (
        ForCausalLMLoss,
        ForQuestionAnsweringLoss,
        ForSequenceClassificationLoss,
        ForTokenClassification,
    )
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, cached_file, can_return_tuple

    assert SAFE_WEIGHTS_NAME == "model.safetensors" and SAFE_WEIGHTS_INDEX_NAME == "model.safetensors.index.json"
    # Prefix-only checkpoints are recognised by looking for files that may be absent.
    found = cached_file(str(tmp_path), "missing.json", _raise_exceptions_for_missing_entries=False)
    assert found is None, f"{BROKE}: cached_file(_raise_exceptions_for_missing_entries=False)"
    assert callable(ForCausalLMLoss) and callable(can_return_tuple)
    assert callable(ForSequenceClassificationLoss) and callable(ForTokenClassification)
    assert callable(ForQuestionAnsweringLoss)  # the task heads' losses
