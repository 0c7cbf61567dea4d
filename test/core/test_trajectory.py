"""Unicycle model: integration against closed forms, the inverse, the released representation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpamayo_ros.core.trajectory import (
    TrajectoryError,
    UnicycleSpec,
    fit_controls,
    heading_from_path,
    held_at_standstill,
    integrate,
    rollout_from_xyz_rot,
    rotation_from_yaw,
    yaw_from_rotation,
)

SPEC = UnicycleSpec()


def test_straight_constant_acceleration_matches_closed_form():
    controls = np.zeros((64, 2))
    controls[:, 0] = 1.5
    r = integrate(controls, 3.0, SPEC)
    t = SPEC.times
    np.testing.assert_allclose(r.x, 3.0 * t + 0.75 * t * t, atol=1e-9)
    np.testing.assert_allclose(r.y, 0.0, atol=1e-12)
    np.testing.assert_allclose(r.speed, 3.0 + 1.5 * t, atol=1e-12)


@pytest.mark.parametrize("kappa", [0.05, -0.2])
def test_constant_curvature_at_constant_speed_is_a_circle(kappa):
    controls = np.zeros((64, 2))
    controls[:, 1] = kappa
    v = 7.0
    r = integrate(controls, v, SPEC)
    theta = kappa * v * SPEC.times
    np.testing.assert_allclose(r.x, np.sin(theta) / kappa, atol=1e-9)
    np.testing.assert_allclose(r.y, (1 - np.cos(theta)) / kappa, atol=1e-9)
    np.testing.assert_allclose(r.heading, theta, atol=1e-12)


def test_exact_integration_is_exact_for_constant_controls_within_a_step():
    # Integrate with steps of 0.1 s, then with 100x finer steps: positions agree to < 1 um.
    rng = np.random.default_rng(3)
    coarse = np.stack([rng.uniform(-3, 3, 64), rng.uniform(-0.1, 0.1, 64)], -1)
    fine_spec = UnicycleSpec(num_steps=6400, dt=0.001)
    fine = integrate(np.repeat(coarse, 100, axis=0), 8.0, fine_spec)
    exact = integrate(coarse, 8.0, SPEC)
    np.testing.assert_allclose(exact.x, fine.x[99::100], atol=1e-6)
    np.testing.assert_allclose(exact.y, fine.y[99::100], atol=1e-6)


def test_trapezoid_is_the_released_discretisation_and_differs_slightly_from_exact():
    controls = np.zeros((64, 2))
    controls[:, 1] = 0.1
    trap = integrate(controls, 10.0, UnicycleSpec(integration="trapezoid"))
    exact = integrate(controls, 10.0, SPEC)
    # Released formula, written out: x_{k+1} = x_k + dt/2 (v cos h_k + v cos h_{k+1}).
    h = np.concatenate([[0.0], trap.heading])
    x = np.cumsum(0.05 * 10.0 * (np.cos(h[:-1]) + np.cos(h[1:])))
    np.testing.assert_allclose(trap.x, x, atol=1e-12)
    gap = np.abs(trap.xy - exact.xy).max()
    assert 1e-6 < gap < 0.2


def test_batched_integration_equals_one_by_one():
    rng = np.random.default_rng(0)
    controls = np.stack([rng.normal(0, 1, (2, 3, 64)), rng.normal(0, 0.02, (2, 3, 64))], -1)
    v0 = rng.uniform(0, 10, (2, 3))
    batched = integrate(controls, v0, SPEC)
    one = integrate(controls[1, 2], v0[1, 2], SPEC)
    np.testing.assert_allclose(batched.xy[1, 2], one.xy)


def test_bad_controls_are_refused_naming_the_shape():
    with pytest.raises(TrajectoryError, match=r"\(\.\.\., 64, 2\)"):
        integrate(np.zeros((10, 2)), 1.0, SPEC)
    bad = np.zeros((64, 2))
    bad[3, 1] = np.nan
    with pytest.raises(TrajectoryError, match="NaN"):
        integrate(bad, 1.0, SPEC)


def test_spec_validation_names_the_field():
    with pytest.raises(TrajectoryError, match="dt"):
        UnicycleSpec(dt=0.0)
    with pytest.raises(TrajectoryError, match="curvature_limits"):
        UnicycleSpec(curvature_limits=(0.2, -0.2))


smooth_profiles = st.tuples(
    st.floats(0.0, 25.0),  # v0
    st.floats(-2.0, 2.0),  # mean acceleration
    st.floats(-1.0, 1.0),  # acceleration wiggle amplitude
    st.floats(-0.08, 0.08),  # mean curvature
    st.floats(-0.05, 0.05),  # curvature wiggle amplitude
    st.floats(0.1, 1.0),  # wiggle frequency, Hz
)


@settings(max_examples=40, deadline=None)
@given(smooth_profiles)
def test_integrate_fit_integrate_reproduces_smooth_paths_within_5cm(profile):
    v0, a_mean, a_amp, k_mean, k_amp, freq = profile
    t = SPEC.times
    accel = a_mean + a_amp * np.sin(2 * np.pi * freq * t)
    kappa = k_mean + k_amp * np.cos(2 * np.pi * freq * t)
    # Keep speed non-negative: a vehicle that brakes to a stop holds still.
    v = v0 + np.cumsum(accel * SPEC.dt)
    accel = np.where(v < 0, 0.0, accel)
    first = integrate(np.stack([accel, kappa], -1), v0, SPEC)
    controls = fit_controls(first.xy, v0, SPEC)
    again = integrate(controls, v0, SPEC)
    assert np.linalg.norm(again.xy - first.xy, axis=-1).max() < 0.05


def test_fit_controls_at_standstill_gives_zero_controls():
    controls = fit_controls(np.zeros((64, 2)), 0.0, SPEC)
    np.testing.assert_allclose(controls, 0.0, atol=1e-6)


def test_fit_controls_respects_the_limits():
    # A path no unicycle within the limits can follow: a 90 degree corner at 10 m/s.
    xy = np.zeros((64, 2))
    xy[:10, 0] = np.arange(1, 11)
    xy[10:, 0] = 10.0
    xy[10:, 1] = np.arange(1, 55)
    controls = fit_controls(xy, 10.0, SPEC)
    assert np.all(np.abs(controls[:, 1]) <= 0.33 + 1e-12)
    assert np.all(np.abs(controls[:, 0]) <= 9.8 + 1e-12)


def test_released_representation_round_trip():
    controls = np.zeros((64, 2))
    controls[:, 0] = -0.5
    controls[:, 1] = 0.03
    r = integrate(controls, 12.0, SPEC)
    xyz, rot = r.to_xyz_rot(z=0.4)
    assert xyz.shape == (64, 3) and rot.shape == (64, 3, 3)
    np.testing.assert_allclose(xyz[:, 2], 0.4)
    np.testing.assert_allclose(
        np.einsum("tij,tkj->tik", rot, rot), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12
    )
    back = rollout_from_xyz_rot(xyz, rot, 12.0, SPEC)
    np.testing.assert_allclose(back.xy, r.xy, atol=0.01)
    np.testing.assert_allclose(back.controls, controls, atol=0.05)


def test_yaw_rotation_round_trip():
    yaw = np.linspace(-3.1, 3.1, 50)
    np.testing.assert_allclose(yaw_from_rotation(rotation_from_yaw(yaw)), yaw, atol=1e-12)


def test_heading_from_path_holds_heading_while_stopped():
    xy = np.zeros((64, 2))
    xy[:10] = np.stack([np.arange(1, 11), np.arange(1, 11)], -1)  # 45 degrees, then still
    xy[10:] = xy[9]
    h = heading_from_path(xy)
    np.testing.assert_allclose(h[:9], np.pi / 4, atol=1e-9)
    np.testing.assert_allclose(h[10:], h[9])


@pytest.mark.parametrize("integration", ["trapezoid", "exact"])
def test_held_at_standstill_stops_where_the_speed_reaches_zero(integration):
    """From 6 m/s at -3 m/s^2 the speed reaches zero at 2 s: the held rollout has the same
    states until then, stops exactly at 0 m/s, v0^2 / (2 a) = 6 m ahead, and stays there."""
    spec = UnicycleSpec(integration=integration)
    controls = np.tile([-3.0, 0.02], (64, 1))
    roll = integrate(controls, 6.0, spec)
    held = held_at_standstill(roll)
    assert held is not None and held.speed.min() == 0.0
    np.testing.assert_allclose(held.speed, np.maximum(roll.speed, 0.0), atol=1e-12)
    stop = int(np.argmax(roll.speed <= 0))  # the step ending at 2.0 s
    for name in ("x", "y", "heading", "speed"):
        np.testing.assert_allclose(getattr(held, name)[:stop], getattr(roll, name)[:stop])
    assert np.hypot(held.x[stop], held.y[stop]) == pytest.approx(6.0, abs=0.01)
    assert np.all(held.x[stop:] == held.x[stop]) and np.all(
        held.heading[stop:] == held.heading[stop]
    )
    assert np.all(held.accel[stop + 1 :] == 0.0)


def test_held_at_standstill_moves_off_when_the_drawn_speed_turns_positive():
    controls = np.concatenate([np.tile([-3.0, 0.0], (30, 1)), np.tile([3.0, 0.0], (34, 1))])
    roll = integrate(controls, 6.0, UnicycleSpec(integration="trapezoid"))
    held = held_at_standstill(roll)
    assert held is not None
    np.testing.assert_allclose(held.speed, np.maximum(roll.speed, 0.0), atol=1e-12)
    assert held.speed[-1] == pytest.approx(roll.speed[-1]) and held.speed[-1] > 0
    assert np.all(np.diff(held.x) >= -1e-12)  # never backwards


def test_held_at_standstill_leaves_forward_and_reversing_rollouts_alone():
    spec = UnicycleSpec(integration="trapezoid")
    assert held_at_standstill(integrate(np.tile([-0.5, 0.0], (64, 1)), 6.0, spec)) is None
    reversing = integrate(np.tile([-0.5, 0.0], (64, 1)), -1.0, spec)  # backing up
    assert held_at_standstill(reversing) is None
