"""The transformers internals the prefix injection leans on, each checked by name.

pyproject.toml admits transformers 5.x from the release these tests ran on. A later 5.x release that
renames or changes one of these fails here, with the internal named, instead of training a model
that silently ignores its prefix. Behaviour (masked prefix == plain model, equal gradients under
checkpointing) is pinned in test_mechanism.py and test_reliability.py; this file says *what* broke.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import transformers
from conftest import tiny_config
from transformers import BertModel, DynamicCache, GPT2Config, GPT2Model, LlamaConfig, LlamaModel
from transformers.modeling_layers import GradientCheckpointingLayer

from prefix_models.modeling_utils import cache_argument_name

BROKE = f"transformers {transformers.__version__} changed an internal prefix-models relies on"


@pytest.mark.parametrize("backbone", [BertModel, GPT2Model, LlamaModel], ids=lambda c: c.__name__)
def test_backbones_take_a_cache_argument(backbone):
    parameters = inspect.signature(backbone.forward).parameters
    assert cache_argument_name(backbone) in parameters, f"{BROKE}: {backbone.__name__}.forward takes no cache"
    assert "position_ids" in parameters, f"{BROKE}: {backbone.__name__}.forward takes no position_ids"


def test_dynamic_cache_layers_hold_keys_and_values():
    cache = DynamicCache()
    keys, values = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    returned = cache.update(keys, values, 0)
    assert torch.equal(returned[0], keys) and torch.equal(returned[1], values), f"{BROKE}: DynamicCache.update"
    layer = cache.layers[0]  # FrozenPrefixCache reads the prefix back from here
    assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values), f"{BROKE}: DynamicCache.layers"
    assert cache.get_seq_length() == 4, f"{BROKE}: DynamicCache.get_seq_length"


def test_gradient_checkpointing_layers_consult_the_cache_flag():
    # gradient_checkpointing_enable sets this flag so checkpointed layers keep the read-only prefix cache.
    source = inspect.getsource(GradientCheckpointingLayer)
    assert "_can_checkpoint_with_cache" in source, f"{BROKE}: GradientCheckpointingLayer no longer reads it"
    assert "gradient_checkpointing" in source


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


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_a_cached_prefix_reaches_every_layer_and_positions_stay_explicit(family):
    """Keys/values given through the cache are attended to (the output moves with them), and the
    real tokens keep the positions passed explicitly (the cache length does not shift them)."""
    torch.manual_seed(0)
    if family == "bert":
        model = BertModel(tiny_config("Bert"))
    elif family == "gpt2":
        model = GPT2Model(GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=4, n_positions=16))
    else:
        model = LlamaModel(LlamaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       num_key_value_heads=2, intermediate_size=64))  # fmt: skip
    model.eval()
    heads = getattr(model.config, "num_key_value_heads", None) or model.config.num_attention_heads
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    input_ids = torch.randint(3, 50, (1, 6))
    positions = torch.arange(6).unsqueeze(0)
    name = cache_argument_name(type(model))

    def run(scale: float, prefix_mask: int) -> torch.Tensor:
        cache = DynamicCache()
        generator = torch.Generator().manual_seed(1)
        for layer in range(model.config.num_hidden_layers):
            kv = torch.randn(2, 1, heads, 3, head_dim, generator=generator) * scale
            cache.update(kv[0], kv[1], layer)
        mask = torch.cat([torch.full((1, 3), prefix_mask), torch.ones(1, 6, dtype=torch.long)], dim=1)
        with torch.no_grad():
            return model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                         **{name: cache}).last_hidden_state  # fmt: skip

    with torch.no_grad():
        plain = model(input_ids=input_ids, position_ids=positions).last_hidden_state
    assert run(1.0, 1).shape == plain.shape, f"{BROKE}: cached keys changed the output length"
    assert not torch.allclose(run(1.0, 1), run(3.0, 1)), f"{BROKE}: cached prefix keys/values are not attended to"
    torch.testing.assert_close(run(1.0, 0), plain, rtol=0, atol=1e-5, msg=f"{BROKE}: masking or positions")
