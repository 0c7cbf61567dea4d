"""FP8-weight products for a few rows (decode steps): y = (x @ W8^T) * scale in one Triton
kernel that reads each weight once, as 1 byte, and never quantises the activations.

Why: a decode step reads every language-model weight for one token per sequence. In bf16
that is 2 bytes per parameter; quantization "fp8" ran the step as a row-wise FP8 product
(the activation row quantised, then torch._scaled_mm), which on an H200 was slower than
bf16 (8.5 vs 7.5 ms per token, bench/results/h200-2026-11-26.md): a one-row FP8 product
plus its quantisation kernels costs more than the byte it saves. Here the FP8 weight
(float8 e4m3, one float32 scale per output row: model.float8's layout) is converted in
registers and multiplied with the activations as they are (bf16 or float32), accumulated
in float32, the row scales applied at the end: half the bytes of bf16, no extra kernels.

The kernel: output columns in blocks of BLOCK_N, the reduction dimension split in
`split_k(K)` parts (enough thread blocks for a small N), rows padded to 16 for tl.dot (whose
float32 inputs run as TF32 on the tensor cores: bf16 activations and e4m3 weights are
exact in TF32, so nothing is rounded before the float32 accumulation); the parts are summed
by torch (deterministic: no atomics). Block sizes are tuned per (N, K) on the GPU.

`fp8_weight_linear` is a torch custom op (torch.library.triton_op: torch.compile and CUDA
graphs see the kernel) on CUDA with Triton; `reference` is the same arithmetic in torch,
what the op computes on any other device, and what the kernel is tested against on the CPU
(TRITON_INTERPRET=1, test/model/test_fp8_weight_gemv.py).
"""

from __future__ import annotations

from typing import Any

import torch

MAX_ROWS = 16  # rows (tokens x sequences) the kernel takes; more go to the FP8 product


def reference(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (M, K) bf16/float32, weight (N, K) float8 e4m3, scale (1, N) float32 -> (M, N) in
    x's dtype: the float32 product of x and the FP8 weight, times the row scales."""
    out = (x.float() @ weight.float().t()) * scale
    return out.to(x.dtype)


def split_k(k: int) -> int:
    """Parts of the reduction dimension (one per ~2048 inputs), each a multiple of 256."""
    parts = max(1, k // 2048)
    while parts > 1 and (k % parts or (k // parts) % 256):
        parts -= 1
    return parts


try:  # Triton comes with CUDA builds of torch; the CPU wheels have none
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the torch build
    triton = None


if triton is not None:

    @triton.jit
    def fp8_weight_kernel(
        x_ptr, w_ptr, out_ptr, M, N, K, K_PART, stride_xm, stride_wn,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):  # fmt: skip
        """out[part, m, n] = sum over the part's k of x[m, k] * w[n, k], float32."""
        pid_n = tl.program_id(0)
        part = tl.program_id(1)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rm = tl.arange(0, BLOCK_M)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        k_start = part * K_PART
        k_end = tl.minimum(k_start + K_PART, K)  # a block may overhang its part: masked
        for k0 in range(0, K_PART, BLOCK_K):
            rk = k_start + k0 + tl.arange(0, BLOCK_K)
            x = tl.load(
                x_ptr + rm[:, None] * stride_xm + rk[None, :],
                mask=(rm[:, None] < M) & (rk[None, :] < k_end), other=0.0,
            )  # fmt: skip
            w = tl.load(
                w_ptr + rn[None, :] * stride_wn + rk[:, None],
                mask=(rn[None, :] < N) & (rk[:, None] < k_end), other=0.0,
            )  # fmt: skip
            acc += tl.dot(x.to(tl.float32), w.to(tl.float32))
        offs = part * M * N + rm[:, None] * N + rn[None, :]
        tl.store(out_ptr + offs, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))

    CONFIGS = [
        triton.Config({"BLOCK_N": n, "BLOCK_K": k}, num_warps=w, num_stages=s)
        for n, k, w, s in (
            (16, 256, 4, 3), (32, 256, 4, 3), (64, 128, 4, 3), (32, 128, 4, 4),
            (16, 512, 4, 2), (64, 256, 8, 3), (128, 128, 8, 3),
        )
    ]  # fmt: skip
    tuned_kernel: Any = triton.autotune(configs=CONFIGS, key=["N", "K"])(fp8_weight_kernel)

    @torch.library.triton_op("alpamayo::fp8_weight_linear", mutates_args=())
    def fp8_weight_linear(
        x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        """x (M <= MAX_ROWS, K), weight (N, K) float8 e4m3, scale (1, N) -> (M, N)."""
        m, k = x.shape
        n = weight.shape[0]
        parts = split_k(k)
        partial = torch.empty((parts, m, n), device=x.device, dtype=torch.float32)
        x = x.contiguous()

        def grid(meta: dict[str, Any]) -> tuple[int, int]:
            return (triton.cdiv(n, meta["BLOCK_N"]), parts)

        torch.library.wrap_triton(tuned_kernel)[grid](
            x, weight, partial, m, n, k, k // parts, x.stride(0), weight.stride(0),
            BLOCK_M=MAX_ROWS,
        )  # fmt: skip
        return (partial.sum(dim=0) * scale).to(x.dtype)

    @fp8_weight_linear.register_kernel("cpu")
    def _fp8_weight_linear_cpu(x, weight, scale):
        return reference(x, weight, scale)

else:
    fp8_weight_kernel = None

    def fp8_weight_linear(
        x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        """Without Triton: `reference`."""
        return reference(x, weight, scale)


def weight_only(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (..., K) with at most MAX_ROWS rows -> (..., N): the kernel on CUDA with Triton,
    `reference` elsewhere."""
    rows = x.reshape(-1, x.shape[-1])
    if x.is_cuda and triton is not None:
        out = fp8_weight_linear(rows, weight, scale)
    else:
        out = reference(rows, weight, scale)
    return out.reshape(*x.shape[:-1], weight.shape[0])
