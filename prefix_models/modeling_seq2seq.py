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
from transformers import GenerationMixin, PreTrainedConfig
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.utils import can_return_tuple

from .encoders import prefix_layout
from .errors import InputError
from .injection import PrefixState, check_prefix_reached
from .modeling_utils import PrefixModelMixin
from .prompt import backbone_inputs, check_padding_mask, extend_attention_mask


class PrefixModelForSeq2SeqLM(PrefixModelMixin, GenerationMixin):
    """A frozen encoder-decoder LM with a trainable prefix on its encoder self-, decoder self- and
    cross-attention; trains with the stock loss on ``labels`` and generates with ``generate()``."""

    # The stock ForConditionalGeneration lives here; checkpoints of it load with this prefix added.
    base_model_prefix = "seq2seq"
    accepts_loss_kwargs = False

    def __init__(self, config: PreTrainedConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.post_init_prefix()

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

    def _check_reached(self, state: PrefixState, ran_encoder: bool) -> None:
        # A decoding step reuses the encoder's output: its layers did not run, which is expected.
        layout = prefix_layout(self.config)
        skipped = 0 if ran_encoder else layout.get("encoder", 0)
        if skipped:
            start = 0
            state.layers_seen.update(range(start, start + skipped))
        check_prefix_reached(state, self.config)

    def _source(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        prefix_attention_mask: torch.Tensor | None,
    ) -> dict[str, Any]:
        """The encoder's inputs; prompt tuning puts the soft tokens (and their mask columns) in front."""
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None:
            raise InputError("You must specify input_ids, inputs_embeds or encoder_outputs")
        batch_size, length = reference.shape[:2]
        check_padding_mask(attention_mask, batch_size, length)
        if self.prefix_method == "prefix":
            return {"input_ids": input_ids, "attention_mask": attention_mask, "inputs_embeds": inputs_embeds}
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        mask = extend_attention_mask(attention_mask, self.config.pre_seq_len, batch_size, length, reference.device,
                                     prefix_attention_mask)  # fmt: skip
        soft = self.get_prompt(batch_size).to(inputs_embeds.dtype)
        return {"input_ids": None, "attention_mask": mask, "inputs_embeds": torch.cat([soft, inputs_embeds], dim=1)}

    def encode_source(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        prefix_attention_mask: torch.Tensor | None = None,
    ) -> BaseModelOutput:
        """The encoder's output with its prefix (or its soft prompt in front): what ``generate()`` decodes from."""
        source = self._source(input_ids, attention_mask, inputs_embeds, prefix_attention_mask)
        extra = {}
        if self.prefix_method == "prefix":
            extra["prefix_state"] = state = self.prefix_state(len(source["attention_mask"] if input_ids is None
                                                                  else input_ids), prefix_attention_mask)  # fmt: skip
            state.layers_seen.update(range(len(state.key_values)))  # only the encoder runs here
        encoder = self.get_encoder()
        return encoder(**backbone_inputs(encoder, **source), **extra, return_dict=True)

    def generate(self, inputs: torch.Tensor | None = None, *args: Any, **kwargs: Any):
        """``GenerationMixin.generate``, with the encoder (and its prefix) run here first."""
        if kwargs.get("encoder_outputs") is None:
            input_ids = inputs if inputs is not None else kwargs.pop("input_ids", None)
            if input_ids is None and kwargs.get("inputs_embeds") is None:
                raise InputError("generate() needs the source: input_ids (or inputs_embeds)")
            kwargs["encoder_outputs"] = self.encode_source(
                input_ids, kwargs.get("attention_mask"), kwargs.pop("inputs_embeds", None),
                kwargs.get("prefix_attention_mask"),
            )  # fmt: skip
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
        **kwargs: Any,
    ) -> Seq2SeqLMOutput:
        """As ``T5ForConditionalGeneration.forward`` / ``BartForConditionalGeneration.forward``;
        ``prefix_attention_mask`` (``(batch, pre_seq_len)``) can switch virtual tokens off (all kinds)."""
        prompt = self.prefix_method == "prompt"
        if encoder_outputs is None:
            source = self._source(input_ids, attention_mask, inputs_embeds, prefix_attention_mask)
            input_ids, inputs_embeds = source["input_ids"], source["inputs_embeds"]
            attention_mask = source["attention_mask"]
            batch_size = len(input_ids if input_ids is not None else inputs_embeds)
        else:
            batch_size = encoder_outputs[0].shape[0]
            pre_seq_len, source_length = self.config.pre_seq_len, encoder_outputs[0].shape[1]
            if prompt and attention_mask is not None and attention_mask.shape[1] + pre_seq_len == source_length:
                # generate() keeps the real tokens' mask; the encoder output also holds the soft tokens.
                attention_mask = extend_attention_mask(attention_mask, pre_seq_len, batch_size, attention_mask.shape[1],
                                                       attention_mask.device, prefix_attention_mask)  # fmt: skip
        if not prompt:
            kwargs["prefix_state"] = state = self.prefix_state(batch_size, prefix_attention_mask)
        outputs = self.seq2seq(
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
        if not prompt:
            self._check_reached(state, ran_encoder=encoder_outputs is None)
        return outputs
