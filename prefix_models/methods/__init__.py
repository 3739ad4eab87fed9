"""The tuning methods, by the name ``config.prefix_method`` gives them: ``"prefix"`` (``prefix_tuning/``)
and ``"prompt"`` (``prompt_tuning/``), both components of the shape in ``base.py``."""

from __future__ import annotations

from ..errors import InputError
from .base import Prepared, TuningMethod
from .prefix_tuning import PrefixTuning
from .prompt_tuning import PromptTuning

METHODS: dict[str, TuningMethod] = {method.name: method for method in (PrefixTuning(), PromptTuning())}

__all__ = ["METHODS", "Prepared", "PrefixTuning", "PromptTuning", "TuningMethod", "tuning_method"]


def tuning_method(name: str) -> TuningMethod:
    """The method component a config's ``prefix_method`` names."""
    if name not in METHODS:
        raise InputError(f"prefix_method must be one of {tuple(METHODS)}, got {name!r}")
    return METHODS[name]
