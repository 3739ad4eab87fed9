"""Prefix and prompt tuning for encoder-decoders (T5, mT5, Flan-T5, BART): training with the stock seq2seq
loss and ``generate()``.

The frozen backbone is the family's whole ``*ForConditionalGeneration`` (encoder, decoder, LM head,
and whatever it does between them: T5's rescaling of tied embeddings, BART's final logits bias),
kept under ``self.seq2seq``; its checkpoints load into it unchanged. The prefix reaches three kinds
of attention (``encoders.prefix_layout``): encoder self-attention, decoder self-attention and
cross-attention, each switchable with ``prefix_kinds``. ``get_prompt(b)`` returns every prefixed
layer in that order; :meth:`PrefixModelForSeq2SeqLM.get_prompt_by_kind` splits it by kind.

Prompt tuning puts the soft tokens before the encoder's input embeddings (their mask columns
reach the cross-attention too). T5's positions are relative, so real tokens see each other as
without a prompt; BART's are absolute, so there the soft tokens take the first positions.

Generation: the encoder runs once, with its prefix (or prompt), before ``generate()`` starts decoding (this
class's ``generate`` hands its output over as ``encoder_outputs``); each decoding step then adds
the decoder and cross-attention prefixes inside the attention. The caches hold real tokens only.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForSeq2SeqLM, GenerationMixin
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.utils import can_return_tuple

from .attachment import attach
from .configuration import prefix_layout
from .errors import InputError
from .modeling_utils import PrefixPreTrainedModel
from .named_prefixes import PrefixNames, names_as_positions, take_prefix_names


class PrefixModelForSeq2SeqLM(PrefixPreTrainedModel, GenerationMixin):
    """A frozen encoder-decoder LM with a trainable prefix on its encoder self-, decoder self- and
    cross-attention; trains with the stock loss on ``labels`` and generates with ``generate()``."""

    # The stock ForConditionalGeneration lives here; checkpoints of it load with this prefix added.
    base_model_prefix = "seq2seq"
    accepts_loss_kwargs = False
    prefix_task = "seq2seq_lm"  # its name in defaults.TASKS: what it takes from a checkpoint
    stock_auto_class = AutoModelForSeq2SeqLM

    @classmethod
    def can_generate(cls) -> bool:
        return True

    def get_encoder(self):
        return self.seq2seq.get_encoder()

    def get_decoder(self):
        return self.seq2seq.get_decoder()

    def get_output_embeddings(self):
        return self.seq2seq.get_output_embeddings()

    def get_prompt_by_kind(self, batch_size: int) -> dict[str, tuple[tuple[torch.Tensor, torch.Tensor], ...]]:
        """``get_prompt(batch_size)`` split by attention kind: ``{"encoder": ..., "decoder": ..., "cross": ...}``
        (the kinds in ``prefix_kinds``), each indexable by layer as ``get_prompt`` is."""
        prompt, start, kinds = self.get_prompt(batch_size), 0, {}
        for kind, layers in prefix_layout(self.config).items():
            kinds[kind], start = prompt[start : start + layers], start + layers
        return kinds

    def _attach_backbones(self) -> None:
        # The stacks carry the method: whoever runs the encoder (generate() does, once) or the decoder gets it.
        attach(self, self.get_encoder(), "source")
        attach(self, self.get_decoder(), "target")

    def encode_source(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **prefix_arguments: Any,
    ) -> BaseModelOutput:
        """The encoder's output with its prefix (or its soft prompt in front): what ``generate()`` decodes from.
        ``prefix_arguments``: ``prefix_attention_mask`` and ``prefix_names``, as :meth:`forward` takes them."""
        if input_ids is None and inputs_embeds is None:
            raise InputError("You must specify input_ids, inputs_embeds or encoder_outputs")
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "inputs_embeds": inputs_embeds}
        return self.get_encoder()(**inputs, **prefix_arguments, return_dict=True)

    def generate(self, inputs: torch.Tensor | None = None, *args: Any, **kwargs: Any):
        """``GenerationMixin.generate``, with the encoder (and its prefix) run here first."""
        names_as_positions(self, kwargs)
        if kwargs.get("encoder_outputs") is None:
            input_ids = inputs if inputs is not None else kwargs.pop("input_ids", None)
            if input_ids is None and kwargs.get("inputs_embeds") is None:
                raise InputError("generate() needs the source: input_ids (or inputs_embeds)")
            prefix_arguments = {name: kwargs.get(name) for name in ("prefix_attention_mask", "prefix_names")}
            kwargs["encoder_outputs"] = self.encode_source(
                input_ids, kwargs.get("attention_mask"), kwargs.pop("inputs_embeds", None), **prefix_arguments
            )
            inputs = None
        return super().generate(inputs, *args, **kwargs)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        prefix_attention_mask: torch.Tensor | None = None,
        prefix_names: PrefixNames | None = None,
        **kwargs: Any,
    ) -> Seq2SeqLMOutput:
        """As ``T5ForConditionalGeneration.forward`` / ``BartForConditionalGeneration.forward``, which this runs;
        ``prefix_attention_mask`` (``(batch, pre_seq_len)``) can switch virtual tokens off (all kinds);
        ``prefix_names`` (one per example) gives each example its named prefix (``named_prefixes.py``). The
        encoder and decoder stacks add the prefix (``attachment.py``)."""
        prefix_names = take_prefix_names(prefix_names, kwargs)
        if encoder_outputs is None and input_ids is None and inputs_embeds is None:
            raise InputError("You must specify input_ids, inputs_embeds or encoder_outputs")
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None:
            reference = encoder_outputs[0]
        # One route for both stacks (names resolved once).
        route = self.route_prefixes(prefix_names, reference.shape[0], reference.device)
        if route is not None:
            kwargs["prefix_names"] = route
        if prefix_attention_mask is not None:
            kwargs["prefix_attention_mask"] = prefix_attention_mask
        return self.seq2seq(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            inputs_embeds=inputs_embeds,
            labels=labels,
            return_dict=True,
            **kwargs,
        )
