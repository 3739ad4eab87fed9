"""Tiny configs (2 layers, hidden 32) for every backbone family, built in-process (no hub)."""

from __future__ import annotations

import transformers as tf

VOCAB = 111  # the tiny BERT tokenizer in tests/fixtures
_COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=40,
    max_position_embeddings=48,
)


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
        }
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
    ),
    # DeBERTa-v3's layout: relative attention with position buckets, c2p and p2c, no absolute positions.
    "DebertaV2": _with(
        tf.DebertaV2Config,
        relative_attention=True,
        position_buckets=16,
        max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        type_vocab_size=0,
    ),
    "MPNet": _with(tf.MPNetConfig, pad_token_id=1),  # 32 buckets: MPNet's encoder assumes 32 whatever the config says
}
# Grouped-query attention (two key/value heads for four query heads) and the special tokens.
_DECODER = dict(num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0)
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
        }
    ),
    "Llama": _with(tf.LlamaConfig, **_DECODER),
    "Qwen2": _with(tf.Qwen2Config, **_DECODER),
    "Mistral": _with(tf.MistralConfig, **_DECODER, sliding_window=6),
    "Gemma": _with(tf.GemmaConfig, **{**_DECODER, "num_key_value_heads": 1}, head_dim=8),
    "Gemma2": _with(tf.Gemma2Config, **_DECODER, head_dim=8, sliding_window=6),
}


def decoder_config(model_type: str, **overrides):
    """The tiny decoder shape for any model type transformers knows, listed above or not."""
    return tf.CONFIG_MAPPING[model_type](**{**_COMMON, **_DECODER, **overrides})


# The beam search the generation tests run: three beams, the best two returned.
BEAM_SEARCH = {"num_beams": 3, "num_return_sequences": 2, "do_sample": False}
# Families whose stock model has no sdpa attention (transformers raises for it).
EAGER_ONLY = {"Gemma2", "DebertaV2", "MPNet"}
# Families whose backbone takes no token types.
NO_TOKEN_TYPES = {"DistilBert", "ModernBert", "MPNet"}
_T5 = dict(
    vocab_size=60,
    d_model=32,
    d_kv=8,
    d_ff=40,
    num_layers=2,
    num_decoder_layers=2,
    num_heads=4,
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
    relative_attention_num_buckets=8,
)
SEQ2SEQ_CONFIGS = {
    "T5": lambda **overrides: tf.T5Config(**{**_T5, **overrides}),
    "MT5": lambda **overrides: tf.MT5Config(**{**_T5, **overrides}),
    "Bart": lambda **overrides: tf.BartConfig(
        **{
            "vocab_size": 60,
            "d_model": 32,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 40,
            "decoder_ffn_dim": 40,
            "max_position_embeddings": 48,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "decoder_start_token_id": 2,
            "forced_eos_token_id": None,
            **overrides,
        }
    ),
}
