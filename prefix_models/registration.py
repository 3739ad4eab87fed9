"""Teach transformers' Auto classes the prefix model types by name, so ``import prefix_models`` builds no class.

transformers keeps its own model types in name tables (``CONFIG_MAPPING_NAMES``, ``MODEL_FOR_*_MAPPING_NAMES``:
model type -> class name) and imports a class only when a checkpoint asks for it, from the module it keeps for
that model type. The prefix model types join those tables (from ``named_class_index.py``), with this package as
their module: its ``__getattr__`` builds ``named_classes.py`` the first time a name is asked for. So after
``import prefix_models`` a saved prefix model loads with ``AutoConfig`` / ``AutoModelFor*.from_pretrained`` and
``pipeline(...)``, and the pipelines' supported-model checks see the names, without the import paying for the
classes. Classes made later (decoders accepted by capability) register themselves the eager way
(``auto.register_with_transformers``).
"""

from __future__ import annotations

import sys

from transformers.models.auto import configuration_auto, modeling_auto

from .named_class_index import AUTO_CLASSES, CONFIG_CLASSES


def register_by_name() -> None:
    """Add every named class to the Auto classes' name tables, resolved lazily through this package."""
    package = sys.modules[__package__]
    configs = configuration_auto.CONFIG_MAPPING
    for model_type, config_name in CONFIG_CLASSES.items():
        configuration_auto.CONFIG_MAPPING_NAMES.setdefault(model_type, config_name)
        configs._modules.setdefault(configuration_auto.model_type_to_module_name(model_type), package)
    for auto_name, classes in AUTO_CLASSES.items():
        mapping = getattr(modeling_auto, auto_name)._model_mapping
        for model_type, class_name in classes.items():
            mapping._model_mapping.setdefault(model_type, class_name)
            mapping._reverse_config_mapping.setdefault(CONFIG_CLASSES[model_type], model_type)
            mapping._modules.setdefault(configuration_auto.model_type_to_module_name(model_type), package)
