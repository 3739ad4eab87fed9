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
