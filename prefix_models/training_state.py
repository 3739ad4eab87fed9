"""What trains and what stays frozen: the backbone frozen (after construction and after loading),
trainable tensors kept in float32 over a half-precision backbone, the reparameterisation MLP folded
away after training, and the soft prompt's initialisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import checkpoints
from .configuration import DEFAULT_PREFIX_INIT_TEXT
from .errors import InputError

# The functions below are the training-state half of every prefix model (``modeling_utils.PrefixPreTrainedModel``
# calls them by the same names): ``model`` is that model.


def freeze_backbone(model: nn.Module) -> None:
    """Stop gradients to every backbone parameter; only the prefix/prompt and the head train.

    Called after construction *and* after ``from_pretrained`` loads weights: transformers 5
    re-creates parameters while loading, which drops a ``requires_grad=False`` set earlier.
    """
    for module in model.frozen_modules().values():
        module.requires_grad_(False)
    checkpoints.leave_frozen_out(model)


def upcast_trainable_parameters(model: nn.Module) -> None:
    """Keep what trains (prefix/prompt, head) in float32 when the frozen backbone was loaded in
    bfloat16/float16: optimizer updates to half-precision parameters are lost to rounding.
    ``get_prompt`` casts the prefix to the backbone's dtype for the attention."""
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype in (torch.float16, torch.bfloat16):
            parameter.data = parameter.data.float()


def merge_prefix_projection(model: nn.Module) -> None:
    """Fold the reparameterisation MLP into a plain prefix table (outputs unchanged), for the model's
    own prefix and every named one that has an MLP.

    Afterwards inference skips the MLP and ``save_pretrained`` writes only the table.
    """
    if model.prefix_method != "prefix":
        raise InputError("merge_prefix_projection applies to prefix models; prompt models have no projection")
    for name in model.prefix_names:
        model.task_modules(name)["prefix_encoder"].merge_projection()  # a no-op for a plain table
        model.prefix_config(name).prefix_projection = False
    # The named tasks' stored configs, which a save writes.
    tasks = model.config.prefix_tasks or {}
    model.config.prefix_tasks = {name: {**values, "prefix_projection": False} for name, values in tasks.items()} or None


@torch.no_grad()
def init_prefix(model: nn.Module, tokenizer: Any = None, task: nn.Module | None = None) -> None:
    """(Re)initialise the prefix as ``config.prefix_init`` says: ``text`` sets it to the backbone's own keys
    and values of ``config.prefix_init_text`` (a default text when unset), tokenised with ``tokenizer``
    and truncated or repeated to ``pre_seq_len`` tokens; ``random`` keeps transformers' init.

    ``task``: a named task's modules (``add_prefix``), initialised by its own config instead."""
    config, encoder = (model.config, model.prefix_encoder) if task is None else (task.config, task.prefix_encoder)
    if config.prefix_init != "text" or model.get_input_embeddings().weight.is_meta:
        return
    if getattr(model.config, "is_encoder_decoder", False):
        raise InputError(
            'prefix_init="text" is for encoders and decoder LMs: an encoder-decoder\'s '
            "cross-attention has no text of its own to read"
        )
    if tokenizer is None:
        raise InputError(
            'prefix_init="text" needs a tokenizer to read the text: pass tokenizer=... to the model '
            "constructor, from_pretrained or add_prefix"
        )
    text = config.prefix_init_text or DEFAULT_PREFIX_INIT_TEXT
    token_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(token_ids) == 0:
        raise InputError(f"prefix_init_text {text!r} tokenises to no tokens")
    length = config.pre_seq_len
    repeated = torch.tensor(token_ids * (length // len(token_ids) + 1))[:length]
    encoder.embedding.weight.copy_(model.tuning.table_from_text(model, repeated))


@torch.no_grad()
def init_prompt(model: nn.Module, tokenizer: Any = None, task: nn.Module | None = None) -> None:
    """(Re)initialise the soft prompt as ``config.prompt_init`` says.

    ``random`` keeps transformers' normal init; ``vocab`` copies randomly sampled rows of the
    word embeddings; ``text`` copies the embeddings of ``config.prompt_init_text`` (tokenised
    with ``tokenizer``), truncated or repeated to ``pre_seq_len``. ``task``: as for ``init_prefix``.
    """
    config, encoder = (model.config, model.prompt_encoder) if task is None else (task.config, task.prompt_encoder)
    init = config.prompt_init
    word_embeddings = model.base_model.get_input_embeddings()
    if word_embeddings.weight.is_meta:
        return
    if init == "vocab":
        encoder.init_from_vocab(word_embeddings)
    elif init == "text":
        if tokenizer is None:
            raise InputError(
                'prompt_init="text" needs a tokenizer to turn prompt_init_text into token ids: pass '
                "tokenizer=... to the model constructor, from_pretrained or add_prefix"
            )
        token_ids = tokenizer(config.prompt_init_text, add_special_tokens=False)["input_ids"]
        if len(token_ids) == 0:
            raise InputError(f"prompt_init_text {config.prompt_init_text!r} tokenises to no tokens")
        encoder.init_from_token_ids(word_embeddings, torch.tensor(token_ids))
