"""FP8 quantization: refused with the reason where it cannot run (GPU-only otherwise)."""

import pytest
import torch

from alpamayo_ros.model.float8 import Float8Linear
from alpamayo_ros.model.quantization import fp8_unavailable, quantize


def test_none_changes_nothing_and_an_unknown_value_is_named(tiny_policy):
    before = {k: v.clone() for k, v in tiny_policy.vlm.model.language_model.state_dict().items()}
    assert quantize(tiny_policy, "none") == 0
    after = tiny_policy.vlm.model.language_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match=r"quantization must be one of .*'int3'"):
        quantize(tiny_policy, "int3")


def test_fp8_on_the_cpu_is_refused_before_any_weight_changes(tiny_policy):
    assert "needs a CUDA GPU" in fp8_unavailable(torch.device("cpu"))
    weight = tiny_policy.vlm.model.language_model.layers[0].mlp.up_proj.weight
    with pytest.raises(RuntimeError, match="fp8 needs a CUDA GPU, the model is on cpu"):
        quantize(tiny_policy, "fp8")
    assert type(weight) is torch.nn.Parameter and tiny_policy.quantization == "none"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp8_converts_the_language_model_linear_layers_only(tiny_checkpoint):
    from alpamayo_ros.model.policy import AlpamayoPolicy

    if fp8_unavailable(torch.device("cuda")):
        pytest.skip(fp8_unavailable(torch.device("cuda")))
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint, dtype="bfloat16", device="cuda")
    assert quantize(policy, "fp8") > 0
    assert isinstance(policy.vlm.model.language_model.layers[0].mlp.up_proj, Float8Linear)
    assert isinstance(policy.expert.layers[0].mlp.up_proj, torch.nn.Linear)
    assert policy.vlm.lm_head.weight.dtype == torch.bfloat16
    with pytest.raises(RuntimeError, match=r"already quantized \(fp8\)"):
        quantize(policy, "fp8_prefill")
