"""The projections of a decoder layer that read the same input, as one matrix product:
q, k and v (attention input) and gate and up (MLP input).

Why: a decode step multiplies one row by each weight, so each product is a bandwidth-bound
pass over its weight; k_proj and v_proj are 8 MB each in the released shapes (1024 x 4096
bf16), too small for a kernel to reach the card's bandwidth between its start and its tail,
and a layer has 7 such products. On an H200 the compiled decode step took 6.2 ms of GPU
time against a 4.0 ms floor for its bytes (bench/results/h200-2026-11-26.md). Stacked, a
layer has 4 products (qkv, o, gate_up, down) over the same bytes; the expert's 64-row
products (cuBLAS at ~40 % of the bandwidth there) get the same. What it saves on a GPU is
not measured yet (gpu_suite section `stacked_projections`).

How: the stacked weight (and bias) is one tensor per layer, kept as a non-persistent
buffer of the module (`stacked_qkv` on the attention, `stacked_gate_up` on the MLP), and
the original parameters become views into it: no second copy in memory, the same
state_dict and parameter names, and an in-place copy into a parameter (load_state_dict)
reaches the stacked weight (until the module is moved: `.to()` copies the buffer and the
parameters apart, equal but no longer shared). model.fused_layers uses it while the
projections are still the nn.Linear layers it was made from (quantization replaces them:
the stack is then ignored). Inference only; training never calls it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

QKV = ("q_proj", "k_proj", "v_proj")
GATE_UP = ("gate_proj", "up_proj")
STACKED_QKV = "stacked_qkv"
STACKED_GATE_UP = "stacked_gate_up"
_BIAS = "_bias"
_FROM = "_from"


def _stack(module: nn.Module, names: tuple[str, ...], buffer: str) -> bool:
    """Stack module.<names> (nn.Linear of one input size, dtype and device; all with or all
    without bias) into module.<buffer> (and <buffer>_bias), their parameters made views
    into it. False (nothing changed) when they are not such layers."""
    linears = [getattr(module, name, None) for name in names]
    if not all(type(lin) is nn.Linear for lin in linears):
        return False
    weights = [lin.weight for lin in linears]  # type: ignore[union-attr]
    biases = [lin.bias for lin in linears]  # type: ignore[union-attr]
    first = weights[0]
    if any(
        w.shape[1] != first.shape[1] or w.dtype != first.dtype or w.device != first.device
        for w in weights
    ):
        return False
    with_bias = [b is not None for b in biases]
    if any(with_bias) and not all(with_bias):
        return False
    sizes = [w.shape[0] for w in weights]
    with torch.no_grad():
        for params, name in ((weights, buffer), (biases if all(with_bias) else [], buffer + _BIAS)):
            if not params:
                continue
            stacked = torch.cat([p.detach() for p in params])  # one layer's weights: transient
            for p, view in zip(params, stacked.split(sizes), strict=True):
                p.data = view  # the parameter object kept: names, state_dict, optimisers
            module.register_buffer(name, stacked, persistent=False)
    setattr(module, buffer + _FROM, tuple(linears))  # a plain tuple: not submodules
    return True


def stack_projections(layers: nn.ModuleList) -> int:
    """Stack the q/k/v and gate/up projections of every decoder layer in `layers` (see the
    module text); layers stacked already are kept. Returns how many groups are stacked."""
    count = 0
    for layer in layers:
        groups: tuple[tuple[nn.Module, tuple[str, ...], str], ...] = (
            (layer.get_submodule("self_attn"), QKV, STACKED_QKV),
            (layer.get_submodule("mlp"), GATE_UP, STACKED_GATE_UP),
        )
        for module, names, buffer in groups:
            if stacked_weight(module, names, buffer) is not None or _stack(module, names, buffer):
                count += 1
    return count


def drop_replaced_stacks(model: nn.Module) -> int:
    """Forget the stacks inside `model` whose projections were replaced (quantization): the
    stacked weight no longer answers for them, and holding it would keep their original
    bytes in memory. Returns how many were dropped."""
    dropped = 0
    for module in model.modules():
        for buffer, names in ((STACKED_QKV, QKV), (STACKED_GATE_UP, GATE_UP)):
            if getattr(module, buffer, None) is None or stacked_weight(module, names, buffer):
                continue
            for name in (buffer, buffer + _BIAS):
                module._buffers.pop(name, None)
            module.__dict__.pop(buffer + _FROM, None)
            dropped += 1
    return dropped


@contextmanager
def separate_products(model: nn.Module) -> Iterator[int]:
    """Inside the block, the stacks inside `model` are set aside, so the layers run their
    projections' own products on the same weights (the same storage): for measuring what
    stacking saves. Yields how many stacks were set aside; they are back after it."""
    keys = (STACKED_QKV + _FROM, STACKED_GATE_UP + _FROM)
    aside = [(m, k, m.__dict__.pop(k)) for m in model.modules() for k in keys if k in m.__dict__]
    try:
        yield len(aside)
    finally:
        for module, key, value in aside:
            module.__dict__[key] = value


def stacked_weight(
    module: nn.Module, names: tuple[str, ...], buffer: str
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """module.<buffer> (and its bias) while module.<names> are still the layers it was made
    from (quantization, or anything else, may replace them); None otherwise. Read inside
    compiled functions: the checks are attribute lookups and identity tests, which dynamo
    guards on."""
    weight = getattr(module, buffer, None)
    made_from = getattr(module, buffer + _FROM, ())
    if weight is None or len(made_from) != len(names):
        return None
    if not all(getattr(module, n, None) is m for n, m in zip(names, made_from, strict=True)):
        return None
    return weight, getattr(module, buffer + _BIAS, None)


def split_product(
    x: torch.Tensor, stacked: tuple[torch.Tensor, torch.Tensor | None], sizes: list[int]
) -> tuple[torch.Tensor, ...]:
    """x (..., in) times the stacked weight -> the projections' outputs (..., size) each,
    views of one product."""
    weight, bias = stacked
    return torch.nn.functional.linear(x, weight, bias).split(sizes, dim=-1)
