"""The base model's fingerprint: which backbone weights a prefix was trained on, recorded in every saved
prefix's ``config.json`` (``base_model_fingerprint``) and checked wherever the prefix is put on a base.

A prefix fits the weights it was trained with, not a path: a copy, a rename, a re-save or a dtype cast of
those weights carries the same fingerprint; other weights of the same shape do not. This module imports
only torch and the standard library, so code that never imports ``prefix_models`` (the vLLM serving
plugin) can copy it, or recompute the algorithm below from a base's safetensors files.

The fingerprint (algorithm ``FORMAT``)::

    {"format": "prefix-models-sample-v1",
     "tensors": {NAME: {"shape": [...], "values": [v_0, ..., v_{k-1}]}, ...}}

* ``NAME`` is a state-dict key of the prefix model (``bert.embeddings.word_embeddings.weight``,
  ``model.layers.1.mlp.down_proj.weight``). In a base checkpoint the tensor is the one stored under ``NAME``
  or, if there is none, under ``NAME`` without its first dotted component (a bare backbone's save, e.g.
  ``BertModel``'s ``embeddings.word_embeddings.weight``).
* Which tensors (the writer's choice; a checker reads the names): of the backbone's floating-point
  tensors with two or more dimensions that were loaded from the base checkpoint, in state-dict order, the
  first, the middle (index ``len // 2``) and the last.
* ``values``: the tensor flattened in row-major order, ``n`` elements, ``k = min(16, n)`` samples; sample
  ``i`` is element ``((2 * i + 1) * n) // (2 * k)`` (the middle of the ``i``-th of ``k`` equal runs),
  as a float.
* Two fingerprints match when, for every tensor named in the saved one, the shapes are equal and every
  pair of values satisfies ``|a - b| <= RTOL * max(|a|, |b|) + ATOL``, with ``RTOL = 2**-7`` (bfloat16's
  eps) and ``ATOL = 2**-24`` (float16's subnormal step): the rounding of a cast to bfloat16 or float16 (and
  back: a float32 model may hold a bfloat16 checkpoint's values) passes, other weights do not. A tensor the
  checker cannot read as floats (quantised, offloaded) is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

FORMAT = "prefix-models-sample-v1"
SAMPLES = 16
RTOL = 2**-7
ATOL = 2**-24


def sample_positions(numel: int) -> list[int]:
    """The flat indices sampled from a tensor of ``numel`` elements."""
    k = min(SAMPLES, numel)
    return [((2 * i + 1) * numel) // (2 * k) for i in range(k)]


def tensor_entry(tensor: torch.Tensor) -> dict[str, Any] | None:
    """``{"shape", "dtype", "values"}`` of one tensor; None where its values cannot be read as floats."""
    if not tensor.is_floating_point() or tensor.device.type == "meta" or tensor.numel() == 0:
        return None
    flat = tensor.detach().reshape(-1)
    index = torch.tensor(sample_positions(flat.numel()), device=flat.device)
    return {"shape": list(tensor.shape), "values": [float(value) for value in flat[index].tolist()]}


def choose_tensors(state: Mapping[str, torch.Tensor], candidates: Iterable[str]) -> list[str]:
    """The first, middle and last of ``candidates`` (backbone keys in state-dict order) that hold a
    floating-point tensor of two or more dimensions."""
    usable = [name for name in candidates if state[name].is_floating_point() and state[name].dim() >= 2]
    if not usable:
        return []
    return list(dict.fromkeys([usable[0], usable[len(usable) // 2], usable[-1]]))


def compute_fingerprint(state: Mapping[str, torch.Tensor], names: Iterable[str]) -> dict[str, Any] | None:
    """The fingerprint of the tensors ``names`` in ``state`` (a model's state dict); None if none is readable."""
    tensors = {name: entry for name in names if name in state and (entry := tensor_entry(state[name])) is not None}
    return {"format": FORMAT, "tensors": tensors} if tensors else None


def fingerprint_difference(saved: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> str | None:
    """Why the weights in ``state`` are not those ``saved`` records (a short phrase), or None if they are.

    Tensors ``state`` cannot read as floats are skipped; a saved fingerprint of another format is not
    compared (None)."""
    if saved.get("format") != FORMAT:
        return None
    for name, entry in saved.get("tensors", {}).items():
        if name not in state:
            return f"it has no tensor {name}"
        current = tensor_entry(state[name])
        if current is None:
            continue
        if current["shape"] != entry["shape"]:
            return f"{name} has shape {current['shape']}, not {entry['shape']}"
        for position, (a, b) in enumerate(zip(entry["values"], current["values"], strict=True)):
            if abs(a - b) > RTOL * max(abs(a), abs(b)) + ATOL:
                return f"{name}, sample {position}: {b:.6g} where the prefix's base had {a:.6g}"
    return None
