"""A saved prefix records which weights its base holds (``base_model_fingerprint``, ``checkpoints/fingerprint.py``)
and loads onto those weights only: from any folder (a copy, a rename, a re-save) and in any float dtype, but not
onto other weights of the same shape, which are refused in one line naming both bases, whichever way the base is
given, unless ``ignore_mismatched_base=True`` (``--ignore_mismatched_base`` in the scripts) says to load anyway."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import transformers as tf
from conftest import FIXTURES, randomised, tiny_config
from safetensors import safe_open
from script_runs import script_args
from tiny_families import decoder_config

import prefix_models as pm
import run_glue

IDS = torch.tensor([[5, 17, 42, 8, 23, 9], [6, 30, 11, 12, 40, 3]])
AUTO = pm.AutoPrefixModelForSequenceClassification
TASK = {"num_labels": 3, "pre_seq_len": 4}
REFUSED = r"trained on the base model .* ignore_mismatched_base=True"


def save_bert(path: Path, seed: int, **config) -> Path:
    torch.manual_seed(seed)
    tf.BertModel(tiny_config("Bert", **config)).save_pretrained(path)
    return path


def logits(model, name: str | None = None) -> torch.Tensor:
    names = None if name is None else [name] * len(IDS)
    with torch.no_grad():
        return model.eval()(IDS, prefix_names=names).logits


@pytest.fixture
def base(tmp_path) -> Path:
    return save_bert(tmp_path / "base", seed=0)


@pytest.fixture
def other(tmp_path) -> Path:
    """The base's config, other weights."""
    return save_bert(tmp_path / "other", seed=9)


@pytest.fixture
def trained(base, tmp_path):
    """A prefix model on ``base`` and its prefix saved both ways: ``save_pretrained`` and ``save_prefix``."""
    model = randomised(AUTO.from_pretrained(base, **TASK))
    model.save_pretrained(tmp_path / "prefix")
    model.save_prefix("default", tmp_path / "alone")
    return model, tmp_path / "prefix", tmp_path / "alone"


def fingerprint_of(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())["base_model_fingerprint"]


def recomputed(base: Path, recorded: dict) -> dict:
    """The docstring's algorithm, read from the base's safetensors file without prefix_models."""
    tensors = {}
    with safe_open(str(base / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
        for name in recorded["tensors"]:
            key = name if name in keys else name.split(".", 1)[1]  # a bare backbone's save
            flat = handle.get_tensor(key).reshape(-1)
            n, k = flat.numel(), min(16, flat.numel())
            values = [float(flat[((2 * i + 1) * n) // (2 * k)]) for i in range(k)]
            tensors[name] = {"shape": list(handle.get_tensor(key).shape), "values": values}
    return {"format": "prefix-models-sample-v1", "tensors": tensors}


def test_every_saved_prefix_records_the_fingerprint_of_its_base_weights(trained, base, tmp_path):
    model, prefix, alone = trained
    recorded = fingerprint_of(prefix)
    assert len(recorded["tensors"]) == 3 and all(name.startswith("bert.") for name in recorded["tensors"])
    assert recorded == recomputed(base, recorded)  # reproducible from the base's files alone
    assert fingerprint_of(alone) == recorded
    # Tasks loaded beside the model's own save with the model's fingerprint, not their own copy of it.
    model.load_prefix(alone, "twin")
    model.save_prefix("twin", tmp_path / "twin")
    assert fingerprint_of(tmp_path / "twin") == recorded
    assert "base_model_fingerprint" not in model.config.prefix_tasks["twin"]


@pytest.mark.parametrize("how", ["copy", "rename", "resave", "resave sharded"])
def test_the_same_weights_in_another_folder_are_the_same_base(trained, base, tmp_path, how):
    model, prefix, alone = trained
    elsewhere = tmp_path / "elsewhere"
    if how == "copy":
        shutil.copytree(base, elsewhere)
    elif how == "rename":
        base.rename(elsewhere)
    else:
        shards = {"max_shard_size": "20KB"} if how == "resave sharded" else {}
        tf.BertModel.from_pretrained(base).save_pretrained(elsewhere, **shards)
    expected = logits(model)
    for folder in (prefix, alone):
        loaded = AUTO.from_pretrained(folder, base_model_name_or_path=elsewhere)
        torch.testing.assert_close(logits(loaded), expected, rtol=0, atol=0)
    on_elsewhere = AUTO.from_pretrained(elsewhere, **TASK)
    on_elsewhere.load_prefix(prefix, "task")
    on_elsewhere.load_prefix(alone, "task_alone")
    torch.testing.assert_close(logits(on_elsewhere, "task"), expected, rtol=0, atol=0)
    torch.testing.assert_close(logits(on_elsewhere, "task_alone"), expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_dtype_cast_of_the_same_weights_is_the_same_base(trained, base, tmp_path, dtype):
    model, prefix, alone = trained
    cast = tmp_path / "cast"
    tf.BertModel.from_pretrained(base, dtype=dtype).save_pretrained(cast)
    AUTO.from_pretrained(prefix, base_model_name_or_path=cast)  # the cast's values, read in float32
    AUTO.from_pretrained(prefix, base_model_name_or_path=cast, dtype=dtype)
    AUTO.from_pretrained(alone, dtype=dtype)  # the float32 base, cast on load
    # A prefix trained on the cast loads onto the float32 base, and onto the other half-precision cast.
    on_cast = AUTO.from_pretrained(cast, dtype=dtype, **TASK)
    on_cast.save_prefix("default", tmp_path / "cast-prefix")
    model.load_prefix(tmp_path / "cast-prefix", "from_cast")
    other_dtype = torch.float16 if dtype == torch.bfloat16 else torch.bfloat16
    AUTO.from_pretrained(tmp_path / "cast-prefix", base_model_name_or_path=base, dtype=other_dtype)


def test_other_weights_of_the_same_shape_are_refused_in_one_line(trained, base, other):
    model, prefix, alone = trained
    loaders = {
        "named class": pm.BertPrefixForSequenceClassification.from_pretrained,
        "Auto class": AUTO.from_pretrained,
        "stock Auto class": tf.AutoModelForSequenceClassification.from_pretrained,
    }
    for name, load in loaders.items():
        for folder in (prefix, alone):
            with pytest.raises(ValueError, match=REFUSED) as refused:
                load(folder, base_model_name_or_path=str(other))
            message = str(refused.value)
            assert "\n" not in message, name
            assert repr(str(base)) in message and repr(str(other)) in message, name
    on_other = AUTO.from_pretrained(other, **TASK)
    with pytest.raises(ValueError, match=REFUSED) as refused:
        on_other.load_prefix(prefix, "task")
    assert repr(str(base)) in str(refused.value) and repr(str(other)) in str(refused.value)
    assert on_other.prefix_names == ["default"]  # nothing changed
    # The base's own folder overwritten with other weights: refused too, the same path on both sides.
    shutil.rmtree(base)
    shutil.copytree(other, base)
    with pytest.raises(ValueError, match=REFUSED):
        AUTO.from_pretrained(prefix)


def test_ignore_mismatched_base_loads_onto_other_weights_with_a_warning(trained, other, tmp_path, caplog):
    model, prefix, alone = trained
    with caplog.at_level(logging.WARNING, logger="prefix_models"):
        loaded = AUTO.from_pretrained(prefix, base_model_name_or_path=other, ignore_mismatched_base=True)
        stock = tf.AutoModelForSequenceClassification.from_pretrained(
            alone, base_model_name_or_path=str(other), ignore_mismatched_base=True
        )
        on_other = AUTO.from_pretrained(other, **TASK)
        on_other.load_prefix(prefix, "task", ignore_mismatched_base=True)
    anyway = [record for record in caplog.records if "loading it anyway" in record.getMessage()]
    assert len(anyway) == 3
    for model_on_other in (loaded, stock):
        torch.testing.assert_close(model_on_other.classifier.out_proj.weight, model.classifier.out_proj.weight)
        assert torch.equal(
            model_on_other.bert.embeddings.word_embeddings.weight, on_other.bert.embeddings.word_embeddings.weight
        )
    # A prefix re-saved from there points at the weights it now sits on, and reloads there without the flag.
    loaded.save_pretrained(tmp_path / "moved-on")
    assert fingerprint_of(tmp_path / "moved-on") == on_other.config.base_model_fingerprint
    AUTO.from_pretrained(tmp_path / "moved-on")


def test_a_folder_saved_before_fingerprints_loads_with_one_warning(trained, base, tmp_path, caplog):
    model, prefix, alone = trained
    for folder in (prefix, alone):
        config = json.loads((folder / "config.json").read_text())
        del config["base_model_fingerprint"]
        (folder / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING, logger="prefix_models"):
        for _ in range(2):
            torch.testing.assert_close(logits(AUTO.from_pretrained(prefix)), logits(model), rtol=0, atol=0)
        model.load_prefix(prefix, "again")
        model.load_prefix(alone, "alone")
    unchecked = [
        record.getMessage() for record in caplog.records if "records no base_model_fingerprint" in record.getMessage()
    ]
    assert len(unchecked) == 2  # one per folder, however often it loads
    assert all("\n" not in message for message in unchecked)
    # A re-save records the fingerprint of the base it loaded.
    AUTO.from_pretrained(prefix).save_pretrained(tmp_path / "resaved")
    assert fingerprint_of(tmp_path / "resaved") == AUTO.from_pretrained(base, **TASK).config.base_model_fingerprint


def test_the_scripts_refuse_another_base_unless_told(tmp_path):
    base = save_bert(tmp_path / "base", seed=0, max_position_embeddings=64)
    tokenizer = tf.AutoTokenizer.from_pretrained(FIXTURES / "tiny-bert-tokenizer")
    tokenizer.save_pretrained(base)
    rte = {"task_name": "rte", "data_dir": FIXTURES / "glue_data", "per_device_eval_batch_size": 8}
    run = tmp_path / "run"
    run_glue.main(
        script_args(
            base,
            run,
            **rte,
            prefix=True,
            pre_seq_len=4,
            do_train=True,
            max_steps=1,
            save_strategy="steps",
            save_steps=1,
        )
    )
    recorded = fingerprint_of(run)
    assert fingerprint_of(run / "checkpoint-1") == recorded  # the run folder and its checkpoints carry it
    # The base folder now holds other weights of the same shape.
    save_bert(base, seed=9, max_position_embeddings=64)
    with pytest.raises(ValueError, match=r"trained on the base model .*--ignore_mismatched_base"):
        run_glue.main(script_args(run, tmp_path / "eval", **rte, do_eval=True))
    results = run_glue.main(script_args(run, tmp_path / "eval", **rte, do_eval=True, ignore_mismatched_base=True))
    assert "eval_accuracy" in results


# A prefix trained on a GGUF base records the file's name (``base_model_gguf_file``); another copy of those weights,
# such as the GGUF dequantised into a safetensors folder (what vLLM serves), is the same base.
LLAMA_IDS = torch.tensor([[1, 5, 17, 42, 8, 23], [1, 6, 30, 11, 12, 40]])
GGUF = "tiny.Q.gguf"


def write_llama_gguf(folder: Path, seed: int) -> Path:
    """A 2-layer Llama in a GGUF file (float32 tensors, llama.cpp's names), written with the ``gguf`` package."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def tensor(*shape: int):
        return rng.normal(0, 0.2, shape).astype(np.float32)

    layers, hidden, heads, kv_heads, ffn, vocab = 2, 32, 4, 2, 64, 64
    kv = kv_heads * hidden // heads
    writer = gguf.GGUFWriter(str(folder / GGUF), "llama")
    writer.add_name("tiny")
    writer.add_context_length(64)
    writer.add_block_count(layers)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_tensor("token_embd.weight", tensor(vocab, hidden))
    writer.add_tensor("output_norm.weight", 1 + tensor(hidden))
    shapes = {
        "attn_q": (hidden, hidden),
        "attn_k": (kv, hidden),
        "attn_v": (kv, hidden),
        "attn_output": (hidden, hidden),
        "ffn_gate": (ffn, hidden),
        "ffn_up": (ffn, hidden),
        "ffn_down": (hidden, ffn),
    }
    for layer in range(layers):
        for name, shape in shapes.items():
            writer.add_tensor(f"blk.{layer}.{name}.weight", tensor(*shape))
        for norm in ("attn_norm", "ffn_norm"):
            writer.add_tensor(f"blk.{layer}.{norm}.weight", 1 + tensor(hidden))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return folder


def dequantised(gguf_folder: Path, folder: Path) -> Path:
    """The GGUF base as a plain safetensors folder, saved the way benchmarks/serving.py --prepare does."""
    model = tf.AutoModelForCausalLM.from_pretrained(gguf_folder, gguf_file=GGUF)
    model.hf_quantizer, model.is_quantized = None, False  # float32 tensors already: nothing is quantized
    model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(folder)
    return folder


def lm_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(LLAMA_IDS).logits


def test_a_prefix_trained_on_a_gguf_base_loads_onto_its_dequantised_copy(tmp_path):
    on_gguf = write_llama_gguf(tmp_path / "gguf", seed=0)
    copy = dequantised(on_gguf, tmp_path / "dequantised")
    model = randomised(pm.AutoPrefixModelForCausalLM.from_pretrained(on_gguf, gguf_file=GGUF, pre_seq_len=3))
    model.save_pretrained(tmp_path / "prefix")
    model.save_prefix("default", tmp_path / "alone")
    expected = lm_logits(model)
    shutil.copytree(on_gguf, tmp_path / "gguf-copy")
    for folder in (tmp_path / "prefix", tmp_path / "alone"):
        assert json.loads((folder / "config.json").read_text())["base_model_gguf_file"] == GGUF
        # The GGUF base it names, as before; a copy of that folder (it holds the file) reads the file too.
        for base in (None, tmp_path / "gguf-copy"):
            loaded = pm.AutoPrefixModelForCausalLM.from_pretrained(folder, base_model_name_or_path=base)
            assert loaded.config.base_model_gguf_file == GGUF
            torch.testing.assert_close(lm_logits(loaded), expected, rtol=0, atol=0)
        # The safetensors folder holds no such file: its own config and weights, no gguf_file=None needed.
        loaded = pm.AutoPrefixModelForCausalLM.from_pretrained(folder, base_model_name_or_path=copy)
        torch.testing.assert_close(lm_logits(loaded), expected, rtol=0, atol=0)
        # Saved from there, it points at the safetensors folder alone, and reloads with no argument.
        loaded.save_pretrained(tmp_path / "moved")
        moved = json.loads((tmp_path / "moved" / "config.json").read_text())
        assert moved["base_model_name_or_path"] == str(copy) and moved["base_model_gguf_file"] is None
        torch.testing.assert_close(
            lm_logits(pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "moved")), expected
        )
    # Other weights in a safetensors folder: still refused by the fingerprint, naming both bases.
    other = dequantised(write_llama_gguf(tmp_path / "other-gguf", seed=9), tmp_path / "other")
    with pytest.raises(ValueError, match=REFUSED) as refused:
        pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "prefix", base_model_name_or_path=other)
    assert "\n" not in str(refused.value) and repr(str(other)) in str(refused.value)
    # A folder with neither the recorded GGUF file nor a config.json: one line saying what is missing.
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(on_gguf / GGUF, renamed / "other-name.gguf")
    with pytest.raises(ValueError, match=r"holds neither that file nor a config\.json") as refused:
        pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "prefix", base_model_name_or_path=renamed)
    assert "\n" not in str(refused.value) and repr(GGUF) in str(refused.value)


def test_a_recorded_gguf_file_the_given_base_lacks_is_not_applied(tmp_path):
    """The same rule without the gguf package: a prefix-only folder whose config names a GGUF file, put on a plain
    safetensors folder of the same weights."""
    torch.manual_seed(0)
    tf.LlamaForCausalLM(decoder_config("llama")).save_pretrained(tmp_path / "base")
    model = randomised(pm.AutoPrefixModelForCausalLM.from_pretrained(tmp_path / "base", pre_seq_len=3))
    model.save_pretrained(tmp_path / "prefix")
    config = json.loads((tmp_path / "prefix" / "config.json").read_text())
    config.update(base_model_name_or_path=str(tmp_path / "gguf"), base_model_gguf_file=GGUF)
    (tmp_path / "prefix" / "config.json").write_text(json.dumps(config))
    loaded = pm.AutoPrefixModelForCausalLM.from_pretrained(
        tmp_path / "prefix", base_model_name_or_path=tmp_path / "base"
    )
    assert loaded.config.base_model_gguf_file is None
    torch.testing.assert_close(lm_logits(loaded), lm_logits(model), rtol=0, atol=0)
