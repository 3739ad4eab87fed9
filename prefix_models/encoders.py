"""The trainable parameters of the two methods: ``PrefixEncoder`` and ``PromptEncoder``.

``PrefixEncoder`` (P-tuning v2 / prefix tuning) produces, for each of ``pre_seq_len`` virtual
tokens, a key and a value for every layer: a row of width ``2 * num_layers * kv_width``. It is
either a plain table or, with ``prefix_projection``, a small table passed through a
Linear -> Tanh -> Linear reparameterisation (which trains more stably); the MLP can be folded
into a plain table after training with :meth:`PrefixEncoder.merge_projection`.

``PromptEncoder`` (prompt tuning) holds ``pre_seq_len`` soft input embeddings of width ``hidden``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedConfig

from .configuration import ATTENTION_KINDS, SELF_ATTENTION, attention_layer_counts, resolve_prefix_layers
from .errors import InputError


def prefixed_layers(config: PreTrainedConfig) -> dict[str, tuple[int, ...]]:
    """For each attention kind that carries a prefix, the layers of its stack that do, in the order the
    prefix rows hold them.

    An encoder-only or decoder-only model has one kind (``SELF_ATTENTION``). An encoder-decoder (T5, BART) has encoder
    self-attention, decoder self-attention and cross-attention, each switchable with
    ``config.prefix_kinds`` (default: all three). ``config.prefix_layers`` picks the layers of every kind
    (default: all).
    """
    seq2seq = getattr(config, "is_encoder_decoder", False)
    kinds = (getattr(config, "prefix_kinds", None) or ATTENTION_KINDS) if seq2seq else (SELF_ATTENTION,)
    layers = getattr(config, "prefix_layers", None)
    return {
        kind: resolve_prefix_layers(layers, count)
        for kind, count in attention_layer_counts(config).items()
        if kind in kinds
    }


def prefix_layout(config: PreTrainedConfig) -> dict[str, int]:
    """How many attention layers of each kind carry a prefix (:func:`prefixed_layers`), in row order."""
    return {kind: len(layers) for kind, layers in prefixed_layers(config).items()}


def attention_slot(config: PreTrainedConfig, kind: str, layer: int) -> int:
    """A backbone attention layer's place among all of them (kinds in :func:`attention_layer_counts` order):
    what ``injection.tag_attention_layers`` marks each attention module with."""
    offset = 0
    for other, count in attention_layer_counts(config).items():
        if other == kind:
            return offset + layer
        offset += count
    raise KeyError(kind)


def prefix_rows(config: PreTrainedConfig) -> dict[int, int]:
    """Attention slot -> the row of ``get_prompt``'s layers that feeds it, for the slots that carry a prefix."""
    slots = [
        attention_slot(config, kind, layer) for kind, layers in prefixed_layers(config).items() for layer in layers
    ]
    return {slot: row for row, slot in enumerate(slots)}


def kv_geometry(config: PreTrainedConfig) -> tuple[int, int, int]:
    """``(num_layers, num_kv_heads, head_dim)`` of the attention the prefix feeds (``num_layers``
    counts the prefixed attention layers: those of ``prefix_layers``, of every kind on an encoder-decoder).

    Models with grouped-query attention keep fewer key/value heads than query heads; the prefix
    must match the key/value side.
    """
    num_heads = config.num_attention_heads
    num_kv_heads = getattr(config, "num_key_value_heads", None) or num_heads
    # T5 names its head width d_kv (it need not be hidden_size / heads).
    head_dim = getattr(config, "head_dim", None) or getattr(config, "d_kv", None) or config.hidden_size // num_heads
    return sum(prefix_layout(config).values()), num_kv_heads, head_dim


class PrefixEncoder(nn.Module):
    """Map virtual-token positions ``0..pre_seq_len-1`` to per-layer keys and values.

    Output: ``(pre_seq_len, 2 * num_layers * num_kv_heads * head_dim)``, laid out as
    ``[layer][key|value][head][head_dim]`` (see :func:`prefix_models.prompt.prefix_key_values`).
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


class PromptEncoder(nn.Module):
    """``pre_seq_len`` soft tokens prepended to the input embeddings, as wide as those (ALBERT and ELECTRA
    embed narrower than ``hidden_size``: ``embedding_size``)."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.pre_seq_len = config.pre_seq_len
        width = getattr(config, "embedding_size", None) or config.hidden_size
        self.embedding = nn.Embedding(config.pre_seq_len, width)

    def forward(self) -> torch.Tensor:
        return self.embedding.weight

    @torch.no_grad()
    def init_from_token_ids(self, word_embeddings: nn.Embedding, token_ids: torch.Tensor) -> None:
        """Start the prompt as copies of word-embedding rows (``vocab`` and ``text`` inits).

        ``token_ids`` is truncated, or repeated cyclically, to ``pre_seq_len``.
        """
        token_ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
        if token_ids.numel() == 0:
            raise InputError("prompt initialisation got no token ids (empty prompt_init_text after tokenisation?)")
        repeats = -(-self.pre_seq_len // token_ids.numel())
        token_ids = token_ids.repeat(repeats)[: self.pre_seq_len].to(word_embeddings.weight.device)
        rows = word_embeddings.weight[token_ids]
        self.embedding.weight.copy_(rows.to(self.embedding.weight.dtype))

    def init_from_vocab(self, word_embeddings: nn.Embedding, generator: torch.Generator | None = None) -> None:
        """Start the prompt as ``pre_seq_len`` distinct word-embedding rows sampled at random."""
        vocab_size = word_embeddings.num_embeddings
        if vocab_size >= self.pre_seq_len:
            ids = torch.randperm(vocab_size, generator=generator)[: self.pre_seq_len]
        else:
            ids = torch.randint(vocab_size, (self.pre_seq_len,), generator=generator)
        self.init_from_token_ids(word_embeddings, ids)
