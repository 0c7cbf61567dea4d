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
    """

    num_poses: int = 16
    dt: float = 0.1
    max_gap: float = 0.25
    max_extrapolation: float = 0.15
    capacity: int = 400

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

    @property
    def offsets(self) -> np.ndarray:
        """(N,) seconds relative to t0, oldest first, ending at 0."""
        return self.dt * np.arange(-(self.num_poses - 1), 1)


@dataclass(frozen=True)
class EgoHistory:
    """The model's ego history at t0.

    t0: seconds; stamps: (N,) seconds of the samples (t0 + offsets);
    xyz: (N, 3) metres and rot: (N, 3, 3), in the ego frame at t0 (last row: origin, identity);
    speed: m/s at t0 along the heading (signed; estimate_speed, the official estimator):
        what the model reads and integrates its trajectory from;
    pose_t0: the interpolated pose at t0 in the fixed frame (position (3,), quaternion wxyz).
    """

    t0: float
    stamps: np.ndarray
    xyz: np.ndarray
    rot: np.ndarray
    speed: float
    pose_t0: StampedPose

    @property
    def travel_speed(self) -> float:
        """m/s for decisions (stop plans, the controller): `speed`, never below 0 unless
        the history shows the car reversing; see travel_speed()."""
        return travel_speed(self.xyz, self.speed)


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
            speed=estimate_speed(xyz, rot, self.spec.dt),
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


# The official estimator's regularisation (UnicycleAccelCurvatureActionSpace defaults of
# NVlabs/alpamayo: v_lambda 1e-6 on the third difference, v_ridge 1e-4).
SPEED_SMOOTHING = 1e-6
SPEED_RIDGE = 1e-4


def unwrap_yaw(yaw: np.ndarray) -> np.ndarray:
    """(N,) rad made continuous: each step wrapped into [-pi, pi] and summed from the first."""
    yaw = np.asarray(yaw)
    steps = np.diff(yaw)
    steps = np.arctan2(np.sin(steps), np.cos(steps))
    return np.concatenate([yaw[:1], yaw[0] + np.cumsum(steps)])


def third_difference(n: int, dtype: type = np.float64) -> np.ndarray:
    """(n - 3, n) matrix of the third finite difference [-1, 3, -3, 1]."""
    d: np.ndarray = np.zeros((max(n - 3, 0), n), dtype=dtype)
    for k, c in enumerate((-1.0, 3.0, -3.0, 1.0)):
        d[np.arange(max(n - 3, 0)), np.arange(max(n - 3, 0)) + k] = c
    return d


def estimate_speeds(
    xy: np.ndarray,
    heading: np.ndarray,
    dt: float,
    smoothing: float = SPEED_SMOOTHING,
    ridge: float = SPEED_RIDGE,
    dtype: type = np.float32,
) -> np.ndarray:
    """Speed at every sample (N,) m/s of a path, the official way (NVlabs/alpamayo
    action_space/utils.py dxy_theta_to_v_without_v0).

    xy: (N, 2) metres; heading: (N,) rad (unwrapped); dt: s between samples. The trapezoid
    rule ties consecutive speeds to each step, dp_i = dt/2 (v_i u_i + v_i+1 u_i+1) with
    u = (cos, sin) of the heading; the speeds solve that in least squares with a third-order
    smoothness term (smoothing / dt^6) and a ridge, by Cholesky. Computed in `dtype`
    (float32, as the official code computes it on float32 histories).
    """
    xy = np.asarray(xy, dtype=dtype)
    theta: np.ndarray = np.asarray(heading, dtype=dtype)
    n = len(xy)
    g = (2.0 / dt) * np.diff(xy, axis=0).astype(dtype)  # (N-1, 2)
    a: np.ndarray = np.zeros((2 * (n - 1), n), dtype=dtype)
    rows, cols = np.arange(n - 1), np.arange(n - 1)
    cos, sin = np.cos(theta), np.sin(theta)
    a[2 * rows, cols], a[2 * rows, cols + 1] = cos[:-1], cos[1:]
    a[2 * rows + 1, cols], a[2 * rows + 1, cols + 1] = sin[:-1], sin[1:]
    d3 = third_difference(n, dtype)
    lhs = a.T @ a + dtype(smoothing / dt**6) * (d3.T @ d3) + dtype(ridge) * np.eye(n, dtype=dtype)
    rhs = a.T @ g.reshape(-1)
    chol = np.linalg.cholesky(lhs)
    return np.asarray(np.linalg.solve(chol.T, np.linalg.solve(chol, rhs)), dtype=np.float64)


def estimate_speed(xyz: np.ndarray, rot: np.ndarray, dt: float) -> float:
    """Speed at t0 (m/s along the heading; negative when reversing) from an ego history in
    the ego frame at t0: xyz (N, 3) metres, rot (N, 3, 3), samples dt seconds apart, the
    last at t0. The official estimator (estimate_speeds) over all N poses: identical poses
    give exactly 0, and noise-free constant speed, acceleration or curvature is exact.
    """
    rot = np.asarray(rot, dtype=np.float64)
    heading = unwrap_yaw(np.arctan2(rot[:, 1, 0], rot[:, 0, 0]))
    return float(estimate_speeds(np.asarray(xyz)[:, :2], heading, dt)[-1])


def travel_speed(xyz: np.ndarray, speed: float) -> float:
    """`speed` (m/s) for a car that may only be moving forwards or backwards as its history
    says: the official estimate's smoothing can dip a few cm/s below 0 when the car has
    just stopped (or after a repeated pose), and a stop plan from a negative speed is
    refused by the controller. Negative only when the history's oldest pose lies ahead of
    the car (xyz (N, 3) metres, ego frame at t0): it was reversing."""
    reversing = float(np.asarray(xyz)[0, 0]) > 0.0
    return min(speed, 0.0) if reversing else max(speed, 0.0)
