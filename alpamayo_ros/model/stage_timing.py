"""Stage timings of a plan or an answer ("preprocess", "prefill", ...): wall time in ms,
synchronised with the GPU around each stage so that queued kernels count where they ran."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def stage_timer(timings: dict[str, float], stage: str, device: torch.device) -> Iterator[None]:
    """Add the block's wall time (ms) to timings[stage]; on CUDA the device is synchronised
    before and after, so the time is the stage's own, not its launches'."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    timings[stage] = timings.get(stage, 0.0) + 1000.0 * (time.perf_counter() - start)
