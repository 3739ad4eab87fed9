"""The reference the attention-level route must equal: the prefix as the backbone's attention cache.

A stock backbone fed the prefix keys/values as a ``DynamicCache`` (real positions passed explicitly, the
mask extended by the virtual tokens' columns) computes what a prefix model computes. Nothing in the
package uses this route; the tests and ``benchmarks/injection.py`` keep it as the independent reference.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedConfig

from prefix_models.methods.prefix_tuning.encoder import PrefixKeyValues, prefix_key_values


class FrozenPrefixCache(DynamicCache):
    """A cache that holds only the prefix: ``update`` returns prefix + new keys/values and stores nothing, so
    a layer run twice (gradient checkpointing replays layers in the backward pass) sees the prefix alone again
    rather than the real tokens appended to it."""

    def __init__(self) -> None:
        super().__init__()
        self._frozen = False

    def freeze(self) -> FrozenPrefixCache:
        self._frozen = True
        return self

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        if not self._frozen:
            return super().update(key_states, value_states, layer_idx, *args, **kwargs)
        layer = self.layers[layer_idx]
        return torch.cat([layer.keys, key_states], dim=-2), torch.cat([layer.values, value_states], dim=-2)


def prefix_cache_from(key_values: PrefixKeyValues) -> FrozenPrefixCache:
    """The per-layer prefix keys/values (``get_prompt``'s) in a frozen cache."""
    cache = FrozenPrefixCache()
    for layer, (key, value) in enumerate(key_values):
        cache.update(key, value, layer)
    return cache.freeze()


def prefix_cache(prefix: torch.Tensor, batch_size: int, config: PreTrainedConfig, dropout: nn.Module) -> DynamicCache:
    """``prefix_key_values`` of a ``PrefixEncoder`` output, in a frozen cache."""
    return prefix_cache_from(prefix_key_values(prefix, batch_size, config, dropout))
