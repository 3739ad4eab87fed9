"""Loading a saved folder without our import: the ``auto_map`` a save writes and the classes it names.

transformers loads a folder whose ``config.json`` has an ``auto_map`` by importing the module named there
from the folder itself, when the caller passes ``trust_remote_code=True``. Every save writes
``modeling_prefix.py`` (this package's file of that name, which only imports ``prefix_models``) beside the
weights, and an ``auto_map`` that points the stock ``AutoConfig`` and the model's ``AutoModelFor*`` at its
classes; :func:`class_by_name` finds them again in the process that loads the folder.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import transformers
from transformers.models.auto import configuration_auto, modeling_auto

REMOTE_CODE_FILE = "modeling_prefix.py"
_TEMPLATE = os.path.join(os.path.dirname(__file__), REMOTE_CODE_FILE)
_MODULE = REMOTE_CODE_FILE.removesuffix(".py")
_METHOD_WORDS = ("Prefix", "Prompt")


def auto_map(model: Any) -> dict[str, str]:
    """``{"AutoConfig": "modeling_prefix.BertPrefixConfig", "AutoModelFor...": "modeling_prefix.<class>"}``: the
    stock Auto classes that know the model's class after ``import prefix_models``."""
    from ..auto import AUTO_PREFIX_CLASSES

    entries = {"AutoConfig": f"{_MODULE}.{type(model.config).__name__}"}
    for auto in AUTO_PREFIX_CLASSES:
        if isinstance(model, auto._task_class):
            entries[auto._stock_auto.__name__] = f"{_MODULE}.{type(model).__name__}"
    return entries


def write_remote_code(save_directory: str | os.PathLike) -> None:
    """Copy ``modeling_prefix.py`` into ``save_directory`` (made if missing), the module ``auto_map`` names."""
    os.makedirs(save_directory, exist_ok=True)
    shutil.copyfile(_TEMPLATE, os.path.join(save_directory, REMOTE_CODE_FILE))


def class_by_name(name: str) -> type:
    """A prefix-models config or model class by its name, as ``auto_map`` gives it: a named class
    (``named_classes.py``), or one of a decoder accepted by capability (``Qwen3PrefixForCausalLM``,
    ``Qwen3PrefixConfig``), which is made here as ``AutoPrefixModelForCausalLM`` would make it."""
    from .. import families, named_classes
    from ..auto import register_with_transformers
    from ..configuration import make_prefix_config_class

    found = getattr(named_classes, name, None) or families.CAPABILITY_CLASSES.get(name)
    if isinstance(found, type):
        return found
    word = next((w for w in _METHOD_WORDS if w in name), None)
    stock_name = name.replace(word, "", 1) if word else ""
    if stock_name.endswith("Config"):
        names = configuration_auto.CONFIG_MAPPING_NAMES
    else:
        names = modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    model_type = next((key for key, value in names.items() if value == stock_name), None)
    family = families.decoder_family_by_capability(model_type) if model_type else None
    if family is None:
        from .. import __version__

        raise AttributeError(
            f"prefix_models {__version__} has no class {name!r}: the folder was saved by a version of "
            "prefix-models with other classes; install that version"
        )
    if stock_name.endswith("Config"):
        return make_prefix_config_class(getattr(transformers, stock_name), word.lower())
    families.define_decoder_classes(family)
    register_with_transformers()
    return families.CAPABILITY_CLASSES[name]
