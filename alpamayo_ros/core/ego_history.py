"""Ego history: timestamped odometry poses -> the model's past trajectory at t0.

The released model reads 16 past poses at 10 Hz (t0 - 1.5 s ... t0) in the ego frame at t0
(x forward, y left, z up): p_local = R_t0^-1 (p - p_t0), R_local = R_t0^-1 R.
Poses are interpolated (linear in position, slerp in rotation) from a bounded, time-sorted
buffer that accepts messages out of order.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import transforms3d.quaternions as tq


class EgoHistoryUnavailable(RuntimeError):
    """The buffer cannot give a history at the requested time; the message says why."""


@dataclass(frozen=True)
class StampedPose:
    """A pose of the vehicle (base_link) in a fixed frame (odom).

    stamp: seconds; position: (3,) metres; quaternion: (4,) w, x, y, z (unit, not checked
    for sign). Construction rejects non-finite values and zero-norm quaternions.
    """

    stamp: float
    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        if not np.isfinite(self.stamp):
            raise ValueError(f"StampedPose.stamp must be finite, got {self.stamp}")
        if len(self.position) != 3 or not np.all(np.isfinite(self.position)):
            raise ValueError(f"StampedPose.position must be 3 finite numbers, got {self.position}")
        q = np.asarray(self.quaternion, dtype=np.float64)
        if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-6:
            raise ValueError(
                f"StampedPose.quaternion must be 4 finite numbers (w, x, y, z) of non-zero "
                f"norm, got {self.quaternion}"
            )


@dataclass(frozen=True)
class EgoHistorySpec:
    """Sampling of the history and the limits beyond which it is refused.

    num_poses: poses in the history, ending at t0 (release: 16).
    dt: seconds between them (release: 0.1).
    max_gap: largest allowed time between two buffered poses around any sample, seconds.
    max_extrapolation: how far past the newest pose t0 may lie (constant-velocity
        extrapolation), seconds; cameras usually lead odometry by a few tens of ms.
    capacity: poses kept in the buffer (the oldest are dropped).
    speed_window: poses used for the speed estimate at t0 (a quadratic fit).
    """

    num_poses: int = 16
    dt: float = 0.1
    max_gap: float = 0.25
    max_extrapolation: float = 0.15
    capacity: int = 400
    speed_window: int = 6

    def __post_init__(self) -> None:
        if self.num_poses < 2:
            raise ValueError(f"EgoHistorySpec.num_poses must be >= 2, got {self.num_poses}")
        for name in ("dt", "max_gap"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EgoHistorySpec.{name} must be > 0, got {getattr(self, name)}")
        if self.max_extrapolation < 0:
            raise ValueError(
                f"EgoHistorySpec.max_extrapolation must be >= 0, got {self.max_extrapolation}"
            )
        if self.capacity < self.num_poses:
            raise ValueError(
                f"EgoHistorySpec.capacity ({self.capacity}) must be >= num_poses ({self.num_poses})"
            )
        if not 3 <= self.speed_window <= self.num_poses:
            raise ValueError(
                f"EgoHistorySpec.speed_window must be in [3, num_poses], got {self.speed_window}"
            )

    @property
    def offsets(self) -> np.ndarray:
        """(N,) seconds relative to t0, oldest first, ending at 0."""
        return self.dt * np.arange(-(self.num_poses - 1), 1)


@dataclass(frozen=True)
class EgoHistory:
    """The model's ego history at t0.

    t0: seconds; stamps: (N,) seconds of the samples (t0 + offsets);
    xyz: (N, 3) metres and rot: (N, 3, 3), in the ego frame at t0 (last row: origin, identity);
    speed: m/s at t0 along the heading (signed, from a quadratic fit of the last poses);
    pose_t0: the interpolated pose at t0 in the fixed frame (position (3,), quaternion wxyz).
    """

    t0: float
    stamps: np.ndarray
    xyz: np.ndarray
    rot: np.ndarray
    speed: float
    pose_t0: StampedPose


def quat_slerp(q0: np.ndarray, q1: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical interpolation (fraction in [0, 1]; > 1 extrapolates) of wxyz quaternions."""
    q0 = np.asarray(q0, dtype=np.float64) / np.linalg.norm(q0)
    q1 = np.asarray(q1, dtype=np.float64) / np.linalg.norm(q1)
    if np.dot(q0, q1) < 0:  # the shorter arc
        q1 = -q1
    rel = tq.qmult(tq.qinverse(q0), q1)
    return np.asarray(tq.qmult(q0, tq.qpow(rel, fraction)), dtype=np.float64)


class EgoPoseBuffer:
    """Bounded, time-sorted buffer of ego poses; answers history queries at any t0."""

    def __init__(self, spec: EgoHistorySpec | None = None) -> None:
        self.spec = spec or EgoHistorySpec()
        self._stamps: list[float] = []
        self._poses: list[StampedPose] = []

    def __len__(self) -> int:
        return len(self._poses)

    @property
    def latest_stamp(self) -> float | None:
        """Stamp of the newest pose, seconds, or None when empty."""
        return self._stamps[-1] if self._stamps else None

    def add(self, pose: StampedPose) -> None:
        """Insert a pose in time order (a pose with an existing stamp replaces it)."""
        i = bisect.bisect_left(self._stamps, pose.stamp)
        if i < len(self._stamps) and self._stamps[i] == pose.stamp:
            self._poses[i] = pose
            return
        self._stamps.insert(i, pose.stamp)
        self._poses.insert(i, pose)
        excess = len(self._poses) - self.spec.capacity
        if excess > 0:
            del self._stamps[:excess]
            del self._poses[:excess]

    def clear(self) -> None:
        self._stamps.clear()
        self._poses.clear()

    def pose_at(self, t: float) -> StampedPose:
        """The pose at time t (seconds), interpolated or briefly extrapolated.

        Raises EgoHistoryUnavailable when t is before the oldest pose, beyond the newest by
        more than max_extrapolation, or between two poses more than max_gap apart.
        """
        if not self._stamps:
            raise EgoHistoryUnavailable("no ego pose received yet")
        s = self._stamps
        if t < s[0] - 1e-9:
            raise EgoHistoryUnavailable(
                f"ego history too short: need a pose at {t:.3f} s, oldest is {s[0]:.3f} s"
            )
        if t > s[-1]:
            late = t - s[-1]
            if late > self.spec.max_extrapolation + 1e-9:
                raise EgoHistoryUnavailable(
                    f"ego pose too old: newest at {s[-1]:.3f} s is {late:.3f} s before "
                    f"{t:.3f} s (max_extrapolation {self.spec.max_extrapolation} s)"
                )
            if len(s) < 2:
                raise EgoHistoryUnavailable(
                    f"one ego pose only: cannot extrapolate to {t:.3f} s from {s[-1]:.3f} s"
                )
            i = len(s) - 1
        else:
            i = bisect.bisect_left(s, t)
            if s[i] == t:
                return self._poses[i]
        a, b = self._poses[i - 1], self._poses[i]
        gap = b.stamp - a.stamp
        if gap > self.spec.max_gap + 1e-9:
            raise EgoHistoryUnavailable(
                f"gap in ego poses: {gap:.3f} s between {a.stamp:.3f} s and {b.stamp:.3f} s "
                f"(max_gap {self.spec.max_gap} s)"
            )
        f = (t - a.stamp) / gap
        p = (1 - f) * np.asarray(a.position) + f * np.asarray(b.position)
        q = quat_slerp(np.asarray(a.quaternion), np.asarray(b.quaternion), f)
        return StampedPose(t, (p[0], p[1], p[2]), (q[0], q[1], q[2], q[3]))

    def poses_in_ego_frame(self, t0: float, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Poses at t0 + offsets (seconds) in the ego frame at t0.

        Returns xyz (K, 3) metres and rot (K, 3, 3): p_local = R_t0^T (p - p_t0),
        R_local = R_t0^T R. Raises EgoHistoryUnavailable as pose_at does.
        """
        ref = self.pose_at(t0)
        r0 = tq.quat2mat(ref.quaternion)
        p0 = np.asarray(ref.position)
        poses = [self.pose_at(float(t0 + off)) for off in offsets]
        world_xyz = np.array([p.position for p in poses]).reshape(-1, 3)
        xyz = (world_xyz - p0) @ r0  # rows: R0^T (p - p0)
        world_rot = np.array([tq.quat2mat(p.quaternion) for p in poses]).reshape(-1, 3, 3)
        rot = np.einsum("ji,njk->nik", r0, world_rot)
        at_t0 = np.abs(np.asarray(offsets)) < 1e-12
        xyz[at_t0] = 0.0
        rot[at_t0] = np.eye(3)
        return xyz, rot

    def history(self, t0: float) -> EgoHistory:
        """The ego history at t0 (seconds); see EgoHistory. Raises EgoHistoryUnavailable."""
        xyz, rot = self.poses_in_ego_frame(t0, self.spec.offsets)
        return EgoHistory(
            t0=t0,
            stamps=t0 + self.spec.offsets,
            xyz=xyz,
            rot=rot,
            speed=estimate_speed(xyz, self.spec.dt, self.spec.speed_window),
            pose_t0=self.pose_at(t0),
        )

    def future(
        self, t0: float, num_steps: int = 64, dt: float = 0.1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The logged future after t0 (what the driver did), in the ego frame at t0.

        Returns xyz (num_steps, 3) metres and rot (num_steps, 3, 3) at t0 + dt ... t0 + T dt.
        Raises EgoHistoryUnavailable when the log does not reach t0 + T dt.
        """
        end = t0 + num_steps * dt
        newest = self.latest_stamp
        if newest is None or end > newest + 1e-9:
            raise EgoHistoryUnavailable(
                f"logged future too short: need poses up to {end:.3f} s, newest is "
                f"{newest if newest is not None else float('nan'):.3f} s"
            )
        return self.poses_in_ego_frame(t0, dt * np.arange(1, num_steps + 1))


def estimate_speed(xyz: np.ndarray, dt: float, window: int = 6) -> float:
    """Speed at the last sample (m/s; negative when reversing), from a history in the ego
    frame at t0.

    xyz: (N, 3) metres, last row at the origin, samples dt seconds apart. Fits a quadratic
    in time to the distance travelled (summed chords) over the last `window` samples and
    takes its derivative at t0: it averages out odometry noise, follows acceleration, and is
    not biased on curves (chords are within 0.02 % of arcs at 10 Hz).
    """
    pts = np.asarray(xyz, dtype=np.float64)[-window:, :2]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    t = dt * np.arange(-(len(pts) - 1), 1)
    deg = 2 if len(pts) >= 4 else 1
    speed = float(np.polyfit(t, s, deg)[-2])
    moving_backwards = pts[0, 0] > 0.0  # the past lies ahead of the car: it reversed
    return -speed if moving_backwards else speed
