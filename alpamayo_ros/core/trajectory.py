"""Unicycle trajectory model: controls (acceleration, curvature) per step <-> planar paths.

Trajectories are physically possible by construction: the model outputs controls and this
module integrates them. Also the inverse (controls that best reproduce a path) and the
conversion to the released model's (positions, rotation matrices) representation.

Conventions: the ego frame at t0 (REP-103: x forward, y left, z up), start at the origin with
heading 0. Step k (0-based) applies constant controls over [k dt, (k+1) dt] and ends in state
k, so every array of states has T entries for t = dt, 2 dt, ..., T dt.

Discretisation. Speed and heading are integrated exactly for piecewise-constant controls:
    v(t) = v_k + a_k t,   heading(t) = heading_k + kappa_k (v_k t + a_k t^2 / 2).
Positions need the integral of v(t) (cos, sin)(heading(t)), which has no closed form:
  - "exact": 5-point Gauss-Legendre quadrature over each step; for constant controls over a
    step its error is below 1e-9 m per step at automotive speeds and curvatures.
  - "trapezoid": x_{k+1} = x_k + dt/2 (v_k cos h_k + v_{k+1} cos h_{k+1}) (same for y); this is
    what the released Alpamayo-R1 was trained with, so the model layer uses it for its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Integration = Literal["exact", "trapezoid"]

# Gauss-Legendre nodes and weights on [0, 1].
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(5)
_GL_NODES = 0.5 * (_GL_NODES + 1.0)
_GL_WEIGHTS = 0.5 * _GL_WEIGHTS


class TrajectoryError(ValueError):
    """A trajectory or its controls have the wrong shape or values."""


@dataclass(frozen=True)
class UnicycleSpec:
    """Time grid, control limits and discretisation of the unicycle model.

    num_steps: number of steps (and of output states), default 64.
    dt: seconds per step, default 0.1 (6.4 s in all).
    accel_limits: (min, max) longitudinal acceleration, m/s^2.
    curvature_limits: (min, max) curvature, 1/m (positive turns left).
    integration: "exact" or "trapezoid" (see the module docstring).
    """

    num_steps: int = 64
    dt: float = 0.1
    accel_limits: tuple[float, float] = (-9.8, 9.8)
    curvature_limits: tuple[float, float] = (-0.33, 0.33)
    integration: Integration = "exact"

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise TrajectoryError(f"num_steps must be >= 1, got {self.num_steps}")
        if not (self.dt > 0 and np.isfinite(self.dt)):
            raise TrajectoryError(f"dt must be a positive number of seconds, got {self.dt}")
        for name in ("accel_limits", "curvature_limits"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise TrajectoryError(f"{name} must be (min, max) with min < max, got {(lo, hi)}")
        if self.integration not in ("exact", "trapezoid"):
            raise TrajectoryError(
                f"integration must be 'exact' or 'trapezoid', got {self.integration!r}"
            )

    @property
    def horizon(self) -> float:
        """Seconds covered by the trajectory."""
        return self.num_steps * self.dt

    @property
    def times(self) -> np.ndarray:
        """(T,) seconds from t0 of each state: dt, 2 dt, ..., T dt."""
        return self.dt * np.arange(1, self.num_steps + 1)

    def clip(self, controls: np.ndarray) -> np.ndarray:
        """controls (..., T, 2) [m/s^2, 1/m] clipped to the limits."""
        out = np.array(controls, dtype=np.float64, copy=True)
        out[..., 0] = np.clip(out[..., 0], *self.accel_limits)
        out[..., 1] = np.clip(out[..., 1], *self.curvature_limits)
        return out


@dataclass(frozen=True)
class UnicycleRollout:
    """States reached by integrating controls; every array is (..., T).

    x, y: metres in the ego frame at t0; heading: radians (unwrapped, 0 at t0);
    speed: m/s; accel: m/s^2 and curvature: 1/m applied over the step ending at each state.
    """

    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    accel: np.ndarray
    curvature: np.ndarray
    dt: float

    @property
    def xy(self) -> np.ndarray:
        """(..., T, 2) metres."""
        return np.stack([self.x, self.y], axis=-1)

    @property
    def controls(self) -> np.ndarray:
        """(..., T, 2): acceleration m/s^2, curvature 1/m."""
        return np.stack([self.accel, self.curvature], axis=-1)

    def to_xyz_rot(self, z: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """The released model's representation.

        z: height to copy into every point (scalar or (...) metres; the release copies the
        last history point's z). Returns xyz (..., T, 3) metres and rot (..., T, 3, 3), yaw-only.
        """
        z_arr = np.broadcast_to(np.asarray(z, dtype=np.float64)[..., None], self.x.shape)
        xyz = np.stack([self.x, self.y, z_arr], axis=-1)
        return xyz, rotation_from_yaw(self.heading)


def held_at_standstill(
    rollout: UnicycleRollout, integration: Integration | None = None
) -> UnicycleRollout | None:
    """One sample's rollout (arrays (T,)) with its negative speeds replaced by standstill, or
    None when it has none or started reversing (negative speed at t0: a reversing car keeps
    its plan).

    A car braking to a stop stops; it does not roll backwards. Speeds become
    max(speed, 0): the step that would cross zero ends at exactly 0 m/s, the car stays
    stopped while the drawn speed is negative and moves off when it is positive again.
    Accelerations follow from the new speeds, curvatures are kept, and the path is
    integrated again from the same v0 with `integration`: the one the rollout was made with
    (None: whichever of the two reproduces it), so states before the crossing are unchanged.
    """
    dt = rollout.dt
    v0 = float(rollout.speed[0] - rollout.accel[0] * dt)
    if v0 < 0 or not np.any(rollout.speed < 0):
        return None
    T = rollout.speed.shape[-1]
    if integration is None:
        spec = UnicycleSpec(num_steps=T, dt=dt, integration="trapezoid")
        again = integrate(rollout.controls, v0, spec).xy
        integration = "trapezoid" if np.allclose(again, rollout.xy, atol=1e-6) else "exact"
    v = np.concatenate([[v0], np.maximum(rollout.speed, 0.0)])
    controls = np.stack([np.diff(v) / dt, rollout.curvature], axis=-1)
    return integrate(controls, v0, UnicycleSpec(num_steps=T, dt=dt, integration=integration))


def rotation_from_yaw(yaw: np.ndarray) -> np.ndarray:
    """yaw (...) radians -> rotation matrices (..., 3, 3) about +z."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    zero, one = np.zeros_like(yaw), np.ones_like(yaw)
    return np.stack(
        [
            np.stack([c, -s, zero], axis=-1),
            np.stack([s, c, zero], axis=-1),
            np.stack([zero, zero, one], axis=-1),
        ],
        axis=-2,
    )


def yaw_from_rotation(rot: np.ndarray) -> np.ndarray:
    """rot (..., 3, 3) -> yaw (...) radians in (-pi, pi] (heading of the body x axis)."""
    rot = np.asarray(rot, dtype=np.float64)
    return np.arctan2(rot[..., 1, 0], rot[..., 0, 0])


def _check_controls(controls: np.ndarray, spec: UnicycleSpec) -> np.ndarray:
    controls = np.asarray(controls, dtype=np.float64)
    if controls.ndim < 2 or controls.shape[-2:] != (spec.num_steps, 2):
        raise TrajectoryError(
            f"controls must have shape (..., {spec.num_steps}, 2), got {controls.shape}"
        )
    if not np.all(np.isfinite(controls)):
        raise TrajectoryError("controls contain NaN or infinite values")
    return controls


def integrate(
    controls: np.ndarray, v0: float | np.ndarray, spec: UnicycleSpec | None = None
) -> UnicycleRollout:
    """Integrate controls from the origin with heading 0 and initial speed v0.

    controls: (..., T, 2) acceleration m/s^2 and curvature 1/m per step (not clipped here:
        a caller that needs the limits uses spec.clip first).
    v0: () or (...) initial speed, m/s.
    """
    spec = spec or UnicycleSpec()
    controls = _check_controls(controls, spec)
    accel, kappa = controls[..., 0], controls[..., 1]
    v0_arr = np.broadcast_to(np.asarray(v0, dtype=np.float64), accel.shape[:-1])
    dt = spec.dt

    zeros = np.zeros((*accel.shape[:-1], 1))
    v = np.concatenate([v0_arr[..., None], v0_arr[..., None] + np.cumsum(accel * dt, axis=-1)], -1)
    dheading = kappa * (v[..., :-1] * dt + 0.5 * accel * dt * dt)
    heading = np.concatenate([zeros, np.cumsum(dheading, axis=-1)], axis=-1)

    if spec.integration == "trapezoid":
        vx, vy = v * np.cos(heading), v * np.sin(heading)
        dx = 0.5 * dt * (vx[..., :-1] + vx[..., 1:])
        dy = 0.5 * dt * (vy[..., :-1] + vy[..., 1:])
    else:
        tau = dt * _GL_NODES  # (Q,)
        v_k, h_k = v[..., :-1, None], heading[..., :-1, None]
        a_k, k_k = accel[..., None], kappa[..., None]
        v_q = v_k + a_k * tau
        h_q = h_k + k_k * (v_k * tau + 0.5 * a_k * tau * tau)
        dx = dt * np.sum(_GL_WEIGHTS * v_q * np.cos(h_q), axis=-1)
        dy = dt * np.sum(_GL_WEIGHTS * v_q * np.sin(h_q), axis=-1)

    return UnicycleRollout(
        x=np.cumsum(dx, axis=-1),
        y=np.cumsum(dy, axis=-1),
        heading=heading[..., 1:],
        speed=v[..., 1:],
        accel=accel,
        curvature=kappa,
        dt=dt,
    )


def _initial_controls(
    xy: np.ndarray, heading: np.ndarray, v0: np.ndarray, spec: UnicycleSpec
) -> np.ndarray:
    """A first guess of the controls from finite differences; (B, T, 2)."""
    dt = spec.dt
    pts = np.concatenate([np.zeros((xy.shape[0], 1, 2)), xy], axis=1)  # (B, T+1, 2)
    h_full = np.concatenate([np.zeros((xy.shape[0], 1)), heading], axis=1)  # (B, T+1)
    step = pts[:, 1:] - pts[:, :-1]
    # Signed distance along the mean heading of the step (negative when reversing).
    h_mid = 0.5 * (h_full[:, 1:] + h_full[:, :-1])
    ds = step[..., 0] * np.cos(h_mid) + step[..., 1] * np.sin(h_mid)  # (B, T)
    # Speeds at the states: trapezoid relation ds_k = dt (v_k + v_{k+1}) / 2, smoothed by
    # averaging neighbouring step speeds instead of the unstable recursion.
    step_speed = ds / dt
    v = np.empty_like(step_speed)
    v[:, :-1] = 0.5 * (step_speed[:, :-1] + step_speed[:, 1:])
    v[:, -1] = step_speed[:, -1]
    v_full = np.concatenate([v0[:, None], v], axis=1)
    accel = (v_full[:, 1:] - v_full[:, :-1]) / dt
    arc = dt * v_full[:, :-1] + 0.5 * accel * dt * dt
    dh = h_full[:, 1:] - h_full[:, :-1]
    safe = np.abs(arc) > 0.05
    kappa = np.where(safe, dh / np.where(safe, arc, 1.0), 0.0)
    return spec.clip(np.stack([accel, kappa], axis=-1))


def fit_controls(
    xy: np.ndarray,
    v0: float | np.ndarray,
    spec: UnicycleSpec | None = None,
    heading: np.ndarray | None = None,
    *,
    iterations: int = 12,
    heading_weight: float = 1.0,
    smoothness: float = 1e-3,
) -> np.ndarray:
    """Controls whose rollout best reproduces a path (the inverse of `integrate`).

    Minimises, by damped Gauss-Newton (Levenberg-Marquardt) projected onto the control limits,
        sum_k |p_k(u) - xy_k|^2 + heading_weight^2 |h_k(u) - heading_k|^2
            + smoothness * (|D a|^2 + (10 m)^2 |D kappa|^2)
    where D is the first difference. The smoothness term keeps curvature well defined where
    the path barely moves (at standstill any curvature reproduces the points).

    xy: (..., T, 2) metres, in the ego frame at t0 (the path starts at the origin, heading 0).
    v0: () or (...) speed at t0, m/s (from the ego history).
    heading: optional (..., T) radians; without it, headings come from the path's tangents
        (and hold their last value where the path does not move).
    Returns controls (..., T, 2): acceleration m/s^2 and curvature 1/m, within the limits.
    """
    spec = spec or UnicycleSpec()
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim < 2 or xy.shape[-2:] != (spec.num_steps, 2):
        raise TrajectoryError(f"xy must have shape (..., {spec.num_steps}, 2), got {xy.shape}")
    if not np.all(np.isfinite(xy)):
        raise TrajectoryError("xy contains NaN or infinite values")
    lead = xy.shape[:-2]
    T = spec.num_steps
    flat_xy = xy.reshape(-1, T, 2)
    B = flat_xy.shape[0]
    v0_flat = np.broadcast_to(np.asarray(v0, dtype=np.float64), lead).reshape(B)

    use_heading = heading is not None
    if heading is not None:
        target_h = np.unwrap(np.asarray(heading, dtype=np.float64).reshape(B, T), axis=-1)
    else:
        target_h = heading_from_path(flat_xy)

    u = _initial_controls(flat_xy, target_h, v0_flat, spec).reshape(B, 2 * T)
    kappa_scale = 10.0  # metres: puts curvature smoothness on the scale of acceleration's
    sq_s = np.sqrt(smoothness)

    def residuals(u_flat: np.ndarray, v0_b: np.ndarray, xy_b: np.ndarray, h_b: np.ndarray):
        ctrl = u_flat.reshape(*u_flat.shape[:-1], T, 2)
        roll = integrate(ctrl, v0_b, spec)
        parts = [(roll.xy - xy_b).reshape(*u_flat.shape[:-1], 2 * T)]
        if use_heading:
            parts.append(heading_weight * (roll.heading - h_b))
        parts.append(sq_s * np.diff(ctrl[..., 0], axis=-1))
        parts.append(sq_s * kappa_scale * np.diff(ctrl[..., 1], axis=-1))
        return np.concatenate(parts, axis=-1)

    lower = np.tile(np.array([spec.accel_limits[0], spec.curvature_limits[0]]), T)
    upper = np.tile(np.array([spec.accel_limits[1], spec.curvature_limits[1]]), T)
    eps = 1e-6
    eye = np.eye(2 * T)
    mu = np.full(B, 1e-3)
    r = residuals(u, v0_flat, flat_xy, target_h)
    cost = np.sum(r * r, axis=-1)
    for _ in range(iterations):
        # Forward-difference Jacobian, all columns in one batched rollout: (B, 2T, 2T).
        pert = u[:, None, :] + eps * eye[None]
        r_pert = residuals(
            pert, v0_flat[:, None], flat_xy[:, None], target_h[:, None]
        )  # (B, 2T, R)
        jac = np.swapaxes((r_pert - r[:, None, :]) / eps, 1, 2)  # (B, R, 2T)
        jtj = np.einsum("brj,brk->bjk", jac, jac)
        jtr = np.einsum("brj,br->bj", jac, r)
        damp = mu[:, None, None] * (eye * np.diagonal(jtj, axis1=1, axis2=2)[:, None, :] + eye)
        step = np.linalg.solve(jtj + damp, -jtr[..., None])[..., 0]
        u_new = np.clip(u + step, lower, upper)
        r_new = residuals(u_new, v0_flat, flat_xy, target_h)
        cost_new = np.sum(r_new * r_new, axis=-1)
        better = cost_new < cost
        u = np.where(better[:, None], u_new, u)
        r = np.where(better[:, None], r_new, r)
        cost = np.where(better, cost_new, cost)
        mu = np.where(better, mu * 0.3, mu * 10.0)
    return u.reshape(*lead, T, 2)


def heading_from_path(xy: np.ndarray, min_step: float = 1e-3) -> np.ndarray:
    """Headings (..., T) radians along a path xy (..., T, 2) starting after the origin.

    The heading of point k is the direction of the chord through its neighbours; where the
    path moves less than min_step metres the previous heading is held (0 at the origin).
    """
    xy = np.asarray(xy, dtype=np.float64)
    lead, T = xy.shape[:-2], xy.shape[-2]
    flat = xy.reshape(-1, T, 2)
    pts = np.concatenate([np.zeros((flat.shape[0], 1, 2)), flat], axis=1)  # (B, T+1, 2)
    nxt = np.concatenate([pts[:, 2:], pts[:, -1:]], axis=1)  # (B, T, 2)
    chord = nxt - pts[:, :-1]
    back = pts[:, 1:] - pts[:, :-1]
    chord = np.where(np.linalg.norm(chord, axis=-1, keepdims=True) > min_step, chord, back)
    out = np.zeros(flat.shape[:2])
    prev = np.zeros(flat.shape[0])
    for k in range(T):
        moving = np.linalg.norm(chord[:, k], axis=-1) > min_step
        h = np.arctan2(chord[:, k, 1], chord[:, k, 0])
        # Reversing: keep the body heading, not the direction of motion.
        h = np.where(np.cos(h - prev) < 0, h + np.pi, h)
        h = prev + np.angle(np.exp(1j * (h - prev)))
        prev = np.where(moving, h, prev)
        out[:, k] = prev
    return out.reshape(*lead, T)


def rollout_from_xyz_rot(
    xyz: np.ndarray, rot: np.ndarray, v0: float | np.ndarray, spec: UnicycleSpec | None = None
) -> UnicycleRollout:
    """The unicycle rollout that best reproduces a path in the released representation.

    xyz: (..., T, 3) metres and rot: (..., T, 3, 3), ego frame at t0; v0: () or (...) m/s.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    heading = np.unwrap(yaw_from_rotation(rot), axis=-1)
    spec = spec or UnicycleSpec()
    controls = fit_controls(xyz[..., :2], v0, spec, heading=heading)
    return integrate(controls, v0, spec)
