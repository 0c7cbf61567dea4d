"""Plan value, its checks, and the controlled-stop fallback."""

import numpy as np
import pytest

from alpamayo_ros.core.plan import Plan, PlanLimits, make_stop_plan, plan_problems, stop_controls
from alpamayo_ros.core.trajectory import UnicycleSpec, integrate


@pytest.mark.parametrize("v0", [0.0, 0.7, 13.9])
def test_stop_plan_decelerates_at_the_given_rate_to_exactly_zero(v0):
    plan = make_stop_plan(5.0, v0, "stale input: front camera 0.4 s old", decel=2.5)
    assert plan.is_fallback and plan.fallback_reason.startswith("stale")
    assert np.all(plan.accel >= -2.5 - 1e-12) and np.all(plan.accel <= 0)
    assert plan.speed[-1] == 0.0 and np.all(plan.speed >= 0)
    np.testing.assert_allclose(plan.xyz[:, 1], 0.0)  # along the current heading
    assert plan.xyz[-1, 0] == pytest.approx(v0 * v0 / (2 * 2.5), abs=0.5 * v0 * 0.1 + 1e-9)
    assert plan.meta_actions[0] == "stop"


def test_stop_controls_reverse_speed_comes_back_to_zero():
    c = stop_controls(-1.0, 2.0)
    r = integrate(c, -1.0, UnicycleSpec())
    assert r.speed[-1] == 0.0 and np.all(c[:, 0] >= 0)


def test_plan_problems_catch_nan_and_out_of_bounds():
    good = make_stop_plan(0.0, 10.0, "test")
    assert plan_problems(good) == []
    fast = Plan(0.0, good.xyz, good.heading, good.speed + 50.0, good.accel, good.curvature)
    assert any("speed" in p for p in plan_problems(fast))
    sharp = Plan(0.0, good.xyz, good.heading, good.speed, good.accel, good.curvature + 1.0)
    assert any("curvature" in p for p in plan_problems(sharp, PlanLimits()))
    xyz = good.xyz.copy()
    xyz[5, 0] = np.nan
    assert any(
        "NaN" in p
        for p in plan_problems(Plan(0.0, xyz, good.heading, good.speed, good.accel, good.curvature))
    )


def test_plan_validation_names_the_field():
    good = make_stop_plan(0.0, 1.0, "x")
    with pytest.raises(ValueError, match="heading"):
        Plan(0.0, good.xyz, good.heading[:10], good.speed, good.accel, good.curvature)
    with pytest.raises(ValueError, match="meta_actions"):
        Plan(
            0.0,
            good.xyz,
            good.heading,
            good.speed,
            good.accel,
            good.curvature,
            meta_actions=("fly",),
        )
    with pytest.raises(ValueError, match="fallback_reason"):
        Plan(0.0, good.xyz, good.heading, good.speed, good.accel, good.curvature, is_fallback=True)
