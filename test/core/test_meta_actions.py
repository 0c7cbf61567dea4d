"""Meta-actions from trajectories and from reasoning text."""

import numpy as np
import pytest

from alpamayo_ros.core import meta_actions as ma
from alpamayo_ros.core.trajectory import UnicycleSpec, integrate

SPEC = UnicycleSpec()


def actions(accel, kappa, v0):
    controls = np.zeros((64, 2))
    controls[:, 0], controls[:, 1] = accel, kappa
    r = integrate(controls, v0, SPEC)
    return ma.extract_meta_actions(r.speed, r.heading, r.y, v0, SPEC.dt)


def test_longitudinal_actions():
    assert actions(1.0, 0.0, 5.0)[0] == ma.ACCELERATE
    assert actions(0.0, 0.0, 10.0)[0] == ma.KEEP_SPEED
    assert actions(-1.0, 0.0, 10.0)[0] == ma.DECELERATE
    assert actions(0.0, 0.0, 0.0)[0] == ma.STOP


def test_lateral_actions():
    assert actions(0.0, 0.02, 10.0)[1] == ma.TURN_LEFT
    assert actions(0.0, -0.02, 10.0)[1] == ma.TURN_RIGHT
    assert actions(0.0, 0.0, 10.0)[1] == ma.GO_STRAIGHT
    kappa = np.zeros(64)
    kappa[:20], kappa[20:40] = 0.01, -0.01  # S: out and back to the same heading
    assert actions(0.0, kappa, 10.0)[1] == ma.LANE_CHANGE_LEFT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Slowing: pedestrian stepping into the crosswalk ahead", {ma.DECELERATE}),
        ("The light is red, so I come to a stop", {ma.STOP}),
        ("Lead vehicle pulls away; accelerate and keep in lane", {ma.ACCELERATE}),
        ("Change lanes to the left to pass the parked truck", {ma.LANE_CHANGE_LEFT}),
        ("Turn right at the intersection", {ma.TURN_RIGHT}),
        ("Road is clear, maintain speed and go straight", {ma.KEEP_SPEED, ma.GO_STRAIGHT}),
        ("", set()),
    ],
)
def test_meta_actions_in_text(text, expected):
    assert ma.meta_actions_in_text(text) == expected


def test_consistency():
    assert ma.is_consistent({ma.DECELERATE}, (ma.DECELERATE, ma.GO_STRAIGHT))
    assert ma.is_consistent({ma.DECELERATE}, (ma.STOP, ma.GO_STRAIGHT))
    assert not ma.is_consistent({ma.ACCELERATE}, (ma.DECELERATE, ma.GO_STRAIGHT))
    assert not ma.is_consistent({ma.TURN_LEFT}, (ma.KEEP_SPEED, ma.TURN_RIGHT))
    assert not ma.is_consistent(set(), (ma.KEEP_SPEED, ma.GO_STRAIGHT))
