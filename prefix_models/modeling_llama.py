"""Llama-architecture decoders (Llama 2/3, SmolLM2, TinyLlama, ...) with a trainable prefix.

Grouped-query attention keeps fewer key/value heads than query heads; the prefix has
``num_key_value_heads`` heads (``encoders.kv_geometry``). Virtual tokens get no rotary position.
"""

from transformers import LlamaConfig, LlamaModel, LlamaPreTrainedModel

from .configuration import make_prefix_config_class
from .modeling_causal_lm import PrefixModelForCausalLM

LlamaPrefixConfig = make_prefix_config_class(LlamaConfig, "prefix")


class LlamaPrefixForCausalLM(PrefixModelForCausalLM, LlamaPreTrainedModel):
    config_class = LlamaPrefixConfig
    backbone_class = LlamaModel
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
