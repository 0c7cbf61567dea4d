"""Ego history: interpolation, ego-frame transform, refusals, bounded buffer."""

import math

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


def test_speed_estimate_follows_acceleration():
    t = 0.1 * np.arange(-15, 1)
    a, v = 2.0, 6.0  # speed at t0 is v
    x = v * t + 0.5 * a * t * t
    xyz = np.stack([x, np.zeros(16), np.zeros(16)], -1)
    assert estimate_speed(xyz, 0.1) == pytest.approx(v, abs=1e-9)
