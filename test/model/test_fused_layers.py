"""Decoder layers with their elementwise work compiled around the attention
(model.fused_layers): transformers' layer outputs, and one graph for all layers."""

import numpy as np
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from alpamayo_ros.model.fused_layers import fuse_decoder_layers, is_fused
from alpamayo_ros.model.policy import AlpamayoPolicy

KW = dict(num_samples=2, seed=3, max_reasoning_tokens=8, num_flow_steps=3)


def test_fused_layers_give_transformers_outputs_with_one_graph_per_half(
    tiny_checkpoint, request_factory
):
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    layers = policy.vlm.model.language_model.layers
    assert len(layers) >= 2
    r = request_factory(seed=1, shape=(64, 96))
    forced = dict(KW, reasoning_ids=[[40, 41, 42, 43, 44]])
    reference = [policy.plan([r], **KW), policy.plan([r], **forced)]
    # a layer alone, on a prefill-like block of hidden states
    hidden = torch.randn(1, 37, policy.config.vlm_config.text_config.hidden_size)
    rotary = policy.vlm.model.language_model.rotary_emb
    positions = torch.arange(37)[None, None].expand(3, 1, 37)
    cos_sin = rotary(hidden, positions)
    before = layers[1](hidden, cos_sin, attention_mask=None)
    state = {k: v.clone() for k, v in policy.state_dict().items()}

    torch._dynamo.reset()
    counters.clear()
    fuse_decoder_layers(layers)
    assert all(is_fused(layer) for layer in layers)
    after = [layer(hidden, cos_sin, attention_mask=None) for layer in layers]
    assert torch.allclose(before, after[1], atol=1e-5)
    # both halves compiled once, shared by all layers (not a graph per layer)
    assert counters["stats"]["unique_graphs"] == 2
    fused = [policy.plan([r], **KW), policy.plan([r], **forced)]
    for ref, out in zip(reference, fused, strict=True):
        for a, b in zip(ref.samples[0], out.samples[0], strict=True):
            assert a.reasoning_token_ids == b.reasoning_token_ids
            assert np.abs(a.xyz - b.xyz).max() < 1e-3
    # the module tree is untouched: same parameters, same state_dict
    assert policy.state_dict().keys() == state.keys()
    assert all(torch.equal(policy.state_dict()[k], v) for k, v in state.items())
