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
from conftest import FIXTURES, randomised, tiny_config
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


def logits_in_fresh_python(folders: dict[str, tuple[str, Path]], tmp_path: Path) -> dict[str, torch.Tensor]:
    """``{name: (Auto class, folder)}``: the logits of ``IDS`` from each folder loaded by ``transformers.<Auto
    class>`` with ``trust_remote_code=True``, each in a process that never imported prefix_models (once one
    folder has imported it, its classes are registered and a second folder would load without its own module):
    one interpreter imports torch and transformers, then forks a child per folder."""
    folders = {name: (auto_class, str(folder)) for name, (auto_class, folder) in folders.items()}
    result = fresh_python(
        f"""
        import os, sys, traceback, torch, transformers
        folders = {folders!r}
        for auto_class in {{auto_class for auto_class, _ in folders.values()}}:
            getattr(transformers, auto_class)  # imported once, before the children fork
        for name, (auto_class, folder) in folders.items():
            child = os.fork()
            if child == 0:
                try:
                    assert "prefix_models" not in sys.modules
                    model = getattr(transformers, auto_class).from_pretrained(folder, trust_remote_code=True)
                    assert "prefix_models" in sys.modules  # imported by the folder's module, not by us
                    with torch.no_grad():
                        logits = model.eval()(torch.tensor({IDS})).logits
                    torch.save(logits, os.path.join({str(tmp_path)!r}, name + ".pt"))
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
                os._exit(0)
            if os.waitpid(child, 0)[1] != 0:
                sys.exit(f"{{folder}} did not load with trust_remote_code=True alone")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return {name: torch.load(tmp_path / f"{name}.pt") for name in folders}


def test_a_save_prefix_folder_loads_with_trust_remote_code_alone(bert_base, llama_base, tmp_path):
    """``save_prefix`` of a prefix model's own task, of a task added beside a prompt model's, and of a decoder
    LM's prefix."""
    classifiers = {
        method: pm.AutoPrefixModelForSequenceClassification.from_pretrained(
            bert_base, method=method, num_labels=3, pre_seq_len=4
        )
        for method in ("prefix", "prompt")
    }
    classifiers["prompt"].add_prefix("topic", num_labels=4, pre_seq_len=6)
    lm = pm.AutoPrefixModelForCausalLM.from_pretrained(llama_base, pre_seq_len=4)
    saves = {
        "own": (classifiers["prefix"], "default", "AutoModelForSequenceClassification"),
        "topic": (classifiers["prompt"], "topic", "AutoModelForSequenceClassification"),
        "lm": (lm, "default", "AutoModelForCausalLM"),
    }
    folders, expected, ids = {}, {}, torch.tensor(IDS)
    for name, (model, task, auto_class) in saves.items():
        randomised(model).save_prefix(task, tmp_path / name)
        folders[name] = (auto_class, tmp_path / name)
        with torch.no_grad():
            expected[name] = model(ids, prefix_names=[task] * len(ids)).logits
    found = logits_in_fresh_python(folders, tmp_path)
    for name, logits in expected.items():
        torch.testing.assert_close(found[name], logits, rtol=0, atol=1e-6, msg=name)


def test_run_folders_and_multitask_prefixes_load_with_trust_remote_code_alone(tmp_path):
    """What ``examples/run_multitask.py`` writes: the run folder (every task; its ``checkpoint-*`` folders are
    the same save) and each task alone under ``prefixes/<task>``."""
    from script_runs import load_example, script_args

    base = tmp_path / "base"
    torch.manual_seed(0)
    tf.BertModel(tiny_config("Bert", max_position_embeddings=64)).save_pretrained(base)
    tf.AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer").save_pretrained(base)
    run = tmp_path / "run"
    options = {"task_names": "rte,sst2", "data_dir": FIXTURES / "glue_data", "prefix": True, "pre_seq_len": 4}
    steps = {"do_train": True, "max_steps": 1, "learning_rate": 0.5, "per_device_train_batch_size": 4}
    load_example("run_multitask").main(script_args(base, run, **options, **steps))
    folders = {"run": run, "rte": run / "prefixes" / "rte", "sst2": run / "prefixes" / "sst2"}
    expected = {}
    for name, folder in folders.items():
        model = tf.AutoModelForSequenceClassification.from_pretrained(folder).eval()  # with prefix_models imported
        with torch.no_grad():
            expected[name] = model(torch.tensor(IDS)).logits
    auto_class = "AutoModelForSequenceClassification"
    found = logits_in_fresh_python({name: (auto_class, folder) for name, folder in folders.items()}, tmp_path)
    for name, logits in expected.items():
        torch.testing.assert_close(found[name], logits, rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(expected["rte"], expected["sst2"])  # two tasks, two prefixes


def test_class_by_name_refuses_a_name_it_cannot_make():
    assert class_by_name("BertPrefixForTokenClassification") is pm.BertPrefixForTokenClassification
    with pytest.raises(AttributeError, match="no class 'FalconPrefixForCausalLM'"):
        class_by_name("FalconPrefixForCausalLM")
