"""Lazy package attributes: a package's public names resolved from their modules the first time they are used.

transformers builds its top level the same way, so ``import prefix_models`` (and a script's ``--help``, which
needs only the flags) does not pay for the model classes, datasets or metrics libraries it never touches.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any], submodules: bool = False
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose public ``exports`` map each name to the module
    (relative to ``package``) defining it; a resolved name is cached in ``namespace`` (the package's globals).
    With ``submodules``, other public attributes are looked up as submodules (``prefix_models.families``)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            namespace[name] = value  # once resolved, a plain module attribute
            return value
        if submodules and not name.startswith("_"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
