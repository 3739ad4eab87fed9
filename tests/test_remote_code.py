"""A saved folder loads where ``prefix_models`` was never imported: ``trust_remote_code=True`` through the
``auto_map`` and ``modeling_prefix.py`` every save writes. Each load runs in a fresh interpreter that
imports only transformers (or lm-evaluation-harness), and must give our own model's logits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import transformers as tf
from conftest import FIXTURES, tiny_config
from tiny_families import decoder_config

import prefix_models as pm
from prefix_models.checkpoints.remote_code import class_by_name
from prefix_models.checkpoints.remote_files import REMOTE_CODE_FILE

IDS = [[5, 17, 42, 8, 23, 9], [6, 30, 11, 12, 40, 3]]


def fresh_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter (no ``prefix_models`` import), offline, with its own module cache."""
    checkout = str(Path(__file__).resolve().parents[1])  # this checkout's prefix_models, installed or not
    path = os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=tmp_path
    )


def randomised(model):
    """Non-zero prefix/prompt and head, so that a load that lost them cannot match."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 0.5)
    return model.eval()


@pytest.fixture
def bert_base(tmp_path):
    path = tmp_path / "bert-base"
    torch.manual_seed(0)
    tf.BertModel(tiny_config("Bert")).save_pretrained(path)
    tf.AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer").save_pretrained(path)
    return path


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_a_classifier_loads_with_trust_remote_code_alone(bert_base, tmp_path, method):
    model = pm.AutoPrefixModelForSequenceClassification.from_pretrained(
        bert_base, method=method, num_labels=3, pre_seq_len=4
    )
    saved = tmp_path / "saved"
    randomised(model).save_pretrained(saved)
    config = json.loads((saved / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": f"modeling_prefix.{type(model.config).__name__}",
        "AutoModelForSequenceClassification": f"modeling_prefix.{type(model).__name__}",
    }
    assert (saved / REMOTE_CODE_FILE).is_file()
    with torch.no_grad():
        expected = model(torch.tensor(IDS)).logits
    result = fresh_python(
        f"""
        import sys, torch, transformers
        model = transformers.AutoModelForSequenceClassification.from_pretrained({str(saved)!r}, trust_remote_code=True)
        assert "prefix_models" in sys.modules  # imported by the folder's module, not by us
        print(type(model).__name__)
        with torch.no_grad():
            torch.save(model.eval()(torch.tensor({IDS})).logits, {str(tmp_path / "logits.pt")!r})
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == type(model).__name__
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, rtol=0, atol=1e-6)


def test_the_folder_says_what_to_install_when_prefix_models_is_missing(bert_base, tmp_path):
    model = pm.AutoPrefixModelForSequenceClassification.from_pretrained(bert_base, num_labels=2, pre_seq_len=4)
    model.save_pretrained(tmp_path / "saved")
    result = fresh_python(
        f"""
        import sys, transformers
        sys.modules["prefix_models"] = None  # as if not installed: importing it raises ImportError
        transformers.AutoConfig.from_pretrained({str(tmp_path / "saved")!r}, trust_remote_code=True)
        """,
        tmp_path,
    )
    assert result.returncode != 0
    assert "needs that package installed: pip install prefix-models" in result.stderr


@pytest.fixture
def llama_base(tmp_path):
    path = tmp_path / "llama-base"
    config = decoder_config("llama", max_position_embeddings=64)
    torch.manual_seed(0)
    tf.LlamaForCausalLM(config).save_pretrained(path)
    tokenizer = tf.AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer")
    tokenizer.eos_token, tokenizer.bos_token = "[SEP]", "[CLS]"
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_lm_eval_loads_a_saved_lm_from_its_path(llama_base, tmp_path, method):
    """lm-evaluation-harness built from a path string, as its command line does, with trust_remote_code."""
    huggingface = pytest.importorskip("lm_eval.models.huggingface")
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(llama_base, method=method, pre_seq_len=4)
    saved = tmp_path / "saved"
    randomised(model).save_pretrained(saved)
    tf.AutoTokenizer.from_pretrained(llama_base).save_pretrained(saved)
    request = ("a b c", " d e")
    from lm_eval.api.instance import Instance

    ours = huggingface.HFLM(pretrained=model, tokenizer=tf.AutoTokenizer.from_pretrained(saved), device="cpu")
    (expected, _), *_ = ours.loglikelihood(
        [Instance(request_type="loglikelihood", doc={}, arguments=request, idx=0)], disable_tqdm=True
    )
    result = fresh_python(
        f"""
        import sys
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
        assert "prefix_models" not in sys.modules
        harness = HFLM(pretrained={str(saved)!r}, trust_remote_code=True, device="cpu")
        print(type(harness.model).__name__)
        request = Instance(request_type="loglikelihood", doc={{}}, arguments={request!r}, idx=0)
        print(repr(harness.loglikelihood([request], disable_tqdm=True)[0][0]))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    name, logprob = result.stdout.split()[-2:]
    assert name == type(model).__name__
    assert float(logprob) == pytest.approx(expected, abs=1e-5)


def test_a_decoder_accepted_by_capability_loads_too(tmp_path):
    """Qwen3 has no named class: the folder's module makes its classes as AutoPrefixModelForCausalLM does."""
    config = decoder_config("qwen3", max_position_embeddings=64)
    torch.manual_seed(0)
    tf.Qwen3ForCausalLM(config).save_pretrained(tmp_path / "qwen3-base")
    model = pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "qwen3-base", pre_seq_len=4)
    randomised(model).save_pretrained(tmp_path / "saved")
    with torch.no_grad():
        expected = model(torch.tensor(IDS)).logits
    result = fresh_python(
        f"""
        import torch, transformers
        model = transformers.AutoModelForCausalLM.from_pretrained({str(tmp_path / "saved")!r}, trust_remote_code=True)
        with torch.no_grad():
            torch.save(model.eval()(torch.tensor({IDS})).logits, {str(tmp_path / "logits.pt")!r})
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, rtol=0, atol=1e-6)


def test_class_by_name_refuses_a_name_it_cannot_make():
    assert class_by_name("BertPrefixForTokenClassification") is pm.BertPrefixForTokenClassification
    with pytest.raises(AttributeError, match="no class 'FalconPrefixForCausalLM'"):
        class_by_name("FalconPrefixForCausalLM")
