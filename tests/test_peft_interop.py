"""peft prefix- and prompt-tuning adapters in and out, checked against the real peft library: an imported
adapter reproduces peft's logits and generations (peft's positions, ``virtual_token_positions="peft"``),
an exported one loads into ``PeftModel`` and gives our outputs, and other peft adapter types are refused."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from tiny_families import DECODER_CONFIGS
from transformers import AutoModelForCausalLM

import prefix_models as pm

peft = pytest.importorskip("peft")

FAMILIES = ("GPT2", "Llama")
METHODS = {"prefix": "PrefixTuningConfig", "prompt": "PromptTuningConfig"}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    paths = {}
    for family in FAMILIES:
        torch.manual_seed(11)
        paths[family] = tmp_path_factory.mktemp(f"peft-{family}")
        AutoModelForCausalLM.from_config(DECODER_CONFIGS[family](vocab_size=60)).save_pretrained(paths[family])
    return paths


def peft_adapter(base, method, folder, seed=0, virtual_tokens=3):
    """A peft model on ``base`` with random virtual tokens, saved as an adapter in ``folder``."""
    torch.manual_seed(seed)
    stock = AutoModelForCausalLM.from_pretrained(base)
    config = getattr(peft, METHODS[method])(task_type="CAUSAL_LM", num_virtual_tokens=virtual_tokens)
    model = peft.get_peft_model(stock, config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 1.0)
    model.save_pretrained(folder)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    return model.eval()


def greedy_loop(reference, input_ids, steps):
    """Greedy decoding on peft's forward, no cache (special tokens 0-2 suppressed, as in generate below)."""
    with torch.no_grad():
        for _ in range(steps):
            logits = reference(input_ids=input_ids).logits[:, -1]
            logits[:, :3] = float("-inf")
            input_ids = torch.cat([input_ids, logits.argmax(-1, keepdim=True)], dim=1)
    return input_ids


def inputs(seed=2):
    return torch.randint(3, 60, (2, 7), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("family", FAMILIES)
def test_an_imported_peft_adapter_reproduces_peft_and_exports_back(family, method, bases, tmp_path):
    reference = peft_adapter(bases[family], method, tmp_path / "peft")
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "peft").eval()
    assert model.prefix_method == method and model.config.virtual_token_positions == "peft"
    input_ids = inputs()
    settings = dict(max_new_tokens=4, do_sample=False, pad_token_id=0, suppress_tokens=[0, 1, 2])
    with torch.no_grad():
        expected = reference(input_ids=input_ids).logits[:, -input_ids.shape[1] :]
        torch.testing.assert_close(model(input_ids).logits, expected, rtol=1e-5, atol=1e-5)
    # Generation equals greedy decoding on peft's own forward. (peft 0.21.2's generate() agrees on GPT-2; on
    # Llama it departs from its own forward after the first token, so its forward is the reference.)
    generated = model.generate(input_ids, **settings)
    assert generated.tolist() == greedy_loop(reference, input_ids, steps=4).tolist()
    if family == "GPT2":
        assert generated.tolist() == reference.generate(input_ids=input_ids, **settings).tolist()

    # Our positions (the default) are not peft's: the same adapter then gives other logits.
    shifted = pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "peft", virtual_token_positions="none").eval()
    with torch.no_grad():
        assert (shifted(input_ids).logits - expected).abs().max() > 1e-3

    # Export: PeftModel loads it on a fresh base and gives our outputs.
    model.save_peft_adapter(tmp_path / "exported")
    back = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(bases[family]), tmp_path / "exported")
    with torch.no_grad():
        torch.testing.assert_close(
            back.eval()(input_ids=input_ids).logits[:, -input_ids.shape[1] :],
            model(input_ids).logits,
            rtol=1e-5,
            atol=1e-5,
        )


def test_a_peft_adapter_loads_as_a_named_prefix_beside_others(bases, tmp_path):
    first = peft_adapter(bases["GPT2"], "prefix", tmp_path / "one", seed=0, virtual_tokens=3)
    second = peft_adapter(bases["GPT2"], "prefix", tmp_path / "two", seed=1, virtual_tokens=5)
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "one").eval()
    model.load_prefix(tmp_path / "two", "two")
    input_ids = inputs()
    with torch.no_grad():
        mixed = model(input_ids, prefix_names=["two", "default"]).logits
        for row, reference in enumerate((second, first)):
            expected = reference.eval()(input_ids=input_ids[row : row + 1]).logits[:, -input_ids.shape[1] :]
            torch.testing.assert_close(mixed[row : row + 1], expected, rtol=1e-5, atol=1e-5)


def test_exporting_a_prefix_trained_at_our_positions_warns(bases, tmp_path, caplog):
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(bases["GPT2"], pre_seq_len=3)
    with caplog.at_level(logging.WARNING, logger="prefix_models.checkpoints.peft"):
        model.save_peft_adapter(tmp_path / "out")
    assert "virtual_token_positions='none'" in caplog.text
    assert json.loads((tmp_path / "out" / "adapter_config.json").read_text())["peft_type"] == "PREFIX_TUNING"


def test_other_peft_adapters_are_refused_by_name(bases, tmp_path):
    stock = AutoModelForCausalLM.from_pretrained(bases["GPT2"])
    lora = peft.get_peft_model(stock, peft.LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["c_attn"]))
    lora.save_pretrained(tmp_path / "lora")
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(bases["GPT2"], pre_seq_len=3)
    names = list(model.prefix_names)
    for call in (
        lambda: pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "lora"),
        lambda: pm.GPT2PrefixLMHeadModel.from_pretrained(tmp_path / "lora"),
        lambda: model.load_prefix(tmp_path / "lora", "lora"),
    ):
        with pytest.raises(ValueError, match=r"peft LORA adapter.*PREFIX_TUNING or PROMPT_TUNING"):
            call()
    assert model.prefix_names == names
    # A base that is not a local folder (a hub id) is named, with the way out.
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "PREFIX_TUNING",
                "task_type": "CAUSAL_LM",
                "base_model_name_or_path": "gpt2",
                "num_virtual_tokens": 3,
            }
        )
    )
    with pytest.raises(ValueError, match=r"'gpt2', which is not a local folder.*base_model_name_or_path"):
        pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "hub")
