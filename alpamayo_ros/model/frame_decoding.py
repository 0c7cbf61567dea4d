"""Camera frames -> (3, H, W) uint8 tensors on the model's device, JPEGs decoded there.

A plan's frames are decoded arrays or EncodedImages (alpamayo_ros.core.encoded_image). On a
CUDA device with torchvision, the encoded ones are decoded in one batch by
torchvision.io.decode_jpeg (nvJPEG): ~20x fewer bytes cross the bus and no CPU core spends
~6 ms per full-HD frame. Elsewhere, or when the batch fails, each is decoded on the CPU as
the replay decodes (OpenCV) and uploaded. nvJPEG's inverse DCT and chroma upsampling are not
libjpeg's: pixels may differ by a few levels from OpenCV's (measured by bench/gpu_suite.py);
the preprocessing after decoding is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from alpamayo_ros.core.encoded_image import EncodedImage

log = logging.getLogger(__name__)


def _torchvision_io() -> Any | None:
    try:
        import torchvision.io  # optional: not importable beside the CPU-only torch wheels
    except Exception:  # ImportError, or a torchvision built for another torch
        return None
    return torchvision.io if hasattr(torchvision.io, "decode_jpeg") else None


def decodes_jpeg_on(device: torch.device | str) -> bool:
    """Whether decode_frames decodes JPEGs on `device` itself (CUDA with torchvision)."""
    return torch.device(device).type == "cuda" and _torchvision_io() is not None


def as_chw(frame: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 numpy or (3, H, W) uint8 torch -> (3, H, W) uint8 torch."""
    if isinstance(frame, torch.Tensor):
        tensor = frame
    elif isinstance(frame, np.ndarray) and frame.ndim == 3:
        tensor = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
    else:
        tensor = torch.as_tensor(np.asarray(frame))
    if tensor.dtype != torch.uint8 or tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(
            f"a frame must be uint8 RGB, (H, W, 3) numpy or (3, H, W) torch; got "
            f"{tuple(tensor.shape)} {tensor.dtype}"
        )
    return tensor


class FrameDecoder:
    """decode_frames with counters: JPEGs decoded on the device, on the CPU, and device
    batches that failed (then decoded on the CPU)."""

    def __init__(self) -> None:
        self.on_device = 0
        self.on_cpu = 0
        self.device_failures = 0

    def __call__(
        self, frames: Sequence[Any], device: torch.device | str = "cpu"
    ) -> list[torch.Tensor]:
        """Frames (decoded (H, W, 3) uint8 RGB numpy, (3, H, W) uint8 torch, or
        EncodedImage) -> (3, h, w) uint8 tensors on `device`, in order."""
        device = torch.device(device)
        out: list[torch.Tensor | None] = [None] * len(frames)
        encoded = [i for i, f in enumerate(frames) if isinstance(f, EncodedImage)]
        if encoded and decodes_jpeg_on(device):
            decoded = self._on_device([frames[i] for i in encoded], device)
            if decoded is not None:
                for i, t in zip(encoded, decoded, strict=True):
                    out[i] = t
                self.on_device += len(encoded)
        for i, f in enumerate(frames):
            if out[i] is None:
                if isinstance(f, EncodedImage):
                    self.on_cpu += 1
                    f = f.decode()
                out[i] = as_chw(f).to(device)
        return [t for t in out if t is not None]

    def _on_device(self, frames: list[EncodedImage], device: torch.device) -> list | None:
        io = _torchvision_io()
        assert io is not None
        data = [torch.frombuffer(bytearray(f.data), dtype=torch.uint8) for f in frames]
        try:
            full = io.decode_jpeg(data, mode=io.ImageReadMode.RGB, device=device)
        except RuntimeError as err:  # nvJPEG refuses some files the CPU decodes
            self.device_failures += 1
            log.warning("JPEG batch not decoded on %s (%s): decoding on the CPU", device, err)
            return None
        crops = []
        for f, t in zip(frames, full, strict=True):
            if tuple(t.shape[1:]) != f.full_size:
                self.device_failures += 1
                log.warning("%r decoded on %s to %s: decoding on the CPU", f, device, t.shape)
                return None
            y0, y1, x0, x1 = f.box
            crops.append(t[:, y0:y1, x0:x1])
        return crops
