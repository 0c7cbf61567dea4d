"""The driving plan as a Python value (mirror of alpamayo_ros/msg/DrivingPlan), its checks,
and the controlled-stop plan published when inputs go stale or the model fails.

Conversion to and from the ROS message lives in alpamayo_ros.nodes.conversions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alpamayo_ros.core.meta_actions import META_ACTIONS, extract_meta_actions
from alpamayo_ros.core.trajectory import UnicycleRollout, UnicycleSpec, integrate

LATENCY_STAGES: tuple[str, ...] = ("preprocess", "prefill", "reasoning", "trajectory", "total")


@dataclass(frozen=True)
class Plan:
    """One published plan.

    stamp: t0, seconds (the input time the plan is for); frame_id: ego frame at t0.
    xyz: (T, 3) metres; heading: (T,) rad; speed: (T,) m/s; accel: (T,) m/s^2;
    curvature: (T,) 1/m; states at t = dt, 2 dt, ..., T dt after t0.
    camera_stamps: (C, F) seconds of the frames used, camera-major, oldest first.
    latency_ms: milliseconds per stage, keys from LATENCY_STAGES (missing = did not run).
    lane: "full" (the causal chain written for this plan's inputs), "trajectory" (the
    newest chain of the reasoning lane, teacher-forced; see chain_stamp), "" for stop plans.
    chain_stamp: seconds, the input time t0 the causal chain was written for (the chain's
    age is stamp - chain_stamp; NaN for stop plans).
    navigation: the route text the plan was conditioned on ("" when none; Alpamayo 1.5).
    """

    stamp: float
    xyz: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    accel: np.ndarray
    curvature: np.ndarray
    dt: float = 0.1
    frame_id: str = "base_link"
    reasoning: str = ""
    meta_actions: tuple[str, ...] = ()
    chosen_sample: int = 0
    num_samples: int = 1
    is_fallback: bool = False
    fallback_reason: str = ""
    camera_names: tuple[str, ...] = ()
    camera_stamps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    odometry_stamp: float = math.nan
    latency_ms: dict[str, float] = field(default_factory=dict)
    model_id: str = ""
    lane: str = ""
    chain_stamp: float = math.nan
    navigation: str = ""

    def __post_init__(self) -> None:
        T = np.asarray(self.xyz).shape[0]
        if np.asarray(self.xyz).shape != (T, 3):
            raise ValueError(f"Plan.xyz must have shape (T, 3), got {np.asarray(self.xyz).shape}")
        for name in ("heading", "speed", "accel", "curvature"):
            shape = np.asarray(getattr(self, name)).shape
            if shape != (T,):
                raise ValueError(f"Plan.{name} must have shape ({T},), got {shape}")
        if not self.dt > 0:
            raise ValueError(f"Plan.dt must be > 0, got {self.dt}")
        unknown = [m for m in self.meta_actions if m not in META_ACTIONS]
        if unknown:
            raise ValueError(
                f"Plan.meta_actions has unknown values {unknown}; known: {META_ACTIONS}"
            )
        if not 0 <= self.chosen_sample < max(self.num_samples, 1):
            raise ValueError(
                f"Plan.chosen_sample {self.chosen_sample} outside "
                f"[0, num_samples={self.num_samples})"
            )
        if self.is_fallback and not self.fallback_reason:
            raise ValueError("Plan.fallback_reason must say why when is_fallback is true")
        stamps = np.asarray(self.camera_stamps)
        if stamps.size and stamps.shape[0] != len(self.camera_names):
            raise ValueError(
                f"Plan.camera_stamps has {stamps.shape[0]} rows for "
                f"{len(self.camera_names)} camera_names"
            )
        bad = [k for k in self.latency_ms if k not in LATENCY_STAGES]
        if bad:
            raise ValueError(f"Plan.latency_ms has unknown stages {bad}; known: {LATENCY_STAGES}")

    @property
    def num_points(self) -> int:
        return int(np.asarray(self.xyz).shape[0])

    @property
    def times(self) -> np.ndarray:
        """(T,) seconds from t0."""
        return self.dt * np.arange(1, self.num_points + 1)

    @classmethod
    def from_rollout(
        cls, rollout: UnicycleRollout, stamp: float, v0: float, z: float = 0.0, **fields: Any
    ) -> Plan:
        """A plan from an integrated trajectory; meta-actions are extracted unless given."""
        xyz, _ = rollout.to_xyz_rot(z)
        if "meta_actions" not in fields:
            fields["meta_actions"] = extract_meta_actions(
                rollout.speed, rollout.heading, rollout.y, v0, rollout.dt
            )
        return cls(
            stamp=stamp,
            xyz=xyz,
            heading=rollout.heading,
            speed=rollout.speed,
            accel=rollout.accel,
            curvature=rollout.curvature,
            dt=rollout.dt,
            **fields,
        )


@dataclass(frozen=True)
class PlanLimits:
    """Bounds a model plan must respect to be published (otherwise: a stop plan).

    speed: (min, max) m/s; accel: (min, max) m/s^2; curvature: max |kappa|, 1/m.
    """

    speed: tuple[float, float] = (-0.5, 45.0)
    accel: tuple[float, float] = (-9.8, 9.8)
    curvature: float = 0.35


def plan_problems(plan: Plan, limits: PlanLimits | None = None) -> list[str]:
    """Reasons a plan must not be followed (empty when it is fine)."""
    limits = limits or PlanLimits()
    problems = []
    for name in ("xyz", "heading", "speed", "accel", "curvature"):
        if not np.all(np.isfinite(getattr(plan, name))):
            problems.append(f"{name} has NaN or infinite values")
    if problems:
        return problems
    lo, hi = limits.speed
    if plan.speed.min() < lo or plan.speed.max() > hi:
        problems.append(
            f"speed in [{plan.speed.min():.2f}, {plan.speed.max():.2f}] m/s outside [{lo}, {hi}]"
        )
    lo, hi = limits.accel
    if plan.accel.min() < lo or plan.accel.max() > hi:
        problems.append(
            f"acceleration in [{plan.accel.min():.2f}, {plan.accel.max():.2f}] m/s^2 "
            f"outside [{lo}, {hi}]"
        )
    kmax = float(np.abs(plan.curvature).max())
    if kmax > limits.curvature:
        problems.append(f"|curvature| up to {kmax:.3f} 1/m above {limits.curvature}")
    return problems


def stop_controls(v0: float, decel: float, spec: UnicycleSpec | None = None) -> np.ndarray:
    """Controls (T, 2) that bring speed v0 (m/s) to exactly 0 at `decel` m/s^2 (> 0), straight.

    The step in which the vehicle would pass zero uses the smaller deceleration that ends it
    at zero; the remaining steps hold zero.
    """
    if not decel > 0:
        raise ValueError(f"stop deceleration must be > 0 m/s^2, got {decel}")
    spec = spec or UnicycleSpec()
    controls = np.zeros((spec.num_steps, 2))
    v = float(v0)
    for k in range(spec.num_steps):
        a = -math.copysign(min(decel, abs(v) / spec.dt), v) if v != 0 else 0.0
        controls[k, 0] = a
        v += a * spec.dt
        if abs(v) < 1e-9:  # rounding must not leave a creeping residual speed
            v = 0.0
    return controls


def make_stop_plan(
    stamp: float,
    v0: float,
    reason: str,
    decel: float = 2.0,
    spec: UnicycleSpec | None = None,
    **fields: Any,
) -> Plan:
    """A controlled-stop fallback plan along the current heading, flagged with `reason`.

    stamp: t0 seconds; v0: current speed m/s (use 0 when unknown: the plan then holds still);
    decel: comfortable deceleration m/s^2.
    """
    spec = spec or UnicycleSpec()
    v0 = float(v0) if math.isfinite(v0) else 0.0
    rollout = integrate(stop_controls(v0, decel, spec), v0, spec)
    return Plan.from_rollout(rollout, stamp, v0, is_fallback=True, fallback_reason=reason, **fields)
