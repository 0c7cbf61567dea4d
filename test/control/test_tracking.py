"""The tracker in a closed loop with a kinematic bicycle: circle, S-curve, stop-and-go; plan
age compensation; the controlled stop; limits."""

import math
from dataclasses import dataclass

import numpy as np
import pytest

from alpamayo_ros.control.bicycle import BicycleState, bicycle_step
from alpamayo_ros.control.tracking import (
    TrackerSettings,
    TrajectoryTracker,
    exit_command,
    lookahead_point,
    plan_in_current_frame,
    speed_profile_at,
)
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.plan import Plan, make_stop_plan
from alpamayo_ros.core.trajectory import UnicycleSpec, integrate

SIM_DT = 0.02  # control at 50 Hz
REF_DT = 0.01


@dataclass
class Reference:
    """A world-frame reference drive sampled every REF_DT s from t = 0."""

    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    accel: np.ndarray
    curvature: np.ndarray

    @classmethod
    def from_controls(cls, accel: np.ndarray, curvature: np.ndarray, v0: float) -> "Reference":
        spec = UnicycleSpec(num_steps=len(accel), dt=REF_DT, curvature_limits=(-1, 1))
        roll = integrate(np.stack([accel, curvature], axis=1), v0, spec)
        pad = lambda a, first: np.concatenate([[first], a])  # noqa: E731  (state at t = 0)
        return cls(
            pad(roll.x, 0.0), pad(roll.y, 0.0), pad(roll.heading, 0.0), pad(roll.speed, v0),
            pad(accel, accel[0]), pad(curvature, curvature[0]),
        )  # fmt: skip

    def index(self, t: float) -> int:
        return min(round(t / REF_DT), len(self.x) - 1)

    def plan_at(self, t0: float, car: BicycleState) -> Plan:
        """What a perfect planner publishes at t0: the reference's next 6.4 s in the car's
        ego frame at t0 (the car may be off the reference: the plan does not start at it)."""
        idx = [self.index(t0 + 0.1 * k) for k in range(1, 65)]
        c, s = math.cos(car.yaw), math.sin(car.yaw)
        dx, dy = self.x[idx] - car.x, self.y[idx] - car.y
        xyz = np.stack([c * dx + s * dy, -s * dx + c * dy, np.zeros(64)], axis=1)
        return Plan(
            stamp=t0, xyz=xyz, heading=self.heading[idx] - car.yaw, speed=self.speed[idx],
            accel=self.accel[idx], curvature=self.curvature[idx],
        )  # fmt: skip

    def cross_track(self, x: float, y: float) -> float:
        return float(np.min(np.hypot(self.x - x, self.y - y)))


def pose(t: float, car: BicycleState) -> StampedPose:
    return StampedPose(t, (car.x, car.y, 0.0), (math.cos(car.yaw / 2), 0, 0, math.sin(car.yaw / 2)))


def closed_loop(ref: Reference, duration: float, latency: float = 0.1, settings=None):
    """Plans every 0.1 s, each delivered `latency` s after its t0; the tracker at 50 Hz
    drives a bicycle. Returns per control step: t, cross-track (m), speed error (m/s),
    and the commands."""
    settings = settings or TrackerSettings()
    tracker = TrajectoryTracker(settings)
    car = BicycleState(speed=float(ref.speed[0]))
    pending: list[Plan] = []
    log = []
    for k in range(round(duration / SIM_DT)):
        t = k * SIM_DT
        tracker.add_pose(pose(t, car))
        if k % 5 == 0:  # planner tick (10 Hz)
            pending.append(ref.plan_at(t, car))
        while pending and pending[0].stamp + latency <= t + 1e-9:
            tracker.set_plan(pending.pop(0))
        cmd = tracker.update(t, car.speed)
        log.append((t, ref.cross_track(car.x, car.y), car.speed - ref.speed[ref.index(t)], cmd))
        car = bicycle_step(car, cmd.accel, cmd.steering_angle, SIM_DT, settings.wheelbase)
    return log


def seconds(s: float) -> int:
    return round(s / REF_DT)


def circle() -> Reference:
    n = seconds(40)
    return Reference.from_controls(np.zeros(n), np.full(n, 1 / 25), v0=8.0)


def s_curve() -> Reference:
    t = REF_DT * np.arange(seconds(40))
    return Reference.from_controls(np.zeros_like(t), 0.04 * np.sin(2 * np.pi * t / 8), 10.0)


def stop_and_go() -> Reference:
    phases = [(2, 0.0), (5, 1.5), (4, 0.0), (3.75, -2.0), (3, 0.0), (4, 1.5), (8, 0.0)]
    accel = np.concatenate([np.full(seconds(d), a) for d, a in phases])
    return Reference.from_controls(accel, np.zeros_like(accel), v0=0.0)


@pytest.mark.parametrize("latency", [0.1, 0.3])
@pytest.mark.parametrize("make_ref", [circle, s_curve, stop_and_go])
def test_closed_loop_errors_stay_small_after_settling(make_ref, latency):
    """Plans arrive `latency` s after their t0: the tracker must place them with odometry."""
    ref = make_ref()
    log = closed_loop(ref, duration=len(ref.x) * REF_DT - 7.0, latency=latency)
    settled = [row for row in log if row[0] > 3.0]
    cross = max(abs(r[1]) for r in settled)
    speed = max(abs(r[2]) for r in settled)
    assert cross < 0.3, f"cross-track error up to {cross:.3f} m"
    assert speed < 0.5, f"speed error up to {speed:.3f} m/s"
    assert all(r[3].mode == "tracking" for r in settled)


def test_commands_respect_every_limit():
    settings = TrackerSettings(max_steering=0.3, max_steering_rate=0.5, max_jerk=4.0)
    log = closed_loop(s_curve(), 20.0, settings=settings)
    cmds = [r[3] for r in log[1:]]
    assert max(abs(c.steering_angle) for c in cmds) <= 0.3 + 1e-9
    assert max(abs(c.steering_rate) for c in cmds) <= 0.5 + 1e-6
    assert max(abs(c.jerk) for c in cmds) <= 4.0 + 1e-6
    assert all(-settings.max_decel <= c.accel <= settings.max_accel for c in cmds)
    assert all(0.0 <= c.speed <= settings.max_speed for c in cmds)


def test_plan_is_moved_into_the_current_ego_frame():
    plan = make_stop_plan(0.0, 0.0, "x")  # any plan: only its points matter here
    pts = np.array([[10.0, 0.0, 0.0]] * plan.num_points)
    plan = Plan(0.0, pts, plan.heading, plan.speed, plan.accel, plan.curvature)
    q = lambda yaw: (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))  # noqa: E731
    at_t0 = StampedPose(0.0, (5.0, 5.0, 0.0), q(math.pi / 2))  # facing +y
    now = StampedPose(0.3, (5.0, 8.0, 0.0), q(math.pi))  # 3 m further, now facing -x
    path = plan_in_current_frame(plan, at_t0, now)
    # facing -x, the car's left is -y: the t0 origin, world (5, 5), is 3 m to its left
    assert path[0] == pytest.approx([0.0, 3.0])
    # the point 10 m ahead at t0 is world (5, 15): 7 m to the right of the car now
    assert path[1] == pytest.approx([0.0, -7.0])


def test_lookahead_beyond_the_end_of_a_short_path_continues_it():
    path = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    point, lateral = lookahead_point(path, 5.0)
    assert point == pytest.approx([5.0, 0.0]) and lateral == 0.0


def test_speed_profile_reads_the_step_at_the_plan_age():
    plan = Plan.from_rollout(integrate(np.tile([1.0, 0.0], (64, 1)), 5.0), stamp=0.0, v0=5.0)
    assert speed_profile_at(plan, 0.0) == pytest.approx((5.0, 1.0))
    assert speed_profile_at(plan, 0.25) == pytest.approx((5.25, 1.0))
    assert speed_profile_at(plan, 10.0) == pytest.approx((5.0 + 6.4, 0.0))


def test_stale_plan_gives_a_controlled_stop_along_its_path():
    settings = TrackerSettings(stop_decel=2.0, plan_timeout=0.5)
    tracker = TrajectoryTracker(settings)
    ref = circle()
    car = BicycleState(speed=8.0)
    tracker.add_pose(pose(0.0, car))
    tracker.set_plan(ref.plan_at(0.0, car))
    modes, speeds = [], []
    for k in range(round(8.0 / SIM_DT)):
        t = k * SIM_DT
        tracker.add_pose(pose(t, car))
        cmd = tracker.update(t, car.speed)
        modes.append(cmd.mode)
        speeds.append(car.speed)
        car = bicycle_step(car, cmd.accel, cmd.steering_angle, SIM_DT, settings.wheelbase)
    assert modes[0] == "tracking" and "stopping" in modes and modes[-1] == "stopped"
    first_stop = modes.index("stopping")
    assert first_stop * SIM_DT == pytest.approx(0.52, abs=0.03)
    # 8 m/s at 2 m/s^2 (after the jerk-limited ramp): stopped about 4 s later, never reversing
    stop_time = next(k for k, v in enumerate(speeds) if v == 0.0) * SIM_DT
    assert 4.3 < stop_time < 5.0
    assert min(speeds) == 0.0 and speeds[-1] == 0.0
    # it kept turning along the stale plan's circle while stopping
    assert ref.cross_track(car.x, car.y) < 0.5


def test_the_exit_command_brakes_to_zero_holding_the_steering():
    """Following a circle at 8 m/s when the controller ends: zero speed, braking at
    stop_decel, the wheels where they were (no jerk at speed), no yaw rate; from a
    standstill it just holds still."""
    settings = TrackerSettings(stop_decel=2.5)
    tracker = TrajectoryTracker(settings)
    car = BicycleState(speed=8.0)
    tracker.add_pose(pose(0.0, car))
    tracker.set_plan(circle().plan_at(0.0, car))
    last = tracker.update(0.0, car.speed)
    assert last.mode == "tracking" and last.speed > 7.0 and abs(last.steering_angle) > 0.01
    final = exit_command(last, settings.stop_decel, "controller exiting")
    assert (final.speed, final.accel, final.yaw_rate, final.jerk) == (0.0, -2.5, 0.0, 0.0)
    assert final.steering_angle == last.steering_angle and final.stamp == last.stamp
    assert (final.mode, final.reason) == ("stopping", "controller exiting")
    still = exit_command(tracker.standstill(1.0, "no odometry"), 2.5, "controller exiting")
    assert (still.mode, still.speed, still.accel) == ("stopped", 0.0, 0.0)


def test_no_plan_holds_still():
    tracker = TrajectoryTracker()
    tracker.add_pose(StampedPose(0.0, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    cmd = tracker.update(0.0, 0.0)
    assert cmd.mode == "stopped" and cmd.speed == 0.0 and cmd.accel == 0.0
    assert cmd.reason == "no plan received"


def test_settings_errors_name_the_field():
    with pytest.raises(ValueError, match="wheelbase must be > 0, got -1"):
        TrackerSettings(wheelbase=-1)
    with pytest.raises(ValueError, match="stop_decel"):
        TrackerSettings(stop_decel=7.0, max_decel=6.0)


def test_a_stop_never_raises_the_setpoint_when_the_car_does_not_slow():
    tracker = TrajectoryTracker(TrackerSettings(stop_decel=2.0))
    tracker.add_pose(StampedPose(0.0, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    speeds = [tracker.update(0.02 * k, 5.0).speed for k in range(150)]  # the car ignores us
    assert speeds[0] == 5.0 and np.all(np.diff(speeds) <= 0) and speeds[-1] == 0.0
    assert speeds[10] == pytest.approx(5.0 - 2.0 * 0.2)


def straight_plan(t0: float, speed: float = 5.0) -> Plan:
    return Plan.from_rollout(integrate(np.zeros((64, 2)), speed), t0, speed)


def straight_pose(t: float, speed: float = 5.0, start: float = 0.0) -> StampedPose:
    return StampedPose(t, (speed * (t - start), 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))


def test_a_plan_stamped_ahead_of_the_clock_is_never_followed():
    tracker = TrajectoryTracker()
    for k in range(20):
        tracker.add_pose(straight_pose(0.05 * k))
    tracker.set_plan(straight_plan(6.0))  # from a later pass of the bag: negative age
    cmd = tracker.update(0.9, 5.0)
    assert cmd.mode == "stopping" and "ahead of the clock" in cmd.reason
    assert cmd.plan_age == pytest.approx(-5.1) and cmd.speed <= 5.0
    # within the clock-skew tolerance it is followed, from its start
    tracker.set_plan(straight_plan(0.93))
    assert tracker.update(0.92, 5.0).mode == "tracking"


def test_time_jumping_back_drops_the_old_timeline_and_follows_the_new_one():
    """A bag played three times in a row: each pass the clock restarts at 0."""
    tracker = TrajectoryTracker(TrackerSettings(plan_timeout=0.5))
    for _ in range(3):
        ages = []
        for k in range(60):  # 3 s at 20 Hz: odometry, a plan every 0.1 s, a command
            t = 0.05 * k
            tracker.add_pose(straight_pose(t))
            if k % 2 == 0 and k >= 4:
                tracker.set_plan(straight_plan(t - 0.1), now=t)
            cmd = tracker.update(t, 5.0)
            ages.append(cmd.plan_age)
            assert not (cmd.mode == "tracking" and cmd.plan_age < 0), (t, cmd)
        assert cmd.mode == "tracking" and 0.0 <= cmd.plan_age <= 0.2
        assert all(a >= 0 for a in ages if not math.isnan(a))
    assert tracker.time_jumps == 2 and tracker.late_arrivals == 0


def test_plans_arriving_later_than_plan_timeout_are_counted_and_warned():
    from alpamayo_ros.control.tracking import tracker_diagnostics
    from alpamayo_ros.core.diagnostics import WARN

    tracker = TrajectoryTracker(TrackerSettings(plan_timeout=0.5))
    for k in range(40):
        tracker.add_pose(straight_pose(0.05 * k))
    tracker.set_plan(straight_plan(0.2), now=1.5)  # the model took 1.3 s
    cmd = tracker.update(1.5, 5.0)
    assert cmd.mode == "stopping" and tracker.late_arrivals == 1
    item = tracker_diagnostics(cmd, 0, tracker=tracker)
    assert item.level == WARN and "older than plan_timeout" in item.message


def test_a_forced_stop_overrides_a_good_plan():
    tracker = TrajectoryTracker()
    for k in range(20):
        tracker.add_pose(straight_pose(0.05 * k))
    tracker.set_plan(straight_plan(0.9))
    assert tracker.update(0.95, 5.0).mode == "tracking"
    cmd = tracker.update(1.0, 5.0, stop_reason="clock stalled")
    assert cmd.mode == "stopping" and cmd.reason == "clock stalled" and cmd.speed < 5.0


def test_a_stalled_clock_stops_on_wall_time_and_resumes_without_a_jump():
    tracker = TrajectoryTracker(TrackerSettings(stop_decel=2.0))
    for k in range(20):
        tracker.add_pose(straight_pose(0.05 * k))
    tracker.set_plan(straight_plan(0.9))
    assert tracker.update(0.95, 5.0).speed == pytest.approx(5.0, abs=0.2)
    speeds = [tracker.stop_without_clock(0.1 * k, "clock stalled").speed for k in range(1, 31)]
    assert np.all(np.diff(speeds) <= 0) and speeds[9] == pytest.approx(speeds[0] - 1.8, abs=1e-6)
    assert speeds[-1] == 0.0
    # The clock comes back where it stood; the car has stopped: tracking resumes from rest.
    cmd = tracker.update(0.97, 0.0)
    assert tracker.time_jumps == 0 and cmd.mode == "tracking" and cmd.speed <= 0.1
