"""A prompt-tuning task's per-layer keys and values: the base model's own, over its soft tokens.

A decoder's soft tokens sit before the prompt and attend only to each other, so what every layer holds for them is
a function of the soft tokens alone: run once when the task is first served, then written by the connector like a
deep prefix. The positions are the project's: with ``virtual_token_positions="none"`` every soft token sits at
position 0 (the prompt keeps ``0..``), with ``"peft"`` at ``0..P-1``; the keys come out of the base turned for those
positions (and carrying any attention factor of the rotary scaling, as the base's own keys do).

The base runs here through transformers, the library vLLM itself reads every model's config with (a vLLM
dependency, pinned by it), in float32 on the CPU, once per prompt task; vLLM's own model has no entry point that
takes embeddings at chosen positions outside a scheduled request.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def soft_token_key_values(base: str, soft_tokens: torch.Tensor, positions: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keys, values)``, each ``(layers, P, kv_heads, head_dim)`` float32: the base in folder ``base`` run over
    ``soft_tokens`` ``(P, hidden)`` at the positions ``positions`` ("none" or "peft") gives them."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    length = soft_tokens.shape[0]
    if positions == "peft":
        position_ids = torch.arange(length).unsqueeze(0)
    else:
        position_ids = torch.zeros(1, length, dtype=torch.long)
    output = model(
        inputs_embeds=soft_tokens.float().unsqueeze(0),
        attention_mask=torch.ones(1, length, dtype=torch.long),
        position_ids=position_ids,
        use_cache=True,
    )
    cache = output.past_key_values
    # (1, kv_heads, P, head_dim) per layer -> (layers, P, kv_heads, head_dim)
    keys = torch.stack([layer.keys[0].transpose(0, 1) for layer in cache.layers])
    values = torch.stack([layer.values[0].transpose(0, 1) for layer in cache.layers])
    del model
    return keys.contiguous(), values.contiguous()
