"""The language model's decoder layers with their elementwise work compiled around the
attention: everything before it (input norm, q/k/v projections, q/k norms, multimodal
rotary embedding) and everything after it (output projection, residual, norm, MLP,
residual) as two torch.compile'd functions with dynamic shapes.

Why: in a released-shape prefill on an H200 (bench/results/h200-2026-11-26.md) the rotary
embedding's and the residuals' elementwise kernels took ~15 ms beside ~69 ms of matrix
products, after the norms and MLPs had been compiled on their own. The KV-cache update
and the attention stay eager between the two functions: a layer's cache update guards on
its index, so a compiled whole layer would be one graph per layer (36 > dynamo's limit of
8 recompilations); these two functions take the layer as an argument and are one graph
each for all layers of a kind. Inside the compiled decode step they are inlined.

The operations are transformers' Qwen3VLTextDecoderLayer and Qwen3VLTextAttention
forward, in their order (tested equal to them on the CPU); with the layer's projections
stacked (model.stacked_projections), q/k/v and gate/up are one product each.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.qwen3_vl.modeling_qwen3_vl import (
    apply_rotary_pos_emb,
    eager_attention_forward,
)

from alpamayo_ros.model.stacked_projections import (
    GATE_UP,
    QKV,
    STACKED_GATE_UP,
    STACKED_QKV,
    split_product,
    stacked_weight,
)


def attention_inputs(
    layer: Any, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """hidden (B, T, D) -> query (B, H, T, d), key and value (B, Hkv, T, d), rotated."""
    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    shape = (*x.shape[:-1], -1, attn.head_dim)
    stacked = stacked_weight(attn, QKV, STACKED_QKV)
    if stacked is not None:  # one product (model.stacked_projections)
        sizes = [getattr(attn, name).out_features for name in QKV]
        q, k, v = split_product(x, stacked, sizes)
    else:
        q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
    query = attn.q_norm(q.view(shape)).transpose(1, 2)
    key = attn.k_norm(k.view(shape)).transpose(1, 2)
    value = v.view(shape).transpose(1, 2)
    query, key = apply_rotary_pos_emb(query, key, cos, sin)
    return query, key, value


def layer_output(layer: Any, attended: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """The attention output (B, T, H, d) and the layer's input (B, T, D) -> its output."""
    out = layer.self_attn.o_proj(attended.reshape(*residual.shape[:-1], -1).contiguous())
    hidden = residual + out
    return hidden + _mlp(layer.mlp, layer.post_attention_layernorm(hidden))


def _mlp(mlp: Any, x: torch.Tensor) -> torch.Tensor:
    """Qwen3VLTextMLP.forward, with gate and up as one product when stacked."""
    stacked = stacked_weight(mlp, GATE_UP, STACKED_GATE_UP)
    if stacked is None:
        return mlp(x)
    gate, up = split_product(x, stacked, [mlp.gate_proj.out_features, mlp.up_proj.out_features])
    return mlp.down_proj(mlp.act_fn(gate) * up)


_compiled_inputs = torch.compile(attention_inputs, dynamic=True)
_compiled_output = torch.compile(layer_output, dynamic=True)


def fused_forward(
    layer: Any,
    hidden_states: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    attention_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    past_key_values: Any = None,
    use_cache: bool | None = False,
    **kwargs: Any,
) -> torch.Tensor:
    """Qwen3VLTextDecoderLayer.forward with the compiled halves (see the module text)."""
    attn = layer.self_attn
    cos, sin = position_embeddings
    query, key, value = _compiled_inputs(layer, hidden_states, cos, sin)
    if past_key_values is not None:
        key, value = past_key_values.update(key, value, attn.layer_idx)
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(
        attn.config._attn_implementation, eager_attention_forward
    )
    attended, _ = interface(
        attn, query, key, value, attention_mask,
        dropout=attn.attention_dropout if attn.training else 0.0, scaling=attn.scaling,
        position_ids=position_ids, use_cache=use_cache, **kwargs,
    )  # fmt: skip
    return _compiled_output(layer, attended, hidden_states)


def fuse_decoder_layers(layers: nn.ModuleList) -> None:
    """Give each decoder layer fused_forward (an instance attribute: the module tree, its
    parameters and state_dict are unchanged). For inference only: training keeps the
    layers as loaded (it never calls this)."""
    for layer in layers:
        if not is_fused(layer):  # fused already: kept (graphs captured over it still apply)
            layer.forward = functools.partial(fused_forward, layer)


def is_fused(layer: nn.Module) -> bool:
    forward = layer.__dict__.get("forward")
    return isinstance(forward, functools.partial) and forward.func is fused_forward
