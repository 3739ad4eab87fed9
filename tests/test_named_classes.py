"""The named classes are class statements in source, generated from the family tables, with shallow MROs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import prefix_models
from prefix_models import families, named_classes
from prefix_models.auto import AUTO_PREFIX_CLASSES


def test_named_classes_file_is_what_the_tables_generate():
    with open(families.NAMED_CLASSES_FILE, encoding="utf-8") as handle:
        checked_in = handle.read()
    assert checked_in == families.named_classes_source(), (
        "prefix_models/named_classes.py is out of date with the tables in families.py: run "
        "`python -m prefix_models generate` and commit the result"
    )


def _public_definitions() -> list[tuple[str, object]]:
    """Every public class and function the package's modules define (not those they import)."""
    found = []
    for info in pkgutil.walk_packages(prefix_models.__path__, "prefix_models."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", None) == info.name:
                found.append((f"{info.name}.{name}", obj))
    return found


DEFINITIONS = _public_definitions()


def test_the_named_classes_are_among_the_public_definitions():
    names = {name for name, _ in DEFINITIONS}
    assert "prefix_models.named_classes.BertPrefixForSequenceClassification" in names
    assert "prefix_models.named_classes.T5PromptConfig" in names
    assert len(names) > 250


@pytest.mark.parametrize("name, obj", DEFINITIONS, ids=[name for name, _ in DEFINITIONS])
def test_every_public_class_and_function_has_a_source_definition(name, obj):
    source = inspect.getsource(obj)
    keyword = "class" if inspect.isclass(obj) else "def"
    assert re.search(rf"^\s*{keyword} {obj.__name__}\b", source, re.MULTILINE), f"{name}: {source[:200]}"


def _ours(cls: type) -> list[type]:
    return [base for base in cls.__mro__ if base.__module__.startswith("prefix_models")]


def test_no_concrete_class_has_more_than_three_of_ours_in_its_mro():
    concrete = [getattr(named_classes, name) for name in named_classes.__all__]
    assert len(concrete) > 100
    too_deep = {cls.__name__: [base.__name__ for base in _ours(cls)] for cls in concrete if len(_ours(cls)) > 3}
    assert not too_deep, too_deep


def test_a_decoder_accepted_by_capability_has_a_shallow_mro_too():
    model_class = prefix_models.AutoPrefixModelForCausalLM.model_class("qwen3", "prompt")
    assert model_class.__name__ == "Qwen3PromptForCausalLM"
    assert len(_ours(model_class)) <= 3
    assert model_class.config_class.prefix_method == "prompt"


def test_each_auto_class_finds_the_named_classes_of_its_task_by_subclass():
    for auto in AUTO_PREFIX_CLASSES:
        classes = prefix_models.auto._classes_for(auto._task_class)
        assert classes, auto.__name__
        for (model_type, method), model_class in classes.items():
            assert issubclass(model_class, auto._task_class)
            assert model_class.config_class.base_model_type == model_type
            assert model_class.config_class.prefix_method == method
        named = [getattr(named_classes, name) for name in named_classes.__all__]
        assert {c for c in named if issubclass(c, auto._task_class)} <= set(classes.values())


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_make_prefix_config_class_returns_the_named_config_of_every_family(method):
    for family in (*families.ENCODER_FAMILIES, *families.DECODER_FAMILIES, *families.SEQ2SEQ_FAMILIES):
        named = getattr(named_classes, f"{family.name}{method.capitalize()}Config")
        assert prefix_models.make_prefix_config_class(family.config, method) is named


def test_make_prefix_config_class_makes_a_backbone_without_a_named_config_once():
    import transformers

    prompt = prefix_models.make_prefix_config_class(transformers.Qwen3Config, "prompt")
    prefix = prefix_models.make_prefix_config_class(transformers.Qwen3Config)
    assert prompt.__name__ == "Qwen3PromptConfig" and prompt().prefix_method == "prompt"
    assert prompt.__mro__[1] is prefix and prefix.model_type == "qwen3_prefix"
    assert prefix_models.make_prefix_config_class(transformers.Qwen3Config, "prompt") is prompt
