"""GPT-2 with a trainable prefix (prefix tuning as Li & Liang introduced it): a language model that
trains with the stock ``Trainer`` and generates with ``generate()``."""

from transformers import GPT2Config, GPT2Model, GPT2PreTrainedModel

from .configuration import make_prefix_config_class
from .modeling_causal_lm import PrefixModelForCausalLM

GPT2PrefixConfig = make_prefix_config_class(GPT2Config, "prefix")


class GPT2PrefixLMHeadModel(PrefixModelForCausalLM, GPT2PreTrainedModel):
    config_class = GPT2PrefixConfig
    backbone_class = GPT2Model
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}
