"""Multi-camera frame buffer: bounded per-camera rings, assembled into the model's frame set.

The released model reads 4 cameras x 4 frames at 10 Hz (t0 - 0.3 s ... t0), camera-major,
in a fixed camera order. Images are stored as given (decoded arrays or compressed bytes):
the buffer never looks inside them.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from alpamayo_ros.core.cameras import ALPAMAYO1_CAMERAS

# The released Alpamayo 1 model's cameras, in its input order (dataset indices 0, 1, 2, 6).
RELEASED_CAMERAS: tuple[str, ...] = ALPAMAYO1_CAMERAS


class FramesUnavailable(RuntimeError):
    """No complete frame set at t0; `problems` maps each failing camera to the reason."""

    def __init__(self, t0: float, problems: dict[str, str]) -> None:
        self.t0 = t0
        self.problems = dict(problems)
        detail = "; ".join(f"{cam}: {why}" for cam, why in self.problems.items())
        super().__init__(f"no complete frame set at t0={t0:.3f} s ({detail})")


@dataclass(frozen=True)
class FrameBufferSpec:
    """Which frames make a set and how much is kept.

    cameras: camera names in the model's input order.
    num_frames: frames per camera, oldest first, ending at t0 (release: 4).
    frame_dt: seconds between a camera's frames in the set (release: 0.1).
    tolerance: largest |stamp - wanted time| accepted for a frame, seconds.
    capacity: frames kept per camera (the oldest are dropped).
    """

    cameras: tuple[str, ...] = RELEASED_CAMERAS
    num_frames: int = 4
    frame_dt: float = 0.1
    tolerance: float = 0.05
    capacity: int = 16

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("FrameBufferSpec.cameras must name at least one camera")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"FrameBufferSpec.cameras has duplicates: {self.cameras}")
        if self.num_frames < 1:
            raise ValueError(f"FrameBufferSpec.num_frames must be >= 1, got {self.num_frames}")
        if not self.frame_dt > 0:
            raise ValueError(f"FrameBufferSpec.frame_dt must be > 0, got {self.frame_dt}")
        if not 0 <= self.tolerance < self.frame_dt:
            raise ValueError(
                f"FrameBufferSpec.tolerance must be in [0, frame_dt={self.frame_dt}), "
                f"got {self.tolerance}"
            )
        if self.capacity < self.num_frames:
            raise ValueError(
                f"FrameBufferSpec.capacity ({self.capacity}) must be >= num_frames "
                f"({self.num_frames})"
            )

    @property
    def offsets(self) -> np.ndarray:
        """(F,) seconds relative to t0, oldest first, ending at 0."""
        return self.frame_dt * np.arange(-(self.num_frames - 1), 1)


@dataclass(frozen=True)
class FrameSet:
    """A complete set of frames at t0.

    cameras: names in model order; images[c][f]: camera c's frame f (oldest first);
    stamps: (C, F) seconds of the frames actually used.
    """

    t0: float
    cameras: tuple[str, ...]
    images: tuple[tuple[Any, ...], ...]
    stamps: np.ndarray

    def flat(self) -> list[Any]:
        """The C*F images, camera-major (the order the model reads them)."""
        return [img for cam in self.images for img in cam]


class _CameraRing:
    """One camera's frames, sorted by stamp, at most `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.stamps: deque[float] = deque(maxlen=capacity)
        self.images: deque[Any] = deque(maxlen=capacity)

    def add(self, stamp: float, image: Any) -> None:
        if self.stamps and stamp <= self.stamps[-1]:
            # Out of order (rare): rebuild in order; rings are small.
            pairs = sorted(
                [*zip(self.stamps, self.images, strict=True), (stamp, image)], key=lambda p: p[0]
            )
            dedup: dict[float, Any] = dict(pairs)
            items = sorted(dedup.items())[-self.capacity :]
            self.stamps.clear()
            self.images.clear()
            for s, img in items:
                self.stamps.append(s)
                self.images.append(img)
            return
        self.stamps.append(stamp)
        self.images.append(image)

    def nearest(self, t: float) -> int | None:
        if not self.stamps:
            return None
        s = list(self.stamps)
        i = bisect.bisect_left(s, t)
        cands = [j for j in (i - 1, i) if 0 <= j < len(s)]
        return min(cands, key=lambda j: abs(s[j] - t))


class FrameBuffer:
    """Per-camera bounded rings of (stamp, image); assembles frame sets at a given t0."""

    def __init__(self, spec: FrameBufferSpec | None = None) -> None:
        self.spec = spec or FrameBufferSpec()
        self._rings = {cam: _CameraRing(self.spec.capacity) for cam in self.spec.cameras}

    def add(self, camera: str, stamp: float, image: Any) -> None:
        """Store a frame; raises KeyError naming the camera if it is not configured."""
        if camera not in self._rings:
            raise KeyError(f"unknown camera {camera!r}; configured: {list(self.spec.cameras)}")
        if not np.isfinite(stamp):
            raise ValueError(f"frame stamp must be finite, got {stamp} for camera {camera!r}")
        self._rings[camera].add(float(stamp), image)

    def clear(self) -> None:
        """Forget every frame (after the clock jumped back)."""
        self._rings = {cam: _CameraRing(self.spec.capacity) for cam in self.spec.cameras}

    def __len__(self) -> int:
        """Frames held, all cameras together."""
        return sum(len(r.stamps) for r in self._rings.values())

    def latest_stamps(self) -> dict[str, float | None]:
        """Newest stamp per camera (None for a camera with no frame yet)."""
        return {c: (r.stamps[-1] if r.stamps else None) for c, r in self._rings.items()}

    def newest_complete_t0(self, at_most: float | None = None) -> float | None:
        """The newest t0 at which every camera has a frame: the oldest of the cameras'
        newest stamps, or None while a camera has none. With `at_most` (seconds) only frames
        stamped at or before it count (a clock the newest frames are ahead of)."""
        newest: list[float] = []
        for ring in self._rings.values():
            stamps = ring.stamps
            if at_most is None:
                stamp = stamps[-1] if stamps else None
            else:
                i = bisect.bisect_right(stamps, at_most)
                stamp = stamps[i - 1] if i else None
            if stamp is None:
                return None
            newest.append(stamp)
        return min(newest)

    def assemble(self, t0: float) -> FrameSet:
        """Frames at t0 + offsets for every camera, each within the tolerance.

        Raises FramesUnavailable naming every camera that has no frame, or whose nearest
        frame to a wanted time is off by more than the tolerance (late or missing).
        """
        problems: dict[str, str] = {}
        images: list[tuple[Any, ...]] = []
        stamps = np.zeros((len(self.spec.cameras), self.spec.num_frames))
        for c, cam in enumerate(self.spec.cameras):
            ring = self._rings[cam]
            if not ring.stamps:
                problems[cam] = "no frame received"
                continue
            row: list[Any] = []
            for f, off in enumerate(self.spec.offsets):
                want = t0 + off
                j = ring.nearest(want)
                assert j is not None
                err = ring.stamps[j] - want
                if abs(err) > self.spec.tolerance + 1e-9:
                    if ring.stamps[-1] < want:
                        problems[cam] = (
                            f"late: newest frame {ring.stamps[-1]:.3f} s is "
                            f"{want - ring.stamps[-1]:.3f} s before {want:.3f} s"
                        )
                    else:
                        problems[cam] = (
                            f"missing frame near {want:.3f} s (nearest off {err:+.3f} s)"
                        )
                    break
                row.append(ring.images[j])
                stamps[c, f] = ring.stamps[j]
            else:
                images.append(tuple(row))
        if problems:
            raise FramesUnavailable(t0, problems)
        return FrameSet(t0=t0, cameras=self.spec.cameras, images=tuple(images), stamps=stamps)
