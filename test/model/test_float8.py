"""Row-wise FP8 linear layers (model.float8): the product is the one of the dequantised
operands, prefill_only keeps small blocks on the original weight, and a policy with them
plans, eagerly and compiled (torch._scaled_mm runs on the CPU too)."""

import numpy as np
import pytest
import torch
from torch import nn

from alpamayo_ros.model.float8 import E4M3_MAX, Float8Linear, to_float8


def _dequantised(x: torch.Tensor, layer: Float8Linear) -> torch.Tensor:
    rows = x.reshape(-1, layer.in_features).float()
    scale = rows.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / E4M3_MAX
    xq = (rows / scale).to(torch.float8_e4m3fn).float() * scale
    w = layer.weight_fp8.float() * layer.weight_scale.t()
    return (xq @ w.t()).reshape(*x.shape[:-1], layer.out_features)


def test_the_fp8_product_is_the_dequantised_operands_product():
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(64, 48, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(48, 64, generator=g) * torch.linspace(0.01, 3, 48)[:, None])
    layer = Float8Linear(linear)
    assert layer.weight is None and layer.weight_fp8.dtype == torch.float8_e4m3fn
    x = torch.randn(2, 40, 64, generator=g)
    y = layer(x)
    assert y.shape == (2, 40, 48) and y.dtype == x.dtype
    torch.testing.assert_close(y, _dequantised(x, layer), atol=1e-4, rtol=1e-4)
    exact = linear(x)
    rel = (y - exact).norm() / exact.norm()
    assert 1e-4 < float(rel) < 0.05  # FP8 rounding: present, and small


def test_prefill_only_keeps_small_blocks_on_the_original_weight():
    linear = nn.Linear(32, 32, bias=False)
    layer = Float8Linear(linear, prefill_only=True)
    one = torch.randn(1, 1, 32)  # a decode step
    torch.testing.assert_close(layer(one), linear(one), atol=0, rtol=0)
    many = torch.randn(1, 100, 32)  # a prefill
    torch.testing.assert_close(layer(many), _dequantised(many, layer), atol=1e-4, rtol=1e-4)
    assert not torch.equal(layer(many), linear(many))


def test_decode_steps_take_the_fp8_weight_without_quantising_the_activations():
    """Without prefill_only, blocks of at most 16 rows (a decode step) multiply the
    activations as they are by the FP8 weight (model.fp8_weight_gemv); more rows take
    the FP8 product."""
    g = torch.Generator().manual_seed(1)
    linear = nn.Linear(64, 48, bias=False)
    layer = Float8Linear(linear)
    weight = layer.weight_fp8.float() * layer.weight_scale.t()  # the dequantised weight
    step = torch.randn(6, 1, 64, generator=g)  # 6 sequences, one token each
    torch.testing.assert_close(layer(step), step @ weight.t(), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(layer(step), _dequantised(step, layer), atol=1e-5)
    block = torch.randn(1, 17, 64, generator=g)
    torch.testing.assert_close(layer(block), _dequantised(block, layer), atol=1e-4, rtol=1e-4)


def test_sizes_fp8_cannot_multiply_and_biases_are_refused():
    with pytest.raises(ValueError, match="divisible by 16"):
        Float8Linear(nn.Linear(30, 32, bias=False))
    with pytest.raises(ValueError, match="bias-free"):
        Float8Linear(nn.Linear(32, 32))


def test_a_policy_with_fp8_language_model_plans_eagerly_and_compiled(
    tiny_checkpoint, request_factory
):
    """The language model's linear layers in FP8 (prefill only: decode steps on the
    original weights); the fast path compiles them (projections included) and plans as
    the FP8 eager path does."""
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    r = request_factory(seed=1, shape=(64, 96))
    kw = dict(num_samples=2, seed=3, max_reasoning_tokens=6, num_flow_steps=3, temperature=0.0)
    bf = policy.plan([r], **kw).samples[0]
    n = to_float8(policy.vlm.model.language_model, prefill_only=True)
    assert n == 7 * len(policy.vlm.model.language_model.layers)
    assert isinstance(policy.vlm.lm_head, nn.Linear)  # the LM head stays
    eager = policy.plan([r], **kw).samples[0]
    for a, b in zip(bf, eager, strict=True):
        assert np.isfinite(b.xyz).all()
        assert np.abs(a.xyz - b.xyz).max() > 0  # the prefill did run in FP8
    policy.configure(engine="fast")
    from alpamayo_ros.model.fused_layers import is_fused

    assert is_fused(policy.vlm.model.language_model.layers[0])  # projections compiled with it
    fast = policy.plan([r], **kw).samples[0]
    for a, b in zip(eager, fast, strict=True):
        assert a.reasoning_token_ids == b.reasoning_token_ids
        assert np.abs(a.xyz - b.xyz).max() < 1e-2


def test_a_policy_with_fp8_decode_steps_plans_eagerly_and_compiled(
    tiny_checkpoint, request_factory
):
    """quantization fp8: no original weights kept, so decode steps run on the FP8 weights
    (model.fp8_weight_gemv; its torch reference here); compiled as eager."""
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    r = request_factory(seed=2, shape=(64, 96))
    kw = dict(num_samples=2, seed=3, max_reasoning_tokens=6, num_flow_steps=3, temperature=0.0)
    to_float8(policy.vlm.model.language_model, prefill_only=False)
    layer = policy.vlm.model.language_model.layers[0].mlp.down_proj
    assert isinstance(layer, Float8Linear) and layer.weight is None
    eager = policy.plan([r], **kw).samples[0]
    policy.configure(engine="fast")
    fast = policy.plan([r], **kw).samples[0]
    for a, b in zip(eager, fast, strict=True):
        assert np.isfinite(b.xyz).all() and len(a.reasoning_token_ids) == 6
        assert a.reasoning_token_ids == b.reasoning_token_ids
        assert np.abs(a.xyz - b.xyz).max() < 1e-2
