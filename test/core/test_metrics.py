"""Open-loop metrics: hand-computed values and horizons beyond the log."""

import numpy as np
import pytest

from alpamayo_ros.core.metrics import displacement_metrics


def test_hand_computed_values():
    true = np.zeros((64, 2))
    pred = np.zeros((2, 64, 2))
    pred[0, :, 1] = 1.0  # 1 m to the side everywhere
    pred[1, :, 0] = np.arange(1, 65) * 0.1  # drifts 0.1 m per step
    m = displacement_metrics(pred, true, dt=0.1, chosen=0)
    assert m["ade_1.0s"] == pytest.approx(1.0) and m["fde_6.4s"] == pytest.approx(1.0)
    # sample 1 over 1 s: mean of 0.1..1.0 = 0.55 < 1.0
    assert m["min_ade_1.0s"] == pytest.approx(0.55)
    assert m["min_ade_6.4s"] == pytest.approx(1.0)  # mean of 0.1..6.4 = 3.25 > 1


def test_zero_for_a_perfect_prediction_and_horizons_beyond_the_log_left_out():
    true = np.cumsum(np.ones((40, 2)), axis=0)
    m = displacement_metrics(np.concatenate([true, np.zeros((24, 2))])[None], true)
    assert set(m) == {
        "ade_1.0s",
        "fde_1.0s",
        "min_ade_1.0s",
        "ade_3.0s",
        "fde_3.0s",
        "min_ade_3.0s",
    }
    assert all(v == 0.0 for v in m.values())


def test_recent_controls_and_the_constant_controls_baseline_on_a_braking_turn():
    import numpy as np

    from alpamayo_ros.core.metrics import constant_controls_xy, recent_controls
    from alpamayo_ros.core.trajectory import rotation_from_yaw

    # 16 poses 0.1 s apart of a car braking at 1.5 m/s^2 on a 40 m radius, ending at t0.
    dt, a, k = 0.1, -1.5, 1 / 40
    t = dt * np.arange(-15, 1)
    v = 12.0 + a * t  # 12 m/s at t0
    s = 12.0 * t + 0.5 * a * t**2  # arc length, 0 at t0
    yaw = k * s
    xy = np.stack([np.sin(yaw) / k, (1 - np.cos(yaw)) / k], axis=1)
    rot = np.stack([rotation_from_yaw(float(y)) for y in yaw])
    accel, curvature = recent_controls(np.c_[xy, np.zeros(16)], rot, dt)
    assert accel == pytest.approx(a, abs=0.05) and curvature == pytest.approx(k, rel=0.01)
    path = constant_controls_xy(float(v[-1]), accel, curvature, 64, dt)
    # it stops after 12 / 1.5 = 8 s > 6.4 s: exact arc of the braking turn
    s_future = 12.0 * dt * np.arange(1, 65) + 0.5 * a * (dt * np.arange(1, 65)) ** 2
    expect = np.stack([np.sin(k * s_future) / k, (1 - np.cos(k * s_future)) / k], axis=1)
    assert np.abs(path - expect).max() < 0.3
    # a harder brake stops and stays stopped (no reversing)
    stop = constant_controls_xy(5.0, -4.0, 0.0, 64, dt)
    assert np.allclose(stop[-1], [5.0**2 / (2 * 4.0), 0.0], atol=1e-6)
    assert np.all(np.diff(stop[:, 0]) >= -1e-12)
