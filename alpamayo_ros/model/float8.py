"""Row-wise FP8 linear layers on torch._scaled_mm, which torch.compile traces with dynamic
shapes (so a compiled block fuses each activation's quantisation into the kernel before it).

Why not torchao (the kept library for FP8, used here until this was measured): with
torch 2.11 and torchao 0.18 on an H200, compiling a block whose weights are torchao Float8
tensors fails in dynamo ("Polyfill handler ... does not have a traceable function"), and
torchao's eager path (its activation quantisation as separate kernels) made the prefill
and the decode slower than bf16 (bench/results/h200-2026-11-26.md).

Scheme (the same as torchao's Float8DynamicActivationFloat8WeightConfig with PerRow): the
weight (out, in) stored as float8 e4m3 with one float32 scale per output row (absolute
maximum / 448); each activation row quantised the same way on the fly; the product in
float8 with both scales applied, output in the activation's dtype.

Blocks of at most 16 rows (decode steps; prefill_only off) take the FP8 weight without
quantising the activations (model.fp8_weight_gemv: one kernel reading 1 byte per weight).

prefill_only: the layer keeps its original weight too and uses it for blocks of at most
`dense_rows` rows (a decode step, the expert's 64 action tokens never reach these layers):
FP8's matrix units pay off on the prefill's ~3000 rows, while a one-row step reads the
weight either way (and FP8 adds a quantisation per step). Costs the bf16 weight's memory
in addition (~1 byte per parameter more).
"""

from __future__ import annotations

import torch
from torch import nn

from alpamayo_ros.model.fp8_weight_gemv import MAX_ROWS as WEIGHT_ONLY_ROWS
from alpamayo_ros.model.fp8_weight_gemv import weight_only

E4M3_MAX = 448.0  # largest finite float8 e4m3 value
DENSE_ROWS = 16  # prefill_only: blocks of at most this many rows use the original weight


def _rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) -> (M, K) float8 e4m3 and (M, 1) float32 scales with x ~ q * scale."""
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX
    q = (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q, scale


class Float8Linear(nn.Module):
    """A bias-free nn.Linear with its weight in row-wise float8 (see the module text)."""

    weight_fp8: torch.Tensor
    weight_scale: torch.Tensor

    def __init__(self, linear: nn.Linear, prefill_only: bool = False) -> None:
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Float8Linear takes bias-free linear layers")
        self.in_features: int = linear.in_features
        self.out_features: int = linear.out_features
        if self.in_features % 16 or self.out_features % 16:
            raise ValueError(
                f"FP8 matrix products need sizes divisible by 16, got {linear.weight.shape}"
            )
        q, scale = _rowwise(linear.weight.detach())
        self.register_buffer("weight_fp8", q)  # (out, in)
        self.register_buffer("weight_scale", scale.t().contiguous())  # (1, out)
        self.weight: nn.Parameter | None = linear.weight if prefill_only else None
        self.dense_rows: int = DENSE_ROWS if prefill_only else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if self.weight is not None and rows.shape[0] <= self.dense_rows:
            return nn.functional.linear(x, self.weight)
        if self.weight is None and rows.shape[0] <= WEIGHT_ONLY_ROWS:
            # decode steps: the FP8 weight times the activations as they are (one kernel)
            return weight_only(x, self.weight_fp8, self.weight_scale)
        q, scale = _rowwise(rows)
        y = torch._scaled_mm(
            q, self.weight_fp8.t(), scale_a=scale, scale_b=self.weight_scale, out_dtype=x.dtype
        )
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"prefill_only={self.weight is not None}"
        )


def to_float8(module: nn.Module, prefill_only: bool = False) -> int:
    """Replace every nn.Linear inside `module` by a Float8Linear, in place; returns how
    many were replaced."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, Float8Linear(child, prefill_only))
            count += 1
        else:
            count += to_float8(child, prefill_only)
    return count
