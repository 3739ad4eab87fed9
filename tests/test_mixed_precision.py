"""Half-precision backbones: the prefix, prompt and head train in float32, outputs stay close to
float32, and run_glue.py's --dtype / --bf16 work on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, task_inputs
from script_runs import PREFIX, script_args
from tiny_families import DECODER_CONFIGS

import prefix_models as pm
import run_glue

# bfloat16 keeps 8 bits of mantissa: through a 2-layer tiny model logits agree to about 1e-2.
BF16_TOLERANCE = 3e-2

CLASSES = [
    pm.BertPrefixForSequenceClassification,
    pm.RobertaPromptForSequenceClassification,
    pm.BertPrefixForTokenClassification,
]


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_bfloat16_backbone_with_float32_prefix_and_head(model_class, base_checkpoints):
    backbone = "Bert" if model_class.__name__.startswith("Bert") else "Roberta"
    torch.manual_seed(0)
    full = model_class.from_pretrained(base_checkpoints[backbone], pre_seq_len=4).eval()
    torch.manual_seed(0)
    half = model_class.from_pretrained(base_checkpoints[backbone], pre_seq_len=4, dtype=torch.bfloat16).eval()
    half.load_state_dict(
        {k: v for k, v in full.state_dict().items() if not k.startswith(half.base_model_prefix)}, strict=False
    )  # same prefix and head
    assert all(p.dtype == torch.bfloat16 for p in half.base_model.parameters())
    trainable = [p for p in half.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)

    inputs = task_inputs(model_class)
    with torch.no_grad():
        expected, got = full(**inputs).logits, half(**inputs).logits
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=BF16_TOLERANCE)
    half.train()
    half(**inputs).loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainable)


def test_bfloat16_causal_lm():
    # No pad token: generate() would otherwise take the random ids equal to it for padding.
    config = DECODER_CONFIGS["Llama"](
        vocab_size=50, intermediate_size=64, max_position_embeddings=64, pad_token_id=None, pre_seq_len=4
    )
    torch.manual_seed(0)
    full = pm.LlamaPrefixForCausalLM(config).eval()
    half = pm.LlamaPrefixForCausalLM(config).eval()
    half.load_state_dict(full.state_dict())
    half.base_model.to(torch.bfloat16)
    half.lm_head.to(torch.bfloat16)
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(half(ids).logits.float(), full(ids).logits, rtol=0, atol=BF16_TOLERANCE)
        assert half.generate(ids, max_new_tokens=3, do_sample=False).shape == (2, 12)
    half.train()
    half(ids, labels=ids).loss.backward()
    assert half.prefix_encoder.embedding.weight.grad.dtype == torch.float32


@pytest.mark.parametrize("flags", [["--dtype", "bfloat16"], ["--bf16"]], ids=["dtype-bfloat16", "bf16-autocast"])
def test_run_glue_in_bfloat16_on_cpu(flags, tiny_model, tmp_path):
    def run(output_dir: Path, *args: str) -> dict:
        sst2 = {"task_name": "sst2", "data_dir": FIXTURES / "glue_data"}
        return run_glue.main(
            script_args(
                tiny_model,
                output_dir,
                *args,
                **sst2,
                **PREFIX,
                do_train=True,
                do_eval=True,
                max_steps=4,
                per_device_train_batch_size=4,
            )
        )

    reference = run(tmp_path / "fp32")
    results = run(tmp_path / "bf16", *flags)
    assert abs(results["eval_loss"] - reference["eval_loss"]) < 0.05
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "bf16" / "model.safetensors")
    assert all(tensor.dtype == torch.float32 for key, tensor in saved.items() if key.startswith("prefix_encoder"))
