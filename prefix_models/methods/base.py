"""The tuning method as a component: what a method adds to a frozen backbone and how it changes a forward.

A model holds one, ``model.tuning``, chosen by its config's ``prefix_method`` field (``methods/__init__.py``):
prefix tuning (``methods/prefix_tuning/``) or prompt tuning (``methods/prompt_tuning/``). Each builds its
parameters on the model (``prefix_encoder`` / ``prompt_encoder``, the names saved checkpoints use),
finishes construction, builds what a batch gets (``get_prompt``), and turns a forward's backbone inputs
into :class:`Prepared` inputs that :meth:`TuningMethod.run` feeds the backbone. The forwards never ask
which method they run: the backbone module applies it (``attachment.py`` calls ``prepare`` and ``run`` on
every call of the backbone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..attachment import BackboneCall
from ..named_prefixes import Route

if TYPE_CHECKING:  # the prefix method's state; that package builds on this module
    from .prefix_tuning.injection import PrefixState


@dataclass
class Prepared:
    """Backbone keyword arguments for one forward, and what the forward needs to know about them."""

    inputs: dict[str, Any]
    # Leading output positions that are virtual tokens (prompt tuning), dropped from the outputs.
    drop: int = 0
    # ``(batch, seq_len)``: where each row's real tokens sit in the outputs when its virtual tokens are not in
    # front (a decoder's prompt after a row's left padding); the outputs keep those places only.
    real_places: torch.Tensor | None = field(default=None, repr=False)
    state: PrefixState | None = field(default=None, repr=False)


class TuningMethod:
    """The interface both methods implement."""

    name: ClassVar[str]
    # The model attribute (and checkpoint key prefix) of the method's encoder, and the encoder's class.
    encoder_attribute: ClassVar[str]
    encoder_class: ClassVar[type[nn.Module]]

    def make_encoder(self, config: Any) -> nn.Module:
        """A new encoder (prefix table or soft prompt) for a task with this config."""
        return self.encoder_class(config)

    def build(self, model: nn.Module, config: Any) -> None:
        """The method's parameters on ``model``: its encoder, as ``encoder_attribute``."""
        setattr(model, self.encoder_attribute, self.make_encoder(config))

    def finish(self, model: nn.Module) -> None:
        """After transformers' weight init and freezing."""

    def attention_implementation(self, requested: str) -> str | None:
        """The implementation the backbone must run for ``requested`` (None: as requested)."""
        return None

    def cached_tokens(self, model: nn.Module, route: Route | None = None) -> int:
        """Virtual tokens a decoder's generation cache holds before the real ones."""
        return 0

    def get_prompt(self, model: nn.Module, batch_size: int, route: Route | None = None) -> Any:
        """What a batch gets: the model's own prefix for every row, or each row's task's (``route``)."""
        raise NotImplementedError

    def prepare(self, model: nn.Module, call: BackboneCall) -> Prepared:
        """The backbone's keyword arguments for ``call``, shaped as this method changes them."""
        raise NotImplementedError

    def run(
        self,
        model: nn.Module,
        forward: Callable[..., Any],
        prepared: Prepared,
        skipped_layers: Iterable[int] = (),
        **kwargs: Any,
    ) -> Any:
        """``forward(**prepared.inputs, **kwargs)`` (a backbone's stock forward), inside :meth:`running`;
        ``skipped_layers`` are prefix layers this call does not run (the decoder's, in an encoder-decoder's
        encoder stack)."""
        with self.running(model, prepared, skipped_layers):
            return forward(**prepared.inputs, **kwargs)

    @contextmanager
    def running(self, model: nn.Module, prepared: Prepared, skipped_layers: Iterable[int]) -> Iterator[None]:
        """What surrounds a backbone forward of this method (nothing, unless a method says otherwise)."""
        yield
