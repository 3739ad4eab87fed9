"""The vLLM serving plugin (``serving/vllm``, module ``prefix_models_vllm``) reads the folders this project
writes without importing it: what it reads equals what the project computes.

The plugin's folder, fingerprint and prompt modules need no vLLM, so they run here beside prefix_models; the
engine-side tests (greedy tokens served by vLLM == this project's generate) run in vLLM's venv (serving/vllm/tests).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch
import transformers as tf

from prefix_models import AutoPrefixModelForCausalLM
from prefix_models.errors import InputError

SERVING = Path(__file__).resolve().parents[1] / "serving" / "vllm"
sys.path.insert(0, str(SERVING))

from prefix_models_vllm import EngineModel, PrefixFolderError, load_tasks, prefixed_prompt  # noqa: E402
from prefix_models_vllm.fingerprint import fingerprint_difference  # noqa: E402
from prefix_models_vllm.folders import read_prefix_folder  # noqa: E402
from prefix_models_vllm.soft_tokens import soft_token_key_values  # noqa: E402

# uvloop: the event loop vLLM's own server runs on (a vLLM dependency), which serve.py runs it on too.
ALLOWED = {"vllm", "torch", "safetensors", "uvloop", "__future__"}
# vLLM's own transformers runs the base over a prompt's soft tokens (soft_tokens.py), and nowhere else.
ALLOWED_IN = {"soft_tokens.py": {"transformers"}}


def test_the_plugin_imports_vllm_torch_safetensors_and_the_standard_library_only():
    others = {}
    for path in (SERVING / "prefix_models_vllm").rglob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
        allowed = ALLOWED | ALLOWED_IN.get(path.name, set())
        others[path.name] = {name for name in imported if name not in allowed and name not in sys.stdlib_module_names}
    assert "connector.py" in others and "soft_tokens.py" in others
    assert {name: found for name, found in others.items() if found} == {}


def _engine(config: tf.PreTrainedConfig) -> EngineModel:
    return EngineModel(
        model="",
        model_type=config.model_type,
        num_layers=config.num_hidden_layers,
        num_kv_heads=config.num_key_value_heads,
        head_dim=config.hidden_size // config.num_attention_heads,
        hidden_size=config.hidden_size,
        max_model_len=config.max_position_embeddings,
        sliding_window=None,
        uses_rotary=True,
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("base")
    config = tf.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    tf.LlamaForCausalLM(config).save_pretrained(path)
    return str(path), config


@pytest.mark.parametrize("projection", [False, True])
def test_the_served_keys_and_values_are_the_model_s_own(base, tmp_path, projection):
    path, config = base
    model = AutoPrefixModelForCausalLM.from_pretrained(path, pre_seq_len=5, prefix_projection=projection).eval()
    with torch.no_grad():
        for parameter in model.prefix_encoder.parameters():
            parameter.normal_()
    model.save_pretrained(tmp_path)
    served = load_tasks({"task": str(tmp_path)}, _engine(config))["task"]
    with torch.no_grad():
        expected = model.get_prompt(1)
    assert len(expected) == config.num_hidden_layers
    for layer, (key, value) in enumerate(expected):  # (1, kv_heads, P, head_dim) -> (P, kv_heads, head_dim)
        torch.testing.assert_close(served.keys[layer], key[0].transpose(0, 1), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(served.values[layer], value[0].transpose(0, 1), rtol=1e-5, atol=1e-6)


def test_a_save_prefix_folder_is_served_as_its_task(base, tmp_path):
    path, config = base
    model = AutoPrefixModelForCausalLM.from_pretrained(path, pre_seq_len=4)
    model.add_prefix("second", pre_seq_len=7)
    model.save_prefix("second", tmp_path)
    assert read_prefix_folder("second", tmp_path).pre_seq_len == 7
    assert load_tasks({"second": str(tmp_path)}, _engine(config))["second"].pre_seq_len == 7


def test_the_plugin_checks_the_base_as_the_project_does(base, tmp_path):
    path, config = base
    model = AutoPrefixModelForCausalLM.from_pretrained(path, pre_seq_len=4)
    model.save_pretrained(tmp_path / "prefix")
    saved = read_prefix_folder("t", tmp_path / "prefix").fingerprint
    assert fingerprint_difference(saved, path) is None
    torch.manual_seed(1)
    tf.LlamaForCausalLM(config).save_pretrained(tmp_path / "other")
    assert "sample" in fingerprint_difference(saved, str(tmp_path / "other"))
    with pytest.raises(InputError, match="base_model_fingerprint"):
        AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "prefix", base_model_name_or_path=tmp_path / "other")
    # A bfloat16 copy of the same weights is the same base, for both.
    tf.LlamaForCausalLM.from_pretrained(path, dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    assert fingerprint_difference(saved, str(tmp_path / "bf16")) is None
    AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "prefix", base_model_name_or_path=tmp_path / "bf16")


def test_a_prompt_for_a_task_carries_its_placeholders_and_salt(base, tmp_path):
    path, _ = base
    AutoPrefixModelForCausalLM.from_pretrained(path, pre_seq_len=3).save_pretrained(tmp_path)
    prefixes = {"sql": str(tmp_path)}
    assert prefixed_prompt("sql", [9, 8], prefixes) == {"prompt_token_ids": [0, 0, 0, 9, 8], "cache_salt": "prefix:sql"}
    assert prefixed_prompt(None, [9, 8], prefixes) == {"prompt_token_ids": [9, 8]}
    with pytest.raises(ValueError, match="unknown task 'chat'; the engine serves the tasks: sql"):
        prefixed_prompt("chat", [9], prefixes)
    with pytest.raises(ValueError, match="starts with token id 0, the placeholder id"):
        prefixed_prompt("sql", [0, 9], prefixes)
    with pytest.raises(PrefixFolderError, match="task 'sql': .* is not a folder"):
        load_tasks({"sql": str(tmp_path / "nowhere")}, _engine(tf.LlamaConfig()))


@pytest.mark.parametrize("positions", ["none", "peft"])
def test_a_prompt_s_keys_and_values_are_those_the_model_caches_for_its_soft_tokens(base, tmp_path, positions):
    path, config = base
    model = AutoPrefixModelForCausalLM.from_pretrained(
        path, method="prompt", pre_seq_len=3, virtual_token_positions=positions
    ).eval()
    with torch.no_grad():
        model.prompt_encoder.embedding.weight.normal_()
    model.save_pretrained(tmp_path)
    served = load_tasks({"task": str(tmp_path)}, _engine(config))["task"]
    torch.testing.assert_close(served.soft_tokens, model.prompt_encoder.embedding.weight.detach())
    keys, values = soft_token_key_values(path, served.soft_tokens, served.virtual_token_positions)
    ids = torch.tensor([[5, 9, 7]])
    with torch.no_grad():  # the generation cache holds the soft tokens' keys and values in front
        cache = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True).past_key_values
    assert keys.shape == (config.num_hidden_layers, 3, config.num_key_value_heads, 8)
    for layer in range(config.num_hidden_layers):
        torch.testing.assert_close(keys[layer], cache.layers[layer].keys[0, :, :3].transpose(0, 1))
        torch.testing.assert_close(values[layer], cache.layers[layer].values[0, :, :3].transpose(0, 1))
