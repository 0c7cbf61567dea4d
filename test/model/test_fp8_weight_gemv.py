"""The FP8-weight kernel for decode steps (model.fp8_weight_gemv), run by Triton's
interpreter on the CPU (skipped where Triton is not installed): equal to the torch
reference for the shapes and splits the language model has, ragged ones included."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alpamayo_ros.model.fp8_weight_gemv import MAX_ROWS, reference, split_k, weight_only

REPO = Path(__file__).resolve().parents[2]

KERNEL_CHECK = """
import sys, torch, triton
from alpamayo_ros.model.fp8_weight_gemv import fp8_weight_kernel, reference, split_k
torch.manual_seed(0)
worst = 0.0
# (rows, out, in, BLOCK_N, BLOCK_K): one token; 6 samples over a split reduction; 16 rows
# with a ragged out size; a part of 2304 that BLOCK_K 512 overhangs; float32 activations
for m, n, k, bn, bk, dtype in [
    (1, 96, 512, 32, 128, torch.bfloat16), (6, 64, 4096, 16, 512, torch.bfloat16),
    (16, 40, 768, 16, 256, torch.bfloat16), (1, 32, 4608, 16, 512, torch.bfloat16),
    (3, 48, 1024, 32, 256, torch.float32),
]:
    x = torch.randn(m, k).to(dtype)
    w = torch.randn(n, k) * torch.linspace(0.01, 2.0, n)[:, None]
    scale = w.abs().amax(1, keepdim=True) / 448
    wq = (w / scale).to(torch.float8_e4m3fn)
    scale = scale.t().contiguous()
    parts = split_k(k)
    partial = torch.full((parts, m, n), float("nan"))
    fp8_weight_kernel[(triton.cdiv(n, bn), parts)](
        x, wq, partial, m, n, k, k // parts, x.stride(0), wq.stride(0),
        BLOCK_M=16, BLOCK_N=bn, BLOCK_K=bk)
    y = (partial.sum(0) * scale).to(dtype)
    ref = reference(x, wq, scale)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    worst = max(worst, float(((y.float() - ref.float()).abs() / ref.float().abs().max()).max()))
print(worst)
"""


def test_the_kernel_equals_the_reference_in_triton_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", KERNEL_CHECK], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.split()[-1]) < 1e-2  # bf16 output rounding at most


def test_the_reference_is_the_float32_product_with_the_row_scales():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(24, 64, generator=g)
    scale = (w.abs().amax(1, keepdim=True) / 448).t().contiguous()
    wq = (w / scale.t()).to(torch.float8_e4m3fn)
    x = torch.randn(2, 3, 64, generator=g, dtype=torch.float32)
    y = weight_only(x, wq, scale)
    assert y.shape == (2, 3, 24)
    torch.testing.assert_close(y, x @ (wq.float() * scale.t()).t(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(reference(x.reshape(6, 64), wq, scale), y.reshape(6, 24))
    assert MAX_ROWS == 16


@pytest.mark.parametrize(("k", "parts"), [(512, 1), (4096, 2), (12288, 6), (4608, 2), (4864, 1)])
def test_the_reduction_splits_in_parts_of_whole_256_blocks(k, parts):
    assert split_k(k) == parts
    assert (k % parts == 0 and (k // parts) % 256 == 0) or parts == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_cuda_op_equals_the_reference():
    torch.manual_seed(0)
    for m, n, k in [(1, 4096, 4096), (6, 1024, 4096), (16, 4096, 12288)]:
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, k, device="cuda")
        scale = w.abs().amax(1, keepdim=True) / 448
        wq = (w / scale).to(torch.float8_e4m3fn)
        scale = scale.t().contiguous()
        y = weight_only(x, wq, scale)
        ref = reference(x, wq, scale)
        assert float((y.float() - ref.float()).abs().max() / ref.float().abs().max()) < 1e-2
