"""The trainable parameters of prefix tuning, and the per-layer keys and values they become.

``PrefixEncoder`` produces, for each of ``pre_seq_len`` virtual tokens, a key and a value for every
prefixed layer: a row of width ``2 * num_layers * kv_width``. It is either a plain table or, with
``prefix_projection``, a small table passed through a Linear -> Tanh -> Linear reparameterisation
(which trains more stably); the MLP can be folded into a plain table after training with
:meth:`PrefixEncoder.merge_projection`. :func:`prefix_key_values` turns its output into, for each
layer, keys and values ``(batch, kv_heads, pre_seq_len, head_dim)``: what a model's ``get_prompt``
returns and what the attention layers put in front of their own (``injection.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedConfig

from ...configuration import kv_geometry

PrefixKeyValues = tuple[tuple[torch.Tensor, torch.Tensor], ...]


class PrefixEncoder(nn.Module):
    """Map virtual-token positions ``0..pre_seq_len-1`` to per-layer keys and values.

    Output: ``(pre_seq_len, 2 * num_layers * num_kv_heads * head_dim)``, laid out as
    ``[layer][key|value][head][head_dim]`` (see :func:`prefix_key_values`).
    """

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        num_layers, num_kv_heads, head_dim = kv_geometry(config)
        self.pre_seq_len = config.pre_seq_len
        self.out_width = 2 * num_layers * num_kv_heads * head_dim
        self.prefix_projection = bool(config.prefix_projection)
        if self.prefix_projection:
            self.embedding = nn.Embedding(config.pre_seq_len, config.hidden_size)
            self.trans = nn.Sequential(
                nn.Linear(config.hidden_size, config.prefix_hidden_size),
                nn.Tanh(),
                nn.Linear(config.prefix_hidden_size, self.out_width),
            )
        else:
            self.embedding = nn.Embedding(config.pre_seq_len, self.out_width)

    def forward(self) -> torch.Tensor:
        table = self.embedding.weight
        return self.trans(table) if self.prefix_projection else table

    @torch.no_grad()
    def merge_projection(self) -> None:
        """Replace the reparameterisation MLP by the table it computes (same outputs, no MLP).

        Inference then skips the MLP and checkpoints shrink to ``pre_seq_len x out_width``.
        """
        if not self.prefix_projection:
            return
        table = self.forward().detach().clone()
        merged = nn.Embedding(self.pre_seq_len, self.out_width, device=table.device, dtype=table.dtype)
        merged.weight.copy_(table)
        merged.weight.requires_grad_(self.embedding.weight.requires_grad)
        self.embedding = merged
        del self.trans
        self.prefix_projection = False


def prefix_key_values(
    prefix: torch.Tensor, batch_size: int, config: PreTrainedConfig, dropout: nn.Module
) -> PrefixKeyValues:
    """Per-layer ``(key, value)``, each ``(batch, kv_heads, pre_seq_len, head_dim)``, after ``dropout``.

    ``prefix`` is the ``(pre_seq_len, 2 * layers * kv_heads * head_dim)`` encoder output (or one per row,
    ``(batch, pre_seq_len, width)``). Dropout
    runs on the batch-expanded prefix, so each example sees its own dropout mask.
    """
    _, num_kv_heads, head_dim = kv_geometry(config)
    # The layer count is the prefix's own: a routed task may sit on other layers than the model's config
    # (prefix_layers); the key/value geometry is the backbone's either way.
    num_layers = prefix.shape[-1] // (2 * num_kv_heads * head_dim)
    pre_seq_len = prefix.shape[-2]
    # One prefix for every row, or (batch, P, width): each row its own (named prefixes, routed per example).
    kv = dropout(prefix if prefix.dim() == 3 else prefix.unsqueeze(0).expand(batch_size, -1, -1))
    # (batch, P, 2L, heads, head_dim) -> (2L, batch, heads, P, head_dim): entry 2i is layer i's keys.
    kv = kv.view(batch_size, pre_seq_len, 2 * num_layers, num_kv_heads, head_dim).permute(2, 0, 3, 1, 4)
    return tuple((kv[2 * layer], kv[2 * layer + 1]) for layer in range(num_layers))
