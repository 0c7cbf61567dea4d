"""Qwen-VL image preprocessing in plain torch: camera frames -> pixel_values and
image_grid_thw, equal to what the released pipeline computes with transformers' torchvision
("fast") Qwen2-VL image processor, without needing torchvision.

The steps are the torchvision backend's, in its order and dtypes:
  1. resize each uint8 frame to smart_resize's size (a multiple of patch_size * merge_size
     inside the pixel budget) with antialiased bicubic interpolation: on the CPU torch's
     native uint8 kernel (torchvision hands uint8 to it there); on a GPU in float32, then
     clamped to [0, 255] and rounded back to uint8 (torchvision's GPU path);
  2. rescale and normalise fused: (x - mean / r) / (std / r) in float32, r = rescale_factor;
  3. patchify: (N, C, H, W) -> (N, grid_h * grid_w, C * temporal_patch * patch * patch),
     patches in 2x2 merge order, each frame repeated over the temporal patch.
One batched pass per frame size, on whatever device the frames are on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

from alpamayo_ros.model.frame_decoding import FrameDecoder

BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, the only resampling the release uses


def _whole(value: Any, name: str) -> int:
    """`value` of the setting `name`: an integer >= 1, else ValueError naming both."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"image processor setting {name} must be an integer >= 1, got {value!r}")
    return value


def _three(processor: Any, key: str, positive: bool = False, count: int = 3) -> tuple[float, ...]:
    """The processor's setting `key`: `count` finite numbers (count 1: a number), > 0 when
    `positive`; else ValueError naming the setting and the value."""
    value = getattr(processor, key, None)
    values = [value] if count == 1 else value
    if (
        not isinstance(values, list | tuple)
        or len(values) != count
        or not all(
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and (v > 0 or not positive)
            for v in values
        )
    ):
        what = "a number" if count == 1 else f"{count} numbers"
        raise ValueError(f"image processor setting {key} must be {what}"
                         f"{' > 0' if positive else ''}, got {value!r}")  # fmt: skip
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class ImagePreprocessor:
    """Settings of Qwen-VL image preprocessing (Qwen3-VL: patch 16, merge 2, temporal 2,
    mean = std = 0.5; the release: 163840 to 196608 pixels per frame)."""

    min_pixels: int
    max_pixels: int
    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"ImagePreprocessor needs 0 < min_pixels <= max_pixels, got {self.min_pixels}, "
                f"{self.max_pixels}"
            )
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or 0 in self.image_std:
            raise ValueError(
                f"ImagePreprocessor image_mean/image_std must be 3 values (std non-zero), got "
                f"{self.image_mean}, {self.image_std}"
            )

    @classmethod
    def from_image_processor(cls, processor: Any) -> ImagePreprocessor:
        """The settings of a transformers Qwen2-VL image processor (either backend); a
        setting this module does not implement, or a value it cannot use, raises ValueError
        naming the setting and the value."""
        for flag in ("do_resize", "do_rescale", "do_normalize"):
            value = getattr(processor, flag, True)
            if value is not True:
                raise ValueError(f"image processor setting {flag} = {value!r} is not supported "
                                 "(only true)")  # fmt: skip
        resample = getattr(processor, "resample", BICUBIC)
        if getattr(resample, "value", resample) != BICUBIC or isinstance(resample, bool):
            raise ValueError(f"image processor setting resample = {resample!r} is not bicubic (3)")
        size = processor.size
        size = size if isinstance(size, dict) else vars(size)
        if (
            not isinstance(size, dict)
            or not size.get("shortest_edge")
            or not size.get("longest_edge")
        ):
            raise ValueError(
                f"image processor setting size = {size!r} lacks shortest_edge/longest_edge"
            )
        low = _whole(size["shortest_edge"], "size.shortest_edge")  # the pixel budget
        high = _whole(size["longest_edge"], "size.longest_edge")
        if low > high:
            raise ValueError(f"image processor setting size.shortest_edge = {low} is above "
                             f"size.longest_edge = {high} (min, max pixels a frame)")  # fmt: skip
        return cls(
            min_pixels=low,
            max_pixels=high,
            patch_size=_whole(getattr(processor, "patch_size", None), "patch_size"),
            temporal_patch_size=_whole(
                getattr(processor, "temporal_patch_size", None), "temporal_patch_size"
            ),
            merge_size=_whole(getattr(processor, "merge_size", None), "merge_size"),
            image_mean=_three(processor, "image_mean"),
            image_std=_three(processor, "image_std", positive=True),
            rescale_factor=_three(processor, "rescale_factor", positive=True, count=1)[0],
        )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) pixels a frame of this size is resized to."""
        h, w = smart_resize(
            height, width, self.patch_size * self.merge_size, self.min_pixels, self.max_pixels
        )
        return int(h), int(w)

    def tokens_per_frame(self, height: int, width: int) -> int:
        """Vision tokens a frame of this size becomes (after the merge)."""
        h, w = self.output_size(height, width)
        return (h // self.patch_size) * (w // self.patch_size) // self.merge_size**2

    def grid(self, height: int, width: int) -> list[int]:
        """image_grid_thw of one frame: [1, patches down, patches across] after resize."""
        h, w = self.output_size(height, width)
        return [1, h // self.patch_size, w // self.patch_size]

    # -- steps --------------------------------------------------------------------------
    def resize(self, frames: torch.Tensor, uint8_kernel: bool | None = None) -> torch.Tensor:
        """frames (N, 3, H, W) uint8 -> (N, 3, h, w) uint8 (see the module docstring).
        uint8_kernel: None picks as torchvision does (the native uint8 kernel on the CPU,
        the float32 path elsewhere); False forces the float32 path (tests of the GPU path)."""
        height, width = frames.shape[-2:]
        size = self.output_size(height, width)
        if size == (height, width):
            return frames
        frames = frames.contiguous()
        if uint8_kernel is None:
            uint8_kernel = frames.device.type == "cpu"
        if uint8_kernel:
            return F.interpolate(frames, size, mode="bicubic", align_corners=False, antialias=True)
        out = F.interpolate(
            frames.float(), size, mode="bicubic", align_corners=False, antialias=True
        )
        return out.clamp_(0, 255).round_().to(torch.uint8)

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) uint8 -> float32, rescale and normalisation fused as the release's
        processor fuses them (mean and std divided by rescale_factor, in float32)."""
        scale = 1.0 / self.rescale_factor
        mean = (torch.tensor(self.image_mean, device=frames.device) * scale).view(-1, 1, 1)
        std = (torch.tensor(self.image_std, device=frames.device) * scale).view(-1, 1, 1)
        return (frames.to(torch.float32) - mean) / std

    def patchify(self, images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """(N, C, h, w) -> patches (N, grid_h * grid_w, C * T * P * P), grid_h, grid_w."""
        n, c, h, w = images.shape
        p, m, t = self.patch_size, self.merge_size, self.temporal_patch_size
        gh, gw = h // p, w // p
        patches = images.reshape(n, c, gh // m, m, p, gw // m, m, p)
        # (N, gh/m, gw/m, m, m, C, P, P): merge groups together, then channel and pixels
        patches = patches.permute(0, 2, 5, 3, 6, 1, 4, 7)
        patches = patches.unsqueeze(6).expand(-1, -1, -1, -1, -1, -1, t, -1, -1)
        return patches.reshape(n, gh * gw, c * t * p * p), gh, gw

    # -- all together -------------------------------------------------------------------
    def __call__(
        self,
        frames: Sequence[Any],
        device: torch.device | str = "cpu",
        decoder: FrameDecoder | None = None,
    ) -> dict[str, torch.Tensor]:
        """Frames (each (H, W, 3) uint8 RGB numpy, (3, H, W) uint8 torch, or EncodedImage,
        decoded by `decoder`: model.frame_decoding) -> pixel_values (sum of patches,
        C * T * P * P) float32 and image_grid_thw (N, 3) long, in frame order; frames of one
        size are processed as one batch on `device`."""
        tensors = (decoder or FrameDecoder())(frames, device)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(tensors):
            by_size.setdefault((t.shape[1], t.shape[2]), []).append(i)
        patches: list[torch.Tensor] = [torch.empty(0)] * len(tensors)
        grids: list[list[int]] = [[]] * len(tensors)
        for indices in by_size.values():
            batch = self.normalise(self.resize(torch.stack([tensors[i] for i in indices])))
            flat, gh, gw = self.patchify(batch)
            for k, i in enumerate(indices):
                patches[i], grids[i] = flat[k], [1, gh, gw]
        return {
            "pixel_values": torch.cat(patches, dim=0),
            "image_grid_thw": torch.tensor(grids, dtype=torch.long, device=device),
        }
