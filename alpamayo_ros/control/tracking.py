"""Trajectory tracking without ROS: a plan and odometry in, speed and steering commands out.

The plan is expressed in the ego frame at its stamp t0; the car has moved since. The tracker
keeps the odometry poses, moves the plan into the current ego frame (pose at t0 -> pose
now), and then
  - steers by pure pursuit: the circle through the rear axle that reaches the path point
    one lookahead distance ahead (lookahead = max(min_lookahead, lookahead_time * speed));
  - sets the acceleration from the plan's speed profile at the plan's age (plus a small
    preview for actuator delay): the plan's acceleration as feed-forward plus a
    proportional speed-error term;
  - limits speed, acceleration, jerk, steering angle and steering rate.
A plan older than plan_timeout, a plan stamped ahead of the clock (never followed: its age
would be negative), no plan, or odometry that cannot place the plan gives a controlled stop
at stop_decel (steering along the last plan's path while it can). Time that jumps back (a
bag played again, a simulator reset) drops the plan and the poses of the old timeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import transforms3d.euler as te

from alpamayo_ros.core.clock import PLAN_AHEAD_TOLERANCE
from alpamayo_ros.core.diagnostics import OK, WARN, DiagnosticItem
from alpamayo_ros.core.ego_history import (
    EgoHistorySpec,
    EgoHistoryUnavailable,
    EgoPoseBuffer,
    StampedPose,
)
from alpamayo_ros.core.plan import Plan

Mode = Literal["tracking", "stopping", "stopped"]
STANDSTILL = 0.05  # m/s: slower counts as stopped
SETPOINT_RESYNC = 1.0  # m/s: a speed setpoint this far from the measured speed re-anchors
TIME_JUMP = 0.5  # s: time going back further than this starts a new timeline


@dataclass(frozen=True)
class TrackerSettings:
    """Gains and limits of the tracker (SI units: m, s, rad).

    wheelbase: m, rear axle to front axle (base_link is the rear axle).
    lookahead_time: s; the lookahead distance is max(min_lookahead, lookahead_time * |v|).
    min_lookahead: m.
    speed_gain: (m/s^2) per (m/s) of speed error.
    preview: s ahead of the plan's age at which speed and acceleration are read
        (compensates actuator delay).
    max_speed: m/s; max_accel, max_decel: m/s^2 (both positive); max_jerk: m/s^3;
    max_steering: rad (front wheel); max_steering_rate: rad/s.
    stop_decel: m/s^2 of the controlled stop (positive).
    plan_timeout: s; an older plan is not followed (controlled stop instead).
    """

    wheelbase: float = 2.8
    lookahead_time: float = 0.5
    min_lookahead: float = 3.0
    speed_gain: float = 1.0
    preview: float = 0.1
    max_speed: float = 30.0
    max_accel: float = 3.0
    max_decel: float = 6.0
    max_jerk: float = 10.0
    max_steering: float = 0.6
    max_steering_rate: float = 1.0
    stop_decel: float = 2.0
    plan_timeout: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            ok = value >= 0 if f.name in ("preview", "speed_gain") else value > 0
            if not (ok and math.isfinite(value)):
                raise ValueError(f"TrackerSettings.{f.name} must be > 0, got {value}")
        if self.stop_decel > self.max_decel:
            raise ValueError(
                f"TrackerSettings.stop_decel ({self.stop_decel}) must not exceed max_decel "
                f"({self.max_decel})"
            )
        if self.max_steering >= math.pi / 2:
            raise ValueError(
                f"TrackerSettings.max_steering must be < pi/2 rad, got {self.max_steering}"
            )


@dataclass(frozen=True)
class Command:
    """One control output at `stamp` (s).

    speed: m/s setpoint: the plan's speed at the preview time (0 when stopping), reached
        no faster than max_accel / max_decel (stop_decel when stopping) allow from the last
        setpoint (while tracking, re-anchored to the measured speed when they differ by over
        1 m/s; while stopping, only ever lowered);
    accel: m/s^2; jerk: m/s^3; steering_angle: rad; steering_rate: rad/s;
    curvature: 1/m = tan(steering_angle) / wheelbase; yaw_rate: rad/s = speed * curvature;
    mode and reason: what the tracker is doing and why (empty while tracking);
    plan_age: s since the followed plan's t0 (NaN without a plan);
    lateral_error: m, the path's lateral offset from the rear axle (left positive; NaN
    without a placed plan).
    """

    stamp: float
    speed: float
    accel: float
    jerk: float
    steering_angle: float
    steering_rate: float
    curvature: float
    yaw_rate: float
    mode: Mode
    reason: str = ""
    plan_age: float = math.nan
    lateral_error: float = math.nan


def yaw_of(pose: StampedPose) -> float:
    """Yaw (rad) of a pose's quaternion (w, x, y, z) about +z."""
    return float(te.quat2euler(pose.quaternion, "szyx")[0])


def plan_in_current_frame(plan: Plan, at_t0: StampedPose, now: StampedPose) -> np.ndarray:
    """The plan's path, origin first, moved from the ego frame at t0 into the ego frame of
    `now` (planar): (T+1, 2) metres."""
    pts = np.concatenate([np.zeros((1, 2)), np.asarray(plan.xyz, dtype=np.float64)[:, :2]])
    y0, y1 = yaw_of(at_t0), yaw_of(now)
    c0, s0 = math.cos(y0), math.sin(y0)
    world = pts @ np.array([[c0, s0], [-s0, c0]]) + np.asarray(at_t0.position[:2])
    c1, s1 = math.cos(y1), math.sin(y1)
    return (world - np.asarray(now.position[:2])) @ np.array([[c1, -s1], [s1, c1]])


def lookahead_point(path: np.ndarray, distance: float) -> tuple[np.ndarray, float]:
    """The point of `path` (N, 2) one `distance` (m) from the origin, searched forward from
    the path point closest to the origin; beyond the path's end it continues along the
    last segment. Returns the point and the signed lateral offset of the closest point."""
    d = np.linalg.norm(path, axis=1)
    i0 = int(np.argmin(d))
    lateral = float(path[i0, 1])
    for i in range(i0, len(path) - 1):
        a, b = path[i], path[i + 1]
        if np.linalg.norm(b) >= distance:
            # Solve |a + s (b - a)| = distance for s in [0, 1].
            ab = b - a
            qa, qb, qc = ab @ ab, 2 * a @ ab, a @ a - distance * distance
            if qa < 1e-12:
                return b, lateral
            s = (-qb + math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))) / (2 * qa)
            return a + min(max(s, 0.0), 1.0) * ab, lateral
    # The path ends inside the circle: extend its last segment.
    end = path[-1]
    direction = path[-1] - path[-2] if len(path) > 1 else np.array([1.0, 0.0])
    norm = float(np.linalg.norm(direction))
    direction = direction / norm if norm > 1e-6 else np.array([1.0, 0.0])
    eb = 2 * end @ direction
    ec = end @ end - distance * distance
    s = (-eb + math.sqrt(max(eb * eb - 4 * ec, 0.0))) / 2
    return end + max(s, 0.0) * direction, lateral


def speed_profile_at(plan: Plan, t: float) -> tuple[float, float]:
    """(speed m/s, acceleration m/s^2) of the plan at t seconds after its t0: speed
    interpolated between the states, acceleration of the step containing t; after the
    horizon the last speed and zero acceleration."""
    dt = plan.dt
    v_start = float(plan.speed[0] - plan.accel[0] * dt)
    times = np.concatenate([[0.0], plan.times])
    speeds = np.concatenate([[v_start], plan.speed])
    if t >= times[-1]:
        return float(speeds[-1]), 0.0
    t = max(t, 0.0)
    k = min(int(t / dt), plan.num_points - 1)
    return float(np.interp(t, times, speeds)), float(plan.accel[k])


def exit_command(last: Command, stop_decel: float, reason: str) -> Command:
    """The command to leave behind when the controller ends (its process stops) after
    `last`: zero speed, braking at `stop_decel` (m/s^2) when `last` was moving, steering
    held (no wheel jerk at speed), yaw rate zero, stamped as `last`. The controller cannot
    ramp the setpoint down any more, so it drops at once and the vehicle's own limits shape
    the stop; without it the vehicle's interface keeps the last motion command until its
    own timeout."""
    moving = last.speed > STANDSTILL
    return replace(
        last,
        speed=0.0,
        accel=-stop_decel if moving else 0.0,
        jerk=0.0,
        steering_rate=0.0,
        yaw_rate=0.0,
        mode="stopping" if moving else "stopped",
        reason=reason,
    )


class TrajectoryTracker:
    """Follows DrivingPlans; see the module docstring. Call `add_pose` for every odometry
    message, `set_plan` for every plan, and `update` at the control rate."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.poses = EgoPoseBuffer(
            EgoHistorySpec(capacity=2000, max_gap=0.5, max_extrapolation=0.3)
        )
        self.plan: Plan | None = None
        self._last: Command | None = None
        self.time_jumps = 0
        self.late_arrivals = 0  # plans already older than plan_timeout when they arrived
        self._stall_from: Command | None = None  # last clocked command while the clock stalls

    def add_pose(self, pose: StampedPose) -> None:
        latest = self.poses.latest_stamp
        if latest is not None and pose.stamp < latest - TIME_JUMP:  # a new timeline
            self.poses.clear()
        self.poses.add(pose)

    def set_plan(self, plan: Plan, now: float | None = None) -> None:
        """Follow `plan` from now on. A plan older than the current one is ignored, unless
        it is older by more than a time jump (the clock went back: a new timeline). With
        `now` (s), a plan that arrives already older than plan_timeout is counted."""
        if now is not None and now - plan.stamp > self.settings.plan_timeout:
            self.late_arrivals += 1
        current = self.plan
        if current is None or plan.stamp >= current.stamp or plan.stamp < current.stamp - TIME_JUMP:
            self.plan = plan

    def reset(self) -> None:
        self.plan = None
        self._last = None
        self._stall_from = None
        self.poses.clear()

    def stop_without_clock(self, stalled_for: float, reason: str) -> Command:
        """A controlled stop while the node's clock stands still (/clock stopped): the speed
        setpoint falls at stop_decel over `stalled_for` wall seconds from the last clocked
        command, steering held. The stamp stays the last clocked time, so the clock
        resuming is no time jump, and the next `update` goes on from the lowered setpoint."""
        s = self.settings
        if self._stall_from is None:
            if self._last is None:
                return self.standstill(0.0, reason)
            self._stall_from = self._last
        base = self._stall_from
        speed = max(base.speed - s.stop_decel * stalled_for, 0.0)
        command = replace(
            base,
            speed=speed,
            accel=-s.stop_decel if speed > 0 else 0.0,
            jerk=0.0,
            steering_rate=0.0,
            yaw_rate=speed * base.curvature,
            mode="stopping" if speed > STANDSTILL else "stopped",
            reason=reason,
        )
        self._last = command
        return command

    def standstill(self, now: float, reason: str) -> Command:
        """A hold-still command for when nothing is known yet (no odometry): zero speed,
        straight wheels. It leaves the tracker's state alone, so the first real update
        starts from the measured speed."""
        return Command(now, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "stopped", reason)

    def update(self, now: float, speed: float, stop_reason: str = "") -> Command:
        """The command at time `now` (s) for a measured speed (m/s); with `stop_reason`, a
        controlled stop whatever the plan (the node's watchdog: clock or inputs silent)."""
        s = self.settings
        self._stall_from = None
        if self._last is not None and now < self._last.stamp - TIME_JUMP:
            self.time_jumps += 1
            self.reset()  # the plan and poses belong to the abandoned timeline
        dt = 0.0 if self._last is None else max(now - self._last.stamp, 0.0)
        prev_accel = 0.0 if self._last is None else self._last.accel
        prev_steer = 0.0 if self._last is None else self._last.steering_angle
        last_setpoint = speed if self._last is None else self._last.speed

        path, reason, age = None, "", math.nan
        plan = self.plan
        if plan is None:
            reason = "no plan received"
        else:
            age = now - plan.stamp
            try:
                path = plan_in_current_frame(
                    plan, self.poses.pose_at(plan.stamp), self.poses.pose_at(now)
                )
            except EgoHistoryUnavailable as err:
                reason = f"cannot place the plan: {err}"
            if age > s.plan_timeout:
                reason = f"plan is {age:.2f} s old (plan_timeout {s.plan_timeout} s)"
            elif age < -PLAN_AHEAD_TOLERANCE:
                reason = f"plan stamped {-age:.2f} s ahead of the clock (never followed)"
                path = None
        if stop_reason:
            reason = stop_reason

        if reason:
            target_accel = -s.stop_decel if speed > 1e-3 else 0.0  # brake to a standstill
            target_speed, slowing = 0.0, s.stop_decel
            # A stop only ever lowers the setpoint, whatever the measured speed does.
            prev_setpoint = min(last_setpoint, speed)
            mode: Mode = "stopping" if speed > STANDSTILL else "stopped"
        else:
            assert plan is not None
            v_ref, a_ff = speed_profile_at(plan, max(age, 0.0) + s.preview)
            target_speed, slowing = min(max(v_ref, 0.0), s.max_speed), s.max_decel
            resync = abs(last_setpoint - speed) > SETPOINT_RESYNC  # the car did not follow
            prev_setpoint = speed if resync else last_setpoint
            target_accel = a_ff + s.speed_gain * (target_speed - speed)
            mode = "tracking"

        accel = float(np.clip(target_accel, -s.max_decel, s.max_accel))
        if dt > 0:
            accel = float(
                np.clip(accel, prev_accel - s.max_jerk * dt, prev_accel + s.max_jerk * dt)
            )
        cmd_speed = float(
            np.clip(target_speed, prev_setpoint - slowing * dt, prev_setpoint + s.max_accel * dt)
        )
        cmd_speed = min(max(cmd_speed, 0.0), s.max_speed)
        if mode != "tracking" and speed <= 1e-3:
            accel = 0.0  # standing still: nothing to brake

        lateral = math.nan
        if path is not None:
            distance = max(s.min_lookahead, s.lookahead_time * abs(speed))
            target, lateral = lookahead_point(path, distance)
            reach = float(np.linalg.norm(target))
            kappa = 2.0 * float(target[1]) / (reach * reach) if reach > 1e-6 else 0.0
            steer = math.atan(s.wheelbase * kappa)
        else:
            steer = prev_steer if mode == "tracking" else 0.0
        steer = float(np.clip(steer, -s.max_steering, s.max_steering))
        if dt > 0:
            step = s.max_steering_rate * dt
            steer = float(np.clip(steer, prev_steer - step, prev_steer + step))
        curvature = math.tan(steer) / s.wheelbase
        command = Command(
            stamp=now,
            speed=cmd_speed,
            accel=accel,
            jerk=(accel - prev_accel) / dt if dt > 0 else 0.0,
            steering_angle=steer,
            steering_rate=(steer - prev_steer) / dt if dt > 0 else 0.0,
            curvature=curvature,
            yaw_rate=cmd_speed * curvature,
            mode=mode,
            reason=reason,
            plan_age=age,
            lateral_error=lateral,
        )
        self._last = command
        return command


def tracker_diagnostics(
    command: Command,
    bad_plans: int,
    name: str = "alpamayo_controller",
    tracker: TrajectoryTracker | None = None,
    engaged: bool | None = None,
) -> DiagnosticItem:
    """The controller's diagnostic: OK while tracking, WARN while stopping or stopped for
    lack of a usable plan (the reason says why), WARN when plans arrive already older than
    plan_timeout (the model is slower than the controller expects). With `engaged` (the
    engage gate's state): a value saying it, and standing still while not engaged is OK (a
    hold someone chose); stopping from speed is WARN still."""
    values: tuple[tuple[str, str], ...] = (
        ("mode", command.mode),
        ("reason", command.reason),
        ("plan age [s]", f"{command.plan_age:.3f}"),
        ("lateral error [m]", f"{command.lateral_error:.3f}"),
        ("speed command [m/s]", f"{command.speed:.2f}"),
        ("acceleration [m/s^2]", f"{command.accel:.2f}"),
        ("steering angle [rad]", f"{command.steering_angle:.3f}"),
        ("ignored plans", str(bad_plans)),
    )
    level = OK if command.mode == "tracking" else WARN
    if engaged is not None:
        values += (("engaged", "yes" if engaged else "no"),)
        if not engaged and command.mode == "stopped":
            level = OK
    message = command.mode + (f": {command.reason}" if command.reason else "")
    if tracker is not None:
        values += (
            ("plans late on arrival", str(tracker.late_arrivals)),
            ("time jumps", str(tracker.time_jumps)),
        )
        if tracker.late_arrivals:
            level = WARN
            message += (
                f"; {tracker.late_arrivals} plans arrived older than plan_timeout "
                f"{tracker.settings.plan_timeout} s (the model is slower than that)"
            )
    return DiagnosticItem(name, level, message, values)
