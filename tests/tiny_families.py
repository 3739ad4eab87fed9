"""Tiny configs (2 layers, hidden 32) for every backbone family, built in-process (no hub)."""

from __future__ import annotations

import transformers as tf

VOCAB = 111  # the tiny BERT tokenizer in tests/fixtures
_COMMON = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
               max_position_embeddings=48)  # fmt: skip


def _with(config_class, **fields):
    def build(**overrides):
        return config_class(**{**_COMMON, **fields, **overrides})

    return build


ENCODER_CONFIGS = {
    "Bert": _with(tf.BertConfig),
    "Roberta": _with(tf.RobertaConfig, pad_token_id=1, bos_token_id=0, eos_token_id=2),
    "XLMRoberta": _with(tf.XLMRobertaConfig, pad_token_id=1, bos_token_id=0, eos_token_id=2),
    "Electra": _with(tf.ElectraConfig, embedding_size=16),
    "DistilBert": lambda **overrides: tf.DistilBertConfig(
        **{
            "vocab_size": VOCAB,
            "dim": 32,
            "n_layers": 2,
            "n_heads": 4,
            "hidden_dim": 40,
            "max_position_embeddings": 48,
            **overrides,
        }  # fmt: skip
    ),
    "Albert": _with(tf.AlbertConfig, embedding_size=16),
    "ModernBert": _with(
        tf.ModernBertConfig,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
        cls_token_id=2,
        sep_token_id=3,
        global_attn_every_n_layers=2,
        local_attention=4,
    ),  # fmt: skip
}
DECODER_CONFIGS = {
    "GPT2": lambda **overrides: tf.GPT2Config(
        **{
            "vocab_size": VOCAB,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 48,
            "bos_token_id": 1,
            "eos_token_id": 2,
            **overrides,
        }  # fmt: skip
    ),
    "Llama": _with(tf.LlamaConfig, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0),
    "Qwen2": _with(tf.Qwen2Config, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0),
    "Mistral": _with(
        tf.MistralConfig, num_key_value_heads=2, sliding_window=6, bos_token_id=1, eos_token_id=2, pad_token_id=0
    ),  # fmt: skip
    "Gemma": _with(tf.GemmaConfig, num_key_value_heads=1, head_dim=8, bos_token_id=1, eos_token_id=2, pad_token_id=0),
    "Gemma2": _with(
        tf.Gemma2Config,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=6,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    ),  # fmt: skip
}
# Families whose stock model has no sdpa attention (transformers raises for it).
EAGER_ONLY = {"Gemma2"}
# Families whose backbone takes no token types.
NO_TOKEN_TYPES = {"DistilBert", "ModernBert"}
