"""What a save writes so that the folder loads without our import: ``config.json``'s ``auto_map`` and the
``modeling_prefix.py`` it names.

transformers loads a folder whose ``config.json`` has an ``auto_map`` by importing the module named there
from the folder itself, when the caller passes ``trust_remote_code=True``. Every save writes
``modeling_prefix.py`` (this package's file of that name, which only imports ``prefix_models``) beside the
weights, and an ``auto_map`` that points the stock ``AutoConfig`` and the model's ``AutoModelFor*`` at its
classes; ``remote_code.class_by_name`` finds them again in the process that loads the folder.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

REMOTE_CODE_FILE = "modeling_prefix.py"
_TEMPLATE = os.path.join(os.path.dirname(__file__), REMOTE_CODE_FILE)
_MODULE = REMOTE_CODE_FILE.removesuffix(".py")


def auto_map(model: Any) -> dict[str, str]:
    """``{"AutoConfig": "modeling_prefix.BertPrefixConfig", "AutoModelFor...": "modeling_prefix.<class>"}``: the
    stock Auto class that builds the model's class after ``import prefix_models`` (its ``stock_auto_class``)."""
    entries = {"AutoConfig": f"{_MODULE}.{type(model.config).__name__}"}
    if model.stock_auto_class is not None:
        entries[model.stock_auto_class.__name__] = f"{_MODULE}.{type(model).__name__}"
    return entries


def write_remote_code(save_directory: str | os.PathLike) -> None:
    """Copy ``modeling_prefix.py`` into ``save_directory`` (made if missing), the module ``auto_map`` names."""
    os.makedirs(save_directory, exist_ok=True)
    shutil.copyfile(_TEMPLATE, os.path.join(save_directory, REMOTE_CODE_FILE))
