"""The engage gate: a controller not engaged stops as for a stale plan, and follows the plan
once engaged (ROS-free)."""

import math

import numpy as np

from alpamayo_ros.control.engagement import NOT_ENGAGED, Engagement
from alpamayo_ros.control.tracking import TrajectoryTracker, tracker_diagnostics
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.plan import Plan
from alpamayo_ros.core.trajectory import integrate


def test_requests_change_the_state_once_and_say_so():
    gate = Engagement()
    assert not gate.engaged and gate.stop_reason == NOT_ENGAGED and math.isnan(gate.since)
    assert gate.request(False, 1.0) == "already disengaged" and gate.changes == 0
    assert gate.request(True, 2.0).startswith("engaged") and gate.stop_reason == ""
    assert gate.request(True, 2.5) == "already engaged"
    assert gate.request(False, 3.0).startswith("disengaged") and gate.stop_reason == NOT_ENGAGED
    assert (gate.changes, gate.since) == (2, 3.0)


def drive(tracker: TrajectoryTracker, gate: Engagement, t0: float, t1: float, speed: float):
    """Plans of 10 m/s straight ahead every 0.1 s and odometry at `speed`; commands at
    50 Hz from t0 to t1 through the gate. Returns the commands."""
    commands = []
    for k in range(round((t1 - t0) * 50)):
        now = t0 + k * 0.02
        tracker.add_pose(StampedPose(now, (speed * now, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
        if k % 5 == 0:
            rollout = integrate(np.zeros((64, 2)), 10.0)
            tracker.set_plan(Plan.from_rollout(rollout, now, 10.0), now=now)
        commands.append(tracker.update(now, speed, stop_reason=gate.stop_reason))
    return commands


def test_not_engaged_holds_a_stop_and_engaging_follows_the_plan():
    tracker, gate = TrajectoryTracker(), Engagement()
    held = drive(tracker, gate, 10.0, 11.0, speed=0.0)
    assert all(c.mode == "stopped" and c.speed == 0.0 for c in held)
    assert all(c.reason == NOT_ENGAGED for c in held)
    gate.request(True, 11.0)
    moving = drive(tracker, gate, 11.0, 12.0, speed=0.0)
    assert all(c.mode == "tracking" and c.reason == "" for c in moving)
    # accelerating towards the plan's 10 m/s (the setpoint stays within 1 m/s of the
    # measured speed, which this test holds at 0)
    assert moving[-1].accel == tracker.settings.max_accel and moving[-1].speed > 0.5


def test_disengaging_while_moving_is_a_controlled_stop():
    tracker, gate = TrajectoryTracker(), Engagement(engaged=True)
    drive(tracker, gate, 10.0, 11.0, speed=10.0)
    gate.request(False, 11.0)
    stopping = drive(tracker, gate, 11.0, 12.0, speed=10.0)
    assert all(c.mode == "stopping" and c.reason == NOT_ENGAGED for c in stopping)
    speeds = [c.speed for c in stopping]
    assert speeds == sorted(speeds, reverse=True)  # the setpoint only falls
    decel = tracker.settings.stop_decel
    assert speeds[0] - speeds[-1] <= decel * 1.0 + 1e-9  # no faster than stop_decel
    assert speeds[-1] < 10.0 - 0.5 * decel


def test_diagnostics_say_whether_engaged_and_a_deliberate_hold_is_ok():
    tracker, gate = TrajectoryTracker(), Engagement()
    (held,) = drive(tracker, gate, 10.0, 10.02, speed=0.0)
    item = tracker_diagnostics(held, 0, tracker=tracker, engaged=False)
    assert item.level == 0 and dict(item.values)["engaged"] == "no"
    assert item.message == f"stopped: {NOT_ENGAGED}"
    gate.request(False, 10.0)
    tracker2 = TrajectoryTracker()
    drive(tracker2, Engagement(engaged=True), 10.0, 11.0, speed=10.0)
    (stopping,) = drive(tracker2, gate, 11.0, 11.02, speed=10.0)
    moving_item = tracker_diagnostics(stopping, 0, tracker=tracker2, engaged=False)
    assert moving_item.level == 1  # still moving: WARN until it stands
    engaged_item = tracker_diagnostics(held, 0, tracker=tracker, engaged=True)
    assert dict(engaged_item.values)["engaged"] == "yes"


def test_without_hold_the_standstill_of_a_controller_not_engaged_is_not_published():
    hold, silent = Engagement(), Engagement(hold=False)
    assert all(hold.publishes(mode) for mode in ("tracking", "stopping", "stopped"))
    assert silent.publishes("stopping")  # the controlled stop is always commanded
    assert not silent.publishes("stopped")
    silent.request(True, 1.0)
    assert silent.publishes("stopped")  # engaged: every command goes out


def test_a_blocked_gate_refuses_to_engage_and_a_block_while_engaged_stops():
    """A managed controller: inactive = blocked (engaging refused, the stops say why);
    deactivating an engaged one disengages it (a controlled stop); activating unblocks,
    and engages when asked (engage_on_start)."""
    why = "inactive (lifecycle): activate the node first"
    gate = Engagement(blocked=why)
    assert gate.request(True, 1.0) == f"refused: {why}" and not gate.engaged
    assert gate.stop_reason == why and gate.changes == 0
    assert gate.unblock(False, 2.0) == "may engage (~/engage)" and not gate.engaged
    assert gate.stop_reason == NOT_ENGAGED
    assert gate.unblock(True, 3.0).startswith("engaged") and gate.engaged

    tracker = TrajectoryTracker()
    drive(tracker, gate, 10.0, 11.0, speed=10.0)
    assert gate.block(why, 11.0).startswith("disengaged") and not gate.engaged
    stopping = drive(tracker, gate, 11.0, 12.0, speed=10.0)
    assert all(c.mode == "stopping" and c.reason == why for c in stopping)
    assert gate.request(True, 12.0).startswith("refused")
