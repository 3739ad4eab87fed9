"""``import prefix_models`` and the scripts' ``--help`` load no model stack, and the lazy
package still gives every public name and teaches the stock Auto classes every named class.

The timings are in ``benchmarks/import_time.py``; these tests pin the structure that makes them fast: which
modules a fresh interpreter has loaded after the import or the ``--help``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from transformers import AutoModelForSequenceClassification

import prefix_models
from prefix_models import families, named_class_index, named_classes

ROOT = Path(__file__).resolve().parents[1]
# What the import or a --help must leave unloaded: the model classes (ours and transformers' model stack), the
# Trainer, and the data and metrics libraries the scripts use once they run.
DEFERRED = (
    "prefix_models.named_classes",
    "prefix_models.auto",
    "prefix_models.modeling_utils",
    "transformers.modeling_utils",
    "transformers.trainer",
    "datasets",
    "sklearn",
    "scipy",
    "seqeval",
)


def fresh_python(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=cwd
    )


def loaded_after(code: str) -> set[str]:
    """Which of ``DEFERRED`` a fresh interpreter has loaded after ``code``."""
    result = fresh_python(f"{code}\nimport json, sys\nprint(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))")
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_loads_no_model_stack():
    assert loaded_after("import prefix_models") == set()


@pytest.mark.parametrize(
    "script",
    [
        "run_glue.py",
        "run_ner.py",
        "examples/run_qa.py",
        "examples/run_clm.py",
        "examples/run_seq2seq.py",
        "examples/run_multitask.py",
    ],
)
def test_help_loads_no_model_stack(script):
    # peft hidden, as a plain install has it: where installed, transformers' TrainingArguments imports peft, which
    # imports transformers' model stack whatever the script does.
    code = f"""
        import runpy, sys
        sys.modules["peft"] = None
        sys.argv = [{script!r}, "--help"]
        try:
            runpy.run_path({script!r}, run_name="__main__")
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
    """
    assert loaded_after(textwrap.dedent(code)) == set()


def test_every_public_name_resolves_and_is_listed():
    assert len(prefix_models.__all__) == len(set(prefix_models.__all__))
    assert set(named_classes.__all__) <= set(prefix_models.__all__)
    for name in prefix_models.__all__:
        assert getattr(prefix_models, name) is not None, name
    assert set(prefix_models.__all__) <= set(dir(prefix_models))
    namespace: dict = {}
    exec("from prefix_models import *", namespace)
    assert set(prefix_models.__all__) <= set(namespace)
    assert prefix_models.BertPrefixForSequenceClassification is named_classes.BertPrefixForSequenceClassification
    with pytest.raises(AttributeError):
        prefix_models.NoSuchName  # noqa: B018


def test_named_class_index_is_what_the_tables_generate():
    with open(families.NAMED_CLASS_INDEX_FILE, encoding="utf-8") as handle:
        assert handle.read() == families.named_class_index_source(), (
            "prefix_models/named_class_index.py is out of date with the tables in families.py: run "
            "`python -m prefix_models generate` and commit the result"
        )
    indexed = set(named_class_index.CONFIG_CLASSES.values()) | {
        name for classes in named_class_index.AUTO_CLASSES.values() for name in classes.values()
    }
    assert indexed == set(named_classes.__all__)


def test_the_stock_auto_classes_resolve_every_named_class_after_the_import_alone():
    """Only ``import prefix_models``: every model type resolves, through the name tables, to its named class."""
    result = fresh_python(
        """
        import sys
        import prefix_models
        from transformers import CONFIG_MAPPING
        from transformers.models.auto import modeling_auto
        from prefix_models.named_class_index import AUTO_CLASSES, CONFIG_CLASSES

        assert "prefix_models.named_classes" not in sys.modules
        for model_type, config_name in CONFIG_CLASSES.items():
            assert CONFIG_MAPPING[model_type] is getattr(prefix_models, config_name), model_type
        for auto_name, classes in AUTO_CLASSES.items():
            auto = getattr(modeling_auto, auto_name)
            for model_type, class_name in classes.items():
                model_class = getattr(prefix_models, class_name)
                assert auto._model_mapping[model_class.config_class] is model_class, (auto_name, class_name)
                assert model_class.config_class in auto._model_mapping
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "ok"


def test_a_saved_prefix_loads_with_the_stock_auto_class_and_pipeline_after_the_import_alone(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = prefix_models.BertPrefixForSequenceClassification(
        tiny_config("Bert", pre_seq_len=3, num_labels=2, id2label={0: "neg", 1: "pos"})
    ).eval()
    model.save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    ids = torch.tensor([[2, 5, 7, 3]])
    with torch.no_grad():
        expected = model(ids).logits
    result = fresh_python(
        f"""
        import sys, torch
        import prefix_models
        from transformers import AutoModelForSequenceClassification, pipeline

        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "saved")!r}).eval()
        with torch.no_grad():
            torch.save(model(torch.tensor({ids.tolist()})).logits, {str(tmp_path / "logits.pt")!r})
        labels = {{p["label"] for p in pipeline("text-classification", model={str(tmp_path / "saved")!r})(["a b"])}}
        assert labels <= {{"neg", "pos"}}, labels
        print(type(model).__name__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "BertPrefixForSequenceClassification"
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, rtol=0, atol=1e-6)
    assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")) is type(model)
