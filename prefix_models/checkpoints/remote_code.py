"""The classes a saved folder's ``modeling_prefix.py`` asks for, in the process that loads it with
``trust_remote_code=True`` (``remote_files.py`` writes the folder's side: its ``auto_map`` and that module).

Nothing in the package imports this module: saved folders do, by this path, so it stays here.
"""

from __future__ import annotations

import transformers
from transformers.models.auto import configuration_auto, modeling_auto

from .. import __version__, families, named_classes
from ..auto import register_with_transformers
from ..configuration import make_prefix_config_class

_METHOD_WORDS = ("Prefix", "Prompt")


def class_by_name(name: str) -> type:
    """A prefix-models config or model class by its name, as ``auto_map`` gives it: a named class
    (``named_classes.py``), or one of a decoder accepted by capability (``Qwen3PrefixForCausalLM``,
    ``Qwen3PrefixConfig``), which is made here as ``AutoPrefixModelForCausalLM`` would make it."""
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
        raise AttributeError(
            f"prefix_models {__version__} has no class {name!r}: the folder was saved by a version of "
            "prefix-models with other classes; install that version"
        )
    if stock_name.endswith("Config"):
        return make_prefix_config_class(getattr(transformers, stock_name), word.lower())
    families.define_decoder_classes(family)
    register_with_transformers()
    return families.CAPABILITY_CLASSES[name]
