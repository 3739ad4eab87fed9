"""The backbone carries the method: whoever calls the backbone module gets the model's prefix (or prompt).

:func:`attach` gives a backbone module (``model.bert``, ``model.model``, ``model.transformer``; an
encoder-decoder's encoder and decoder stacks) a ``forward`` of its own, on the instance. It

1. takes the prefix arguments a caller may add to the stock ones: ``prefix_names`` (one per example;
   peft's ``adapter_names`` is an alias) and ``prefix_attention_mask`` (``(batch, pre_seq_len)``, zeros
   switch virtual tokens off);
2. shapes the stock inputs as the model's method says (``methods/``: a ``PrefixState`` for the attention
   layers, or soft tokens before the input embeddings), with the same checks, masks, positions and routing
   for every caller;
3. runs the stock ``forward`` of the backbone's class, checks that every layer took its prefix, and
4. returns the stock output type with the real tokens only (a prompt's soft positions are dropped), so a
   caller lines labels up as with a plain model.

Our model classes call their backbone like any other caller (there is one path); TRL's fused LM head
(``model.base_model(...)`` then ``get_output_embeddings()``), a ``model.bert(...)`` in a user's loop and
the stock ``*ForCausalLM`` forward all get the prefix. ``with model.disable_prefix():`` runs the plain
backbone on purpose. A caller that brings its own ``prefix_state`` (the tests' reference route) is
passed through untouched.

The owner is kept in the module's ``__dict__`` (not as a submodule, which would make the module tree a
cycle), so ``copy.deepcopy`` and pickling carry a consistent copy of the pair.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, get_args

import torch
from torch import nn
from transformers.utils import ModelOutput

from .configuration import attention_layer_counts, attention_slot
from .errors import InputError
from .inputs import ENCODER_INPUTS, backbone_inputs, check_padding_mask, check_sequence_length, take_places
from .named_prefixes import Route, take_prefix_names

# What a caller may add to a backbone's stock arguments.
PREFIX_ARGUMENTS = ("prefix_names", "adapter_names", "prefix_attention_mask")
_OWNER, _ROLE, _POSITIONAL = "_prefix_owner", "_prefix_role", "_prefix_positional_names"
# A backbone's role, which says how its calls are shaped: an encoder-only model's backbone (BERT's ``model.bert``),
# a decoder-only LM's (``model.model``), an encoder-decoder's encoder stack (its source) or decoder stack (its
# target). "encoder", "decoder" and "cross" alone name attention kinds (configuration.ATTENTION_KINDS).
Role = Literal["encoder_only", "decoder_only", "source", "target"]
ROLES: tuple[str, ...] = get_args(Role)


@dataclass
class BackboneCall:
    """One call of a backbone, as its method's ``prepare`` reads it."""

    role: Role
    # The stock keyword arguments the method reshapes (the rest go to the backbone untouched).
    inputs: dict[str, Any]
    batch_size: int
    # ``(batch, pre_seq_len)``: zeros switch virtual tokens off (None: all on).
    prefix_attention_mask: torch.Tensor | None = None
    # A decoder's generation cache already holds a prompt's soft tokens (prompt tuning, after the first step).
    soft_cached: bool = False
    # Each example's task (named prefixes); None: the model's own prefix for every row.
    route: Route | None = None


def attach(model: nn.Module, module: nn.Module, role: str) -> None:
    """Make ``module`` (a backbone of ``model``) apply ``model``'s method on every call, as ``role``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    module.__dict__[_OWNER] = model
    module.__dict__[_ROLE] = role
    # Read once here, not per call: torch.compile traces every call and would warn about a cached lookup.
    module.__dict__[_POSITIONAL] = _positional_names(type(module))
    module.forward = InstanceForward(_carrying_forward, module)


class InstanceForward:
    """``function`` bound to ``module`` as its ``forward``, on the instance.

    A plain object rather than a bound method: pickle rebuilds a bound method by looking its name up on the
    object (which finds the class's stock forward, or nothing), while this is rebuilt around the unpickled
    (or deep-copied) module itself.
    """

    def __init__(self, function: Callable[..., Any], module: nn.Module):
        self.function = function
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(self.module, *args, **kwargs)


def stock_forward(module: nn.Module) -> Callable[..., Any]:
    """The backbone's own ``forward`` (its class's), bypassing the method: what the carriers run."""
    return partial(type(module).forward, module)


@contextmanager
def prefix_disabled(model: nn.Module) -> Iterator[None]:
    """Inside the block every backbone of ``model`` runs plain (no prefix, no prompt)."""
    previous = model.__dict__.get("_prefix_disabled", False)
    model.__dict__["_prefix_disabled"] = True
    try:
        yield
    finally:
        model.__dict__["_prefix_disabled"] = previous


def _positional_names(module_class: type) -> tuple[str, ...]:
    parameters = list(inspect.signature(module_class.forward).parameters.values())[1:]
    return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _carrying_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    owner, role = self.__dict__[_OWNER], self.__dict__[_ROLE]
    names = self.__dict__[_POSITIONAL]
    if len(args) > len(names):
        raise TypeError(f"{type(self).__name__}.forward takes {len(names)} positional arguments, got {len(args)}")
    for name, value in zip(names, args, strict=False):
        if name in kwargs:
            raise TypeError(f"{type(self).__name__}.forward got multiple values for argument {name!r}")
        kwargs[name] = value
    extra = {key: kwargs.pop(key) for key in PREFIX_ARGUMENTS if key in kwargs}
    if "prefix_state" in kwargs or owner.__dict__.get("_prefix_disabled", False):
        return type(self).forward(self, **kwargs)
    names = take_prefix_names(extra.get("prefix_names"), extra)
    return_dict = kwargs.pop("return_dict", None)
    carrier = _CARRIERS[role]
    outputs = carrier(owner, self, kwargs, names, extra.get("prefix_attention_mask"))
    if return_dict is False and isinstance(outputs, ModelOutput):
        return outputs.to_tuple()
    return outputs


def _drop_virtual(outputs: Any, prepared: Any) -> Any:
    """The output with the soft-token positions removed from every sequence of states: the first
    ``prepared.drop``, or all but each row's ``prepared.real_places``."""
    if not prepared.drop:
        return outputs

    def real(state: torch.Tensor) -> torch.Tensor:
        if prepared.real_places is None:
            return state[:, prepared.drop :]
        return take_places(state, prepared.real_places)

    outputs.last_hidden_state = real(outputs.last_hidden_state)
    if getattr(outputs, "hidden_states", None) is not None:
        outputs.hidden_states = tuple(real(state) for state in outputs.hidden_states)
    return outputs


def _reference(kwargs: dict[str, Any], backbone: nn.Module) -> torch.Tensor:
    input_ids, inputs_embeds = kwargs.get("input_ids"), kwargs.get("inputs_embeds")
    if (input_ids is None) == (inputs_embeds is None):
        raise InputError(f"You must specify exactly one of input_ids or inputs_embeds ({type(backbone).__name__})")
    return input_ids if input_ids is not None else inputs_embeds


def _rows_outside(config: Any, prepared: Any, *kinds: str) -> list[int]:
    """The prefix rows of the attention kinds other than ``kinds``: those a stack running only ``kinds``
    leaves unread (an encoder-decoder's encoder has no decoder layers)."""
    if prepared.state is None:  # prompt tuning: no rows
        return []
    counts = attention_layer_counts(config)
    inside = {attention_slot(config, kind, layer) for kind in kinds for layer in range(counts[kind])}
    return [row for slot, row in prepared.state.rows.items() if slot not in inside]


def _encoder(
    model: nn.Module, backbone: nn.Module, kwargs: dict[str, Any], names: Any, prefix_mask: torch.Tensor | None
) -> Any:
    reference = _reference(kwargs, backbone)
    batch_size, seq_len = reference.shape[:2]
    route = model.route_prefixes(names, batch_size, reference.device)
    check_sequence_length(backbone, seq_len)
    check_padding_mask(kwargs.get("attention_mask"), batch_size, seq_len)
    inputs = backbone_inputs(backbone, **{key: kwargs.pop(key, None) for key in ENCODER_INPUTS})
    prepared = model.tuning.prepare(model, BackboneCall("encoder_only", inputs, batch_size, prefix_mask, route=route))
    outputs = model.tuning.run(model, stock_forward(backbone), prepared, return_dict=True, **kwargs)
    return _drop_virtual(outputs, prepared)


def context_length(config: Any) -> int | None:
    """How many positions a decoder LM has for its real tokens (the prefix takes none)."""
    return getattr(config, "max_position_embeddings", None)


def causal_position_ids(attention_mask: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Positions of the last ``seq_len`` tokens: the count of real tokens before each (left padding
    gets position 1, as transformers does, and is masked anyway)."""
    positions = attention_mask.long().cumsum(-1) - 1
    positions = positions.masked_fill(attention_mask == 0, 1)
    return positions[:, -seq_len:]


def _check_not_packed(position_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
    """Refuse rows that hold several sequences (padding-free packing restarts the positions inside a row):
    the attention would let every packed sequence read the others, and a prompt reaches the first only."""
    seq_len = position_ids.shape[-1]
    if attention_mask is None:
        attention_mask = torch.ones_like(position_ids)
    real = attention_mask[..., -seq_len:].bool()
    pairs = real[:, 1:] & real[:, :-1]
    if seq_len > 1 and bool(((position_ids[..., 1:] < position_ids[..., :-1]) & pairs).any()):
        raise InputError(
            "position_ids restart inside a row: several sequences are packed into one (TRL's padding_free=True, "
            "or packing with the 'bfd' strategy). That needs flash-attention's variable-length kernels, which cannot "
            "host a prefix; train with padding_free=False (packing=False, or packing_strategy='wrapped')"
        )


def _decoder(
    model: nn.Module, backbone: nn.Module, kwargs: dict[str, Any], names: Any, prefix_mask: torch.Tensor | None
) -> Any:
    """A decoder LM's backbone: positions from the padding mask (virtual tokens take none, unless peft's
    positions), the context checked, a prompt's soft tokens kept once in the generation cache."""
    reference = _reference(kwargs, backbone)
    batch_size, seq_len = reference.shape[:2]
    route = model.route_prefixes(names, batch_size, reference.device)
    if kwargs.get("position_ids") is not None:
        _check_not_packed(kwargs["position_ids"], kwargs.get("attention_mask"))
    cache = kwargs.pop("cache", None)
    cache = kwargs.pop("past_key_values", None) if cache is None else cache
    use_cache = kwargs.pop("use_cache", None)
    if use_cache is None:  # a cache is for generation; training needs none
        use_cache = bool(getattr(model.config, "use_cache", False)) and not model.training
    if use_cache and model.is_activation_checkpointing and model.training and torch.is_grad_enabled():
        use_cache = False  # a growing cache would be written twice when checkpointed layers are replayed

    cached = cache.get_seq_length() if cache is not None else 0
    # Prompt tuning: the soft tokens go through the layers once, on the first forward, and then sit in the
    # generation cache before the real tokens.
    virtual = model.tuning.cached_tokens(model, route)
    soft_cached = virtual > 0 and cached > 0
    total = (cached - virtual if soft_cached else cached) + seq_len
    # Virtual tokens take no positions and never enter the cache: the whole context stays for real tokens
    # (unless they run at peft's positions, after the virtual tokens).
    shift = model._position_shift(route, batch_size, reference.device)
    limit = context_length(model.config)
    if limit is not None and total + (int(shift.max()) if shift is not None else 0) > limit:
        taken = "the prefix takes none" if shift is None else "peft's positions put the virtual tokens first"
        raise InputError(
            f"{total} tokens are longer than the model's context ({limit} positions; {taken}); "
            "shorten the input (or max_new_tokens)"
        )
    attention_mask, position_ids = kwargs.pop("attention_mask", None), kwargs.pop("position_ids", None)
    if attention_mask is None:
        attention_mask = torch.ones(batch_size, total, dtype=torch.long, device=reference.device)
    elif attention_mask.dim() != 2 or tuple(attention_mask.shape) != (batch_size, total):
        raise InputError(
            f"attention_mask must be (batch, past + new tokens) = ({batch_size}, {total}) for the real tokens "
            f"(the prefix is added by the model); got shape {tuple(attention_mask.shape)}"
        )
    if position_ids is None:  # given ones number the real tokens as the plain model does (generate() passes them)
        position_ids = causal_position_ids(attention_mask, seq_len)
    if shift is not None:  # peft's positions, given or counted: the real tokens follow the virtual ones
        position_ids = position_ids + shift
    inputs = {
        "input_ids": kwargs.pop("input_ids", None),
        "inputs_embeds": kwargs.pop("inputs_embeds", None),
        "attention_mask": attention_mask,
        "position_ids": position_ids,
    }
    prepared = model.tuning.prepare(
        model, BackboneCall("decoder_only", inputs, batch_size, prefix_mask, soft_cached, route)
    )
    outputs = model.tuning.run(
        model, stock_forward(backbone), prepared, use_cache=use_cache, return_dict=True, cache=cache, **kwargs
    )
    return _drop_virtual(outputs, prepared)


def _source(
    model: nn.Module, stack: nn.Module, kwargs: dict[str, Any], names: Any, prefix_mask: torch.Tensor | None
) -> Any:
    """An encoder-decoder's encoder stack: its prefix rows, or the prompt in front of the source (kept in the
    output: the decoder cross-attends to the soft tokens' states)."""
    reference = _reference(kwargs, stack)
    batch_size, seq_len = reference.shape[:2]
    check_padding_mask(kwargs.get("attention_mask"), batch_size, seq_len)
    route = model.route_prefixes(names, batch_size, reference.device)
    if route is not None and model.prefix_method == "prompt" and hasattr(stack, "embed_positions"):
        lengths = {model.prefix_config(name).pre_seq_len for name, _ in route.groups()}
        if len(lengths) > 1:
            raise InputError(
                f"prompts of different lengths ({sorted(lengths)}) cannot share a {type(model).__name__} batch: its "
                "encoder numbers positions from the first soft token, so padding one prompt to another's length "
                "would move its real tokens. Group the examples by prompt length"
            )
    inputs = {key: kwargs.pop(key, None) for key in ("input_ids", "attention_mask", "inputs_embeds")}
    inputs = {key: value for key, value in inputs.items() if value is not None}
    prepared = model.tuning.prepare(model, BackboneCall("source", inputs, batch_size, prefix_mask, route=route))
    skipped = _rows_outside(model.config, prepared, "encoder")
    return model.tuning.run(model, stock_forward(stack), prepared, skipped_layers=skipped, return_dict=True, **kwargs)


def _target(
    model: nn.Module, stack: nn.Module, kwargs: dict[str, Any], names: Any, prefix_mask: torch.Tensor | None
) -> Any:
    """An encoder-decoder's decoder stack: its self- and cross-attention prefix rows; with a prompt, the soft
    tokens' columns of the cross-attention mask."""
    encoded = kwargs.get("encoder_hidden_states")
    reference = encoded if encoded is not None else _reference(kwargs, stack)
    batch_size = reference.shape[0]
    route = model.route_prefixes(names, batch_size, reference.device)
    inputs = {key: kwargs.pop(key) for key in ("encoder_hidden_states", "encoder_attention_mask") if key in kwargs}
    prepared = model.tuning.prepare(model, BackboneCall("target", inputs, batch_size, prefix_mask, route=route))
    return model.tuning.run(
        model,
        stock_forward(stack),
        prepared,
        skipped_layers=_rows_outside(model.config, prepared, "decoder", "cross"),
        return_dict=True,
        **kwargs,
    )


_CARRIERS = {"encoder_only": _encoder, "decoder_only": _decoder, "source": _source, "target": _target}
