"""A decoder layer's projections of one input as one product (model.stacked_projections):
no second copy of the weights, the same state_dict, transformers' outputs, and the fast
path's plans."""

import numpy as np
import torch
import torch._dynamo
from torch import nn
from torch._dynamo.utils import counters

from alpamayo_ros.model.checkpoint_io import save_checkpoint
from alpamayo_ros.model.fused_layers import fuse_decoder_layers
from alpamayo_ros.model.policy import AlpamayoPolicy

KW = dict(num_samples=2, seed=3, max_reasoning_tokens=8, num_flow_steps=3)


def _layer_inputs(policy, length=29):
    hidden = torch.randn(1, length, policy.config.vlm_config.text_config.hidden_size)
    positions = torch.arange(length)[None, None].expand(3, 1, length)
    return hidden, policy.vlm.model.language_model.rotary_emb(hidden, positions)


def test_stacked_projections_share_the_weights_and_give_transformers_outputs(tiny_checkpoint):
    torch.manual_seed(0)
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    layers = policy.vlm.model.language_model.layers
    hidden, cos_sin = _layer_inputs(policy)
    before = [layer(hidden, cos_sin, attention_mask=None) for layer in layers]
    state = {k: v.clone() for k, v in policy.state_dict().items()}
    count = sum(p.numel() for p in policy.parameters())
    attn, mlp = layers[0].self_attn, layers[0].mlp

    with torch.no_grad():
        assert policy.stack_projections() == 2 * (len(layers) + len(policy.expert.layers))
    assert policy.stack_projections() == 2 * (len(layers) + len(policy.expert.layers))  # kept
    # the parameters are views into the stacked weight: one copy of the bytes
    qkv = attn.stacked_qkv
    assert qkv.shape[0] == sum(
        getattr(attn, n).out_features for n in ("q_proj", "k_proj", "v_proj")
    )
    for name in ("q_proj", "k_proj", "v_proj"):
        assert (
            getattr(attn, name).weight.untyped_storage().data_ptr()
            == qkv.untyped_storage().data_ptr()
        )
    assert (
        mlp.up_proj.weight.untyped_storage().data_ptr()
        == mlp.stacked_gate_up.untyped_storage().data_ptr()
    )
    assert sum(p.numel() for p in policy.parameters()) == count
    # the same state_dict: no new keys (the stacks are not persistent), the same values
    assert policy.state_dict().keys() == state.keys()
    assert all(torch.equal(policy.state_dict()[k], v) for k, v in state.items())
    # transformers' layer outputs, through the stacked products, still one graph for each
    # half of all layers (the stacks' identity checks do not make a graph per layer)
    torch._dynamo.reset()
    counters.clear()
    after = [layer(hidden, cos_sin, attention_mask=None) for layer in layers]
    assert counters["stats"]["unique_graphs"] == 2
    for a, b in zip(before, after, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    # an in-place copy into a parameter (load_state_dict) reaches the stacked product
    with torch.no_grad():
        attn.k_proj.weight.mul_(0.5)
        mlp.gate_proj.weight.mul_(0.5)
    fuse_decoder_layers(layers)  # already fused: kept
    halved = layers[0](hidden, cos_sin, attention_mask=None)
    assert not torch.allclose(halved, after[0], atol=1e-3)
    layers[0].__dict__.pop("forward")  # transformers' own forward on the same parameters
    assert torch.allclose(halved, layers[0](hidden, cos_sin, attention_mask=None), atol=1e-5)


def test_a_replaced_projection_is_used_instead_of_the_stack(tiny_checkpoint):
    """Quantization replaces the linear layers after the fact: the stack must not shadow
    the layer now in place."""
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    layers = policy.vlm.model.language_model.layers
    hidden, cos_sin = _layer_inputs(policy)
    policy.stack_projections()
    attn, mlp = layers[1].self_attn, layers[1].mlp
    replacement = nn.Linear(attn.v_proj.in_features, attn.v_proj.out_features, bias=False)
    up = nn.Linear(mlp.up_proj.in_features, mlp.up_proj.out_features, bias=False)
    attn.v_proj, mlp.up_proj = replacement, up
    fused = layers[1](hidden, cos_sin, attention_mask=None)
    layers[1].__dict__.pop("forward")
    assert torch.allclose(fused, layers[1](hidden, cos_sin, attention_mask=None), atol=1e-5)


def test_a_stacked_policy_plans_as_before_and_saves_the_same_checkpoint(
    tiny_checkpoint, request_factory, tmp_path
):
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    r = request_factory(seed=1, shape=(64, 96))
    runs = [dict(KW), dict(KW, reasoning_ids=[[40, 41, 42, 43]])]
    reference = [policy.plan([r], **kw) for kw in runs]
    policy.stack_projections()
    for engine in ("eager", "static"):
        for kw, ref in zip(runs, reference, strict=True):
            out = policy.plan([r], engine=engine, **kw)
            for a, b in zip(ref.samples[0], out.samples[0], strict=True):
                assert a.reasoning_token_ids == b.reasoning_token_ids
                assert np.abs(a.xyz - b.xyz).max() < 1e-3
    # the parameters are views into one storage per group: saved as the same tensors
    save_checkpoint(policy, policy.config, policy.processor, tmp_path / "saved")
    again = AlpamayoPolicy.from_pretrained(tmp_path / "saved")
    saved = again.state_dict()
    assert saved.keys() == policy.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in policy.state_dict().items())


def test_quantization_after_stacking_drops_the_language_models_stacks(tiny_checkpoint):
    """FP8 replaces the language model's projections: its stacks are forgotten (they would
    keep the bf16 bytes alive and no longer answer for the layers); the expert's stay."""
    from alpamayo_ros.model.float8 import to_float8
    from alpamayo_ros.model.stacked_projections import drop_replaced_stacks, stacked_weight

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    layers = policy.vlm.model.language_model.layers
    hidden, cos_sin = _layer_inputs(policy)
    policy.stack_projections()
    to_float8(policy.vlm.model.language_model, prefill_only=False)
    with torch.no_grad():  # FP8 products have no derivative
        fp8 = layers[0](hidden, cos_sin, attention_mask=None)  # the FP8 layers, not the stack
    assert drop_replaced_stacks(policy) == 2 * len(layers)
    assert drop_replaced_stacks(policy) == 0
    assert not hasattr(layers[0].self_attn, "stacked_qkv")
    assert stacked_weight(policy.expert.layers[0].mlp, ("gate_proj", "up_proj"), "stacked_gate_up")
    layers[0].__dict__.pop("forward")
    with torch.no_grad():
        assert torch.allclose(fp8, layers[0](hidden, cos_sin, attention_mask=None), atol=1e-5)


def test_projections_with_biases_stack_with_their_biases_and_mixed_ones_do_not():
    from alpamayo_ros.model.stacked_projections import (
        GATE_UP,
        QKV,
        STACKED_QKV,
        split_product,
        stack_projections,
        stacked_weight,
    )

    torch.manual_seed(0)

    def layer(bias: bool | list[bool]) -> nn.Module:
        biases = bias if isinstance(bias, list) else [bias] * 3
        attn, mlp = nn.Module(), nn.Module()
        for name, size, b in zip(QKV, (16, 8, 8), biases, strict=True):
            setattr(attn, name, nn.Linear(12, size, bias=b))
        for name in GATE_UP:
            setattr(mlp, name, nn.Linear(12, 20, bias=False))
        out = nn.Module()
        out.self_attn, out.mlp = attn, mlp
        return out

    x = torch.randn(3, 12)
    with_bias, mixed = layer(True), layer([True, False, True])
    expected = [getattr(with_bias.self_attn, n)(x) for n in QKV]
    assert stack_projections(nn.ModuleList([with_bias, mixed])) == 3  # mixed q/k/v: not
    stacked = stacked_weight(with_bias.self_attn, QKV, STACKED_QKV)
    assert stacked is not None and stacked[1] is not None and stacked[1].shape == (32,)
    for a, b in zip(expected, split_product(x, stacked, [16, 8, 8]), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert stacked_weight(mixed.self_attn, QKV, STACKED_QKV) is None
