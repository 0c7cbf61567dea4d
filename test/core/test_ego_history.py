"""Ego history: interpolation, ego-frame transform, refusals, bounded buffer."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import transforms3d.euler as te
from hypothesis import given, settings
from hypothesis import strategies as st

from alpamayo_ros.core.ego_history import (
    EgoHistorySpec,
    EgoHistoryUnavailable,
    EgoPoseBuffer,
    StampedPose,
    estimate_speed,
    travel_speed,
)
from alpamayo_ros.core.trajectory import yaw_from_rotation


def circle_pose(t: float, v: float, radius: float, yaw0: float, origin=(3.0, -2.0)) -> StampedPose:
    """Pose on a counter-clockwise circle at speed v: heading = yaw0 + v t / radius."""
    yaw = yaw0 + v * t / radius
    cx = origin[0] - radius * math.sin(yaw0)
    cy = origin[1] + radius * math.cos(yaw0)
    x = cx + radius * math.sin(yaw)
    y = cy - radius * math.cos(yaw)
    q = te.euler2quat(0.0, 0.0, yaw, "sxyz")
    return StampedPose(t, (x, y, 0.7), tuple(q))


@settings(max_examples=30, deadline=None)
@given(
    v=st.floats(1.0, 30.0),
    lateral_accel=st.floats(0.1, 8.0),
    yaw0=st.floats(-math.pi, math.pi),
    phase=st.floats(0.0, 0.02),
)
def test_constant_velocity_circle_matches_analytic_poses_to_1mm(v, lateral_accel, yaw0, phase):
    radius = max(v * v / lateral_accel, 10.0)  # drivable: <= 8 m/s^2 sideways, R >= 10 m
    buf = EgoPoseBuffer()
    for k in range(100):  # 50 Hz odometry, not aligned with the history grid
        buf.add(circle_pose(phase + 0.02 * k, v, radius, yaw0))
    t0 = 1.8
    hist = buf.history(t0)
    # Analytic: in the ego frame at t0, a point dt before lies on the same circle.
    tau = hist.stamps - t0
    ang = v * tau / radius
    expected = np.stack([radius * np.sin(ang), radius * (1 - np.cos(ang)), np.zeros_like(ang)], -1)
    np.testing.assert_allclose(hist.xyz, expected, atol=1e-3)
    np.testing.assert_allclose(yaw_from_rotation(hist.rot), ang, atol=1e-6)
    assert hist.speed == pytest.approx(v, rel=1e-2)  # a quadratic fit over 0.5 s


def test_out_of_order_messages_give_the_same_history():
    poses = [circle_pose(0.1 * k, 8.0, 40.0, 0.3) for k in range(20)]
    in_order, shuffled = EgoPoseBuffer(), EgoPoseBuffer()
    for p in poses:
        in_order.add(p)
    for i in np.random.default_rng(0).permutation(len(poses)):
        shuffled.add(poses[i])
    np.testing.assert_allclose(shuffled.history(1.9).xyz, in_order.history(1.9).xyz)


def test_history_refuses_missing_old_and_gappy_input_with_reasons():
    buf = EgoPoseBuffer(EgoHistorySpec(max_gap=0.25, max_extrapolation=0.1))
    with pytest.raises(EgoHistoryUnavailable, match="no ego pose"):
        buf.history(1.0)
    for k in range(10):
        buf.add(circle_pose(0.1 * k, 5.0, 50.0, 0.0))
    with pytest.raises(EgoHistoryUnavailable, match="too short"):
        buf.history(0.9)  # needs t0 - 1.5 s
    for k in range(10, 30):
        if k not in (20, 21, 22):
            buf.add(circle_pose(0.1 * k, 5.0, 50.0, 0.0))
    with pytest.raises(EgoHistoryUnavailable, match="gap"):
        buf.history(2.5)
    for k in range(30, 46):
        buf.add(circle_pose(0.1 * k, 5.0, 50.0, 0.0))
    with pytest.raises(EgoHistoryUnavailable, match="too old"):
        buf.history(4.5 + 0.2)
    # Within max_extrapolation: constant-velocity extrapolation is accepted.
    hist = buf.history(4.55)
    assert hist.speed == pytest.approx(5.0, rel=1e-2)


def test_buffer_never_exceeds_capacity():
    buf = EgoPoseBuffer(EgoHistorySpec(capacity=50))
    for k in range(500):
        buf.add(circle_pose(0.01 * k, 5.0, 50.0, 0.0))
        assert len(buf) <= 50
    assert buf.latest_stamp == pytest.approx(4.99)


def test_bad_pose_names_the_field():
    with pytest.raises(ValueError, match="quaternion"):
        StampedPose(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="position"):
        StampedPose(0.0, (float("nan"), 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))


def planar_history(speed, heading=None, dt=0.1):
    """An ego history (xyz (N, 3), rot (N, 3, 3), ego frame at t0) whose speed and heading
    at each of the N samples are given; positions by exact integration of a fine grid."""
    speed = np.asarray(speed, dtype=np.float64)
    heading = np.zeros_like(speed) if heading is None else np.asarray(heading, np.float64)
    fine = 100
    t = np.arange(len(speed))
    tf = np.linspace(0, len(speed) - 1, (len(speed) - 1) * fine + 1)
    vf, hf = np.interp(tf, t, speed), np.interp(tf, t, heading)
    step = dt / fine
    dx = 0.5 * step * (vf[1:] * np.cos(hf[1:]) + vf[:-1] * np.cos(hf[:-1]))
    dy = 0.5 * step * (vf[1:] * np.sin(hf[1:]) + vf[:-1] * np.sin(hf[:-1]))
    xy = np.stack([np.concatenate([[0], np.cumsum(dx)]), np.concatenate([[0], np.cumsum(dy)])], 1)
    xy = xy[::fine]
    c, s = np.cos(heading[-1]), np.sin(heading[-1])
    local = (xy - xy[-1]) @ np.array([[c, -s], [s, c]])
    yaw = heading - heading[-1]
    rot = np.zeros((len(yaw), 3, 3))
    rot[:, 0, 0], rot[:, 1, 1] = np.cos(yaw), np.cos(yaw)
    rot[:, 0, 1], rot[:, 1, 0] = -np.sin(yaw), np.sin(yaw)
    rot[:, 2, 2] = 1.0
    return np.concatenate([local, np.zeros((len(yaw), 1))], 1), rot


OFFICIAL_V0 = json.loads((Path(__file__).parent / "data" / "official_v0.json").read_text())


@pytest.mark.parametrize("case", OFFICIAL_V0["cases"], ids=lambda c: c["name"])
def test_speed_estimate_equals_the_official_estimator(case):
    # Reference values: NVlabs/alpamayo estimate_t0_states (dxy_theta_to_v_without_v0), run
    # on these float32 histories; the bound is the official float32 solve's own rounding.
    v0 = estimate_speed(np.array(case["xyz"]), np.array(case["rot"]), 0.1)
    assert v0 == pytest.approx(case["official_v0"], abs=1e-5)


T = 0.1 * np.arange(-15, 1)


@pytest.mark.parametrize(
    "speed, heading",
    [
        (np.full(16, 10.0), None),  # constant speed
        (6.0 + 2.0 * T, None),  # constant acceleration, 6 m/s at t0
        (np.full(16, 8.0), 0.05 * 8.0 * T),  # constant curvature 0.05 1/m
        (-2.0 + 0 * T, None),  # reversing
    ],
    ids=["constant speed", "constant acceleration", "constant curvature", "reversing"],
)
def test_speed_estimate_is_exact_without_noise(speed, heading):
    xyz, rot = planar_history(speed, heading)
    # exact up to the official ridge term's pull towards 0 (1e-4 relative)
    assert estimate_speed(xyz, rot, 0.1) == pytest.approx(speed[-1], abs=2e-3)


def test_speed_estimate_error_is_bounded_with_pose_noise():
    rng = np.random.default_rng(3)
    xyz, rot = planar_history(9.0 - 1.0 * T, 0.02 * 9.0 * T)
    # (pose noise m, mean error m/s, worst error m/s): the official estimator's own spread
    for sigma, mean_bound, worst_bound in ((0.01, 0.25, 0.6), (0.03, 0.75, 1.8)):
        errors = []
        for _ in range(50):
            noisy = xyz + np.concatenate([rng.normal(0, sigma, (16, 2)), np.zeros((16, 1))], 1)
            errors.append(abs(estimate_speed(noisy, rot, 0.1) - 9.0))
        assert np.mean(errors) < mean_bound and max(errors) < worst_bound, (sigma, errors)


def test_travel_speed_is_zero_for_identical_poses_and_never_negative_going_forward():
    xyz = np.zeros((16, 3))
    rot = np.broadcast_to(np.eye(3), (16, 3, 3))
    assert estimate_speed(xyz, rot, 0.1) == 0.0
    assert travel_speed(xyz, 0.0) == 0.0
    # Identical poses at the end of a stop: the official estimate dips just below 0 (the
    # model reads it as it is); what the planner and controller act on does not.
    xyz, rot = planar_history(np.maximum(4.0 - 8.0 * (T + 1.0), 0.0))
    xyz[-2] = xyz[-1]
    v0 = estimate_speed(xyz, rot, 0.1)
    assert -0.05 < v0 < 0.3 and travel_speed(xyz, v0) == max(v0, 0.0)
    # Two identical poses 0.1 s apart while driving 5 m/s (a repeated odometry message):
    # the trapezoid rule makes the official estimate about -3 m/s; never acted on.
    xyz, rot = planar_history(np.full(16, 5.0))
    xyz[-2] = xyz[-1]
    v0 = estimate_speed(xyz, rot, 0.1)
    assert v0 < 0.0 and travel_speed(xyz, v0) == 0.0
    # Monotonic forward progress of any speed profile: never negative.
    rng = np.random.default_rng(5)
    for _ in range(100):
        speed = np.maximum(np.cumsum(rng.normal(0, 1.0, 16)) + rng.uniform(0, 3), 0.0)
        xyz, rot = planar_history(speed)
        assert travel_speed(xyz, estimate_speed(xyz, rot, 0.1)) >= 0.0
    # Reversing stays negative.
    xyz, rot = planar_history(np.full(16, -2.0))
    assert travel_speed(xyz, estimate_speed(xyz, rot, 0.1)) < -1.9
