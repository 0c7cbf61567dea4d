"""Grouped-query attention for few queries over a long KV cache: the decode step (1 query)
and the action expert (64 action queries) reading the VLM's ~3300 cached tokens.

What it replaces, measured on an H200 (bench/results/h200-2026-11-26.md): under
torch.compile transformers' SDPA path copies every cached key and value once per query
head group (`repeat_kv`: 4x the cache, per layer, per step) whenever a mask is given, and
the fused SDPA kernel then runs one 64-query tile per head (32 thread blocks on 132 SMs):
4.9 ms of a 6.7 ms expert pass. Here the query heads that share a key/value head are
stacked as rows of one matrix product against that head's keys, so the cache is read once
and the work is plain batched matrix products (which inductor fuses around), in the same
order of operations as transformers' eager attention (product, scale, mask, float32 softmax,
product). Long queries (the prefill) and unmasked causal blocks go to SDPA unchanged.

Registered with transformers as the attention implementation "alpamayo_grouped" (its masks
are SDPA's boolean ones); `AlpamayoPolicy.set_attention` selects it.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

GROUPED_ATTENTION = "alpamayo_grouped"
GROUPED_MAX_QUERIES = 128  # longer query blocks (a prefill) go to SDPA


def grouped_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: query (B, H, T, D), key and value (B, Hkv, S, D),
    attention_mask (B, 1 or H, T, >= S) boolean (True: attend) or additive float, or None
    -> (B, T, H, D) attention output, no weights."""
    B, H, T, D = query.shape
    Hkv, S = key.shape[1], key.shape[2]
    if T > GROUPED_MAX_QUERIES or (attention_mask is None and T > 1) or dropout > 0.0:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    g = H // Hkv
    scale = D**-0.5 if scaling is None else scaling
    # head h reads key/value head h // g: its g query heads become g * T rows
    scores = torch.matmul(query.reshape(B, Hkv, g * T, D), key.transpose(2, 3)) * scale
    scores = scores.view(B, Hkv, g, T, S)
    if attention_mask is not None:
        mask = attention_mask[:, :, :, :S]
        if mask.shape[1] == 1:
            mask = mask[:, :, None]  # shared by all heads: broadcast
        else:  # per head; a batch of 1 broadcasts over the batch
            mask = mask.reshape(mask.shape[0], Hkv, g, T, S)
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(probs.view(B, Hkv, g * T, S), value)  # (B, Hkv, g*T, D)
    return out.view(B, H, T, D).transpose(1, 2).contiguous(), None


AttentionInterface.register(GROUPED_ATTENTION, grouped_attention)
AttentionMaskInterface.register(GROUPED_ATTENTION, sdpa_mask)
