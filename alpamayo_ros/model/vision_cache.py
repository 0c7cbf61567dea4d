"""Vision-tower outputs kept per camera frame between plans.

At 10 Hz with 4 frames per camera spaced by the frame interval, 12 of a plan's 16 frames
were already in the previous plan: their preprocessing and their vision-tower pass are
redone for nothing (the tower is ~60 ms of a released-shape prefill on an H100/H200). The
Qwen3-VL tower encodes each image on its own (attention within the image, positions per
image), so one frame's features do not depend on the other frames of the plan: they can
be kept and reused.

A frame is recognised by object identity: the node's and the replay's frame buffers hand
the same numpy array to every plan that contains the frame. An entry holds a reference to
its array (so its id cannot be reused by another array while the entry lives) and a sparse
fingerprint of its pixels (a grid of 16 x 16 samples), so a buffer that rewrote an array in
place is caught as a miss rather than served stale features.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from alpamayo_ros.core.encoded_image import CameraFrame, EncodedImage


def fingerprint(frame: CameraFrame) -> bytes:
    """A sparse sample of a frame's pixels (a 16 x 16 grid of an (H, W, 3) uint8 array), or
    of an EncodedImage's bytes (never decoded for this)."""
    if isinstance(frame, EncodedImage):
        return frame.fingerprint()
    h, w = frame.shape[:2]
    return np.ascontiguousarray(frame[:: max(1, h // 16), :: max(1, w // 16)]).tobytes()


@dataclass(frozen=True)
class FrameFeatures:
    """One frame's vision-tower outputs: tokens (n, D) for the language model, and the
    deepstack features (one (n, D) per deepstack layer) injected into its early layers."""

    tokens: torch.Tensor
    deepstack: tuple[torch.Tensor, ...]


class VisionFeatureCache:
    """Per-frame vision features, least recently used evicted beyond `capacity` frames."""

    def __init__(self, capacity: int = 32) -> None:
        if capacity < 1:
            raise ValueError(f"vision cache capacity must be >= 1 frame, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[int, tuple[CameraFrame, bytes, FrameFeatures]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, frame: CameraFrame) -> FrameFeatures | None:
        """The features of this very frame array, if kept and its pixels unchanged."""
        entry = self._entries.get(id(frame))
        if entry is None or entry[0] is not frame or entry[1] != fingerprint(frame):
            self.misses += 1
            return None
        self._entries.move_to_end(id(frame))
        self.hits += 1
        return entry[2]

    def put(self, frame: CameraFrame, features: FrameFeatures) -> None:
        self._entries[id(frame)] = (frame, fingerprint(frame), features)
        self._entries.move_to_end(id(frame))
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
