"""Which base weights a prefix was trained on, checked against the weights the engine serves.

Every prefix-models save records ``base_model_fingerprint`` in its ``config.json``: a few values sampled from three
of the base's weight tensors (format ``prefix-models-sample-v1``; prefix-models' ``checkpoints/fingerprint.py``
defines it). This module recomputes those samples from the engine's safetensors files, so a prefix trained on one
base is never served on another with the same shapes. The rules restated: a tensor ``NAME`` is stored under
``NAME`` or, failing that, ``NAME`` less its first dotted component; sample ``i`` of ``k = min(16, n)`` is flat
element ``((2i + 1) n) // (2k)``; two values agree when ``|a - b| <= 2**-7 max(|a|, |b|) + 2**-24`` (the rounding
of a bfloat16 or float16 cast passes, other weights do not).
"""

from __future__ import annotations

import json
import os
from typing import Any

from safetensors import safe_open

FORMAT = "prefix-models-sample-v1"
SAMPLES = 16
RTOL = 2**-7
ATOL = 2**-24


def _sample_positions(numel: int) -> list[int]:
    count = min(SAMPLES, numel)
    return [((2 * i + 1) * numel) // (2 * count) for i in range(count)]


def _safetensors_index(base: str) -> dict[str, str]:
    """Tensor name -> the file in ``base`` that holds it."""
    index_file = os.path.join(base, "model.safetensors.index.json")
    if os.path.isfile(index_file):
        with open(index_file, encoding="utf-8") as handle:
            return {name: os.path.join(base, file) for name, file in json.load(handle)["weight_map"].items()}
    names: dict[str, str] = {}
    for file in sorted(os.listdir(base)):
        if file.endswith(".safetensors"):
            with safe_open(os.path.join(base, file), framework="pt") as handle:
                names.update(dict.fromkeys(handle.keys(), os.path.join(base, file)))
    return names


def fingerprint_difference(saved: dict[str, Any], base: str) -> str | None:
    """Why the safetensors weights in the folder ``base`` are not those ``saved`` records (a short phrase), or
    None where they are. A fingerprint of another format, or a base without safetensors files, is not compared
    (None): the caller says so."""
    if saved.get("format") != FORMAT:
        return None
    stored = _safetensors_index(base)
    for name, entry in saved.get("tensors", {}).items():
        key = name if name in stored else name.split(".", 1)[-1]
        if key not in stored:
            return f"it has no tensor {name}"
        with safe_open(stored[key], framework="pt") as handle:
            tensor = handle.get_tensor(key)
        if not tensor.is_floating_point():
            continue  # quantised: not readable as floats, as the writer skips such tensors
        if list(tensor.shape) != list(entry["shape"]):
            return f"{name} has shape {list(tensor.shape)}, not {entry['shape']}"
        flat = tensor.reshape(-1)
        values = [float(flat[position]) for position in _sample_positions(flat.numel())]
        for position, (a, b) in enumerate(zip(entry["values"], values, strict=True)):
            if abs(a - b) > RTOL * max(abs(a), abs(b)) + ATOL:
                return f"{name}, sample {position}: {b:.6g} where the prefix's base had {a:.6g}"
    return None


def has_safetensors(base: str) -> bool:
    return os.path.isdir(base) and any(file.endswith(".safetensors") for file in os.listdir(base))
