"""The trainable parameters of prompt tuning, ``PromptEncoder`` (``pre_seq_len`` soft input embeddings
of width ``hidden``), and :func:`prompt_inputs`: an encoder's inputs with the soft tokens prepended
(real tokens keep their positions and token types)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from ...errors import InputError
from ...inputs import (
    ENCODER_INPUTS,
    _forward_parameters,
    backbone_inputs,
    extend_attention_mask,
    first_position,
    real_position_ids,
)


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


def prompt_inputs(
    backbone: PreTrainedModel,
    prompt: torch.Tensor,
    inputs: dict[str, torch.Tensor],
    prefix_attention_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Backbone keyword arguments: ``inputs`` (the backbone's :data:`~prefix_models.inputs.ENCODER_INPUTS` that
    are given) with ``prompt`` (``(P, hidden)``, or ``(batch, P, hidden)``) prepended to the real tokens.

    Real tokens keep their word embeddings, token types and positions; the soft tokens get token
    type 0 (where the backbone has token types) and the first position (a fixed additive offset
    that training absorbs).
    """
    input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds = map(inputs.get, ENCODER_INPUTS)
    if inputs_embeds is None:
        inputs_embeds = backbone.get_input_embeddings()(input_ids)
    batch_size, seq_len = inputs_embeds.shape[:2]
    pre_seq_len = prompt.shape[-2]
    device = inputs_embeds.device
    if position_ids is None:
        position_ids = real_position_ids(backbone, input_ids, inputs_embeds)
    position_ids = position_ids.expand(batch_size, -1)
    prompt_positions = torch.full((batch_size, pre_seq_len), first_position(backbone), device=device)
    soft = prompt.to(inputs_embeds.dtype).expand(batch_size, -1, -1)
    inputs = {
        "inputs_embeds": torch.cat([soft, inputs_embeds], dim=1),
        "attention_mask": extend_attention_mask(
            attention_mask, pre_seq_len, batch_size, seq_len, device, prefix_attention_mask
        ),
        "position_ids": torch.cat([prompt_positions, position_ids.to(device)], dim=1),
    }
    if token_type_ids is not None or "token_type_ids" in _forward_parameters(type(backbone)):
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        soft_types = token_type_ids.new_zeros(batch_size, pre_seq_len)
        inputs["token_type_ids"] = torch.cat([soft_types, token_type_ids], dim=1)
    return backbone_inputs(backbone, **inputs)
