"""Weight quantization of a loaded policy: FP8 for the language model on Hopper/Blackwell.

`quantization: fp8` converts the linear layers of the VLM's language model (the ~7 B
parameters every decoded token reads) to float8 e4m3 with row-wise scales: the prefill's
activations quantized per row on the fly (model.float8: torch._scaled_mm, FP8 matrix
units), decode steps multiplying their activations unquantized by the FP8 weight
(model.fp8_weight_gemv: 1 byte per parameter read, one kernel per product).
`fp8_prefill` converts them for the prefill only: decode steps keep the original weights
(which stay in memory beside the FP8 copy). The vision tower, the LM head and the action
expert stay in the model's dtype: the LM head picks the tokens and the expert writes the
trajectory, so their rounding goes straight into what the car follows. FP8 matrix units need
compute capability 8.9 or newer: anything else is refused with the reason, before any
weight changes.
"""

from __future__ import annotations

from typing import Any

import torch

from alpamayo_ros.model.float8 import to_float8
from alpamayo_ros.model.stacked_projections import drop_replaced_stacks
from alpamayo_ros.planning.settings import QUANTIZATION_CHOICES

QUANTIZATIONS = QUANTIZATION_CHOICES  # the node parameter's choices


def fp8_unavailable(device: torch.device) -> str | None:
    """Why FP8 cannot run on `device` (None when it can)."""
    if device.type != "cuda":
        return f"fp8 needs a CUDA GPU, the model is on {device}"
    if not torch.cuda.is_available():
        return f"fp8 needs a CUDA GPU, and {device} is not available on this machine"
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) < (8, 9):
        name = torch.cuda.get_device_name(device)
        return (
            f"fp8 needs compute capability 8.9 or newer (Ada, Hopper, Blackwell); {name} "
            f"is {major}.{minor}"
        )
    return None


def quantize(policy: Any, quantization: str) -> int:
    """Quantize `policy` (an AlpamayoPolicy) in place; returns how many linear layers were
    converted (0 for "none"). ValueError naming the value for an unknown quantization,
    RuntimeError with the reason when the machine cannot run it or the policy already is.
    Call it before compile_prefill (configure does)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization == "none":
        return 0
    reason = fp8_unavailable(policy.device)
    if reason is not None:
        raise RuntimeError(reason)
    if policy.quantization != "none":
        raise RuntimeError(f"the policy is already quantized ({policy.quantization})")
    language_model = policy.vlm.model.language_model
    count = to_float8(language_model, prefill_only=quantization == "fp8_prefill")
    drop_replaced_stacks(language_model)  # stacked before (stack_projections): now FP8
    policy.quantization = quantization
    return count
