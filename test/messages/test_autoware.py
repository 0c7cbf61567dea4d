"""DrivingPlan -> autoware_planning_msgs/Trajectory -> values (CI without Autoware: the
definitions are registered in our rosbags typestore)."""

import math

import numpy as np
import pytest

from alpamayo_ros.bag.messages import typestore
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.plan import Plan
from alpamayo_ros.core.trajectory import integrate
from alpamayo_ros.messages.autoware import (
    AUTOWARE_TRAJECTORY,
    autoware_trajectory_msg,
    states_from_autoware,
)

STORE = typestore()


def types(name):
    return STORE.types[name]


def curving_plan() -> Plan:
    controls = np.stack([np.linspace(1.0, -2.0, 64), np.linspace(0.0, 0.05, 64)], axis=1)
    roll = integrate(controls, 12.0)
    return Plan.from_rollout(roll, stamp=1700000000.5, v0=12.0, frame_id="base_link")


def roundtrip(msg):
    raw = STORE.serialize_cdr(msg, AUTOWARE_TRAJECTORY)
    return STORE.deserialize_cdr(raw, AUTOWARE_TRAJECTORY)


def test_the_autoware_trajectory_carries_every_field_of_the_plan():
    plan = curving_plan()
    back = states_from_autoware(roundtrip(autoware_trajectory_msg(plan, types, wheelbase=2.8)))
    assert back["t0"] == pytest.approx(plan.stamp, abs=1e-9) and back["frame"] == "base_link"
    np.testing.assert_allclose(back["times"], plan.times, atol=1e-9)
    np.testing.assert_allclose(back["xyz"], plan.xyz, atol=1e-6)  # positions: float64
    np.testing.assert_allclose(back["heading"], plan.heading, atol=1e-6)
    # float32 fields: within half an ulp, < 1e-6 below 32 m/s
    np.testing.assert_allclose(back["speed"], plan.speed, atol=1e-6)
    np.testing.assert_allclose(back["accel"], plan.accel, atol=1e-6)
    np.testing.assert_allclose(back["heading_rate"], plan.speed * plan.curvature, atol=1e-6)
    # the kinematic bicycle's wheel angle, exactly (to float32)
    wheel = np.arctan(2.8 * plan.curvature).astype(np.float32)
    assert np.array_equal(back["front_wheel_angle"].astype(np.float32), wheel)


def test_the_first_point_is_the_ego_at_t0_and_a_fixed_frame_moves_all_points():
    plan = curving_plan()
    msg = roundtrip(autoware_trajectory_msg(plan, types, wheelbase=2.8))
    first = msg.points[0]
    assert first.time_from_start.sec == 0 and first.time_from_start.nanosec == 0
    assert first.longitudinal_velocity_mps == pytest.approx(12.0, abs=1e-6)
    assert (first.pose.position.x, first.pose.position.y) == (0.0, 0.0)
    # Ego at (100, 50) in map, heading 90 deg: the plan's +x becomes map +y.
    yaw = math.pi / 2
    pose = StampedPose(plan.stamp, (100.0, 50.0, 2.0), (math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)))
    moved = states_from_autoware(
        roundtrip(autoware_trajectory_msg(plan, types, 2.8, pose_t0=pose, fixed_frame="map"))
    )
    assert moved["frame"] == "map"
    np.testing.assert_allclose(moved["xyz"][:, 0], 100.0 - plan.xyz[:, 1], atol=1e-6)
    np.testing.assert_allclose(moved["xyz"][:, 1], 50.0 + plan.xyz[:, 0], atol=1e-6)
    np.testing.assert_allclose(moved["heading"], plan.heading + yaw, atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="wheelbase must be > 0 m, got 0"):
        autoware_trajectory_msg(curving_plan(), types, wheelbase=0.0)


def test_candidate_trajectories_carry_every_sample_and_name_the_model():
    from dataclasses import replace

    from alpamayo_ros.messages.autoware import (
        AUTOWARE_CANDIDATES,
        autoware_candidates_msg,
        generator_uuid,
    )

    plan = replace(curving_plan(), model_id="/data/Alpamayo-1.5-10B", num_samples=3)
    samples = []
    for k, bend in enumerate((0.0, 0.02, -0.03)):
        controls = np.stack([np.full(64, 0.5 * k), np.full(64, bend)], axis=1)
        samples.append(Plan.from_rollout(integrate(controls, 12.0), plan.stamp, 12.0))
    msg = autoware_candidates_msg(plan, samples, types, wheelbase=2.8)
    back = STORE.deserialize_cdr(STORE.serialize_cdr(msg, AUTOWARE_CANDIDATES), AUTOWARE_CANDIDATES)
    assert len(back.candidate_trajectories) == 3 and len(back.generator_info) == 1
    info = back.generator_info[0]
    assert info.generator_name.data == "alpamayo_ros: /data/Alpamayo-1.5-10B"
    assert bytes(info.generator_id.uuid) == generator_uuid(plan.model_id)
    assert generator_uuid(plan.model_id) == generator_uuid("/data/Alpamayo-1.5-10B")  # stable
    for smp, cand in zip(samples, back.candidate_trajectories, strict=True):
        assert bytes(cand.generator_id.uuid) == generator_uuid(plan.model_id)
        assert cand.header.frame_id == "base_link"
        assert cand.header.stamp.sec == 1700000000 and cand.header.stamp.nanosec == 500_000_000
        got = states_from_autoware(cand)
        assert np.abs(got["xyz"] - smp.xyz).max() < 1e-6
        assert np.abs(got["speed"] - smp.speed).max() < 1e-5
        assert np.allclose(got["front_wheel_angle"], np.arctan(2.8 * smp.curvature), atol=1e-7)


def test_a_stop_plan_is_the_only_candidate():
    from alpamayo_ros.core.plan import make_stop_plan
    from alpamayo_ros.planning.planner import PlanOutcome

    model = curving_plan()
    stop = make_stop_plan(model.stamp, 10.0, "stale input: camera_front_wide_120fov")
    assert PlanOutcome(stop, sample_plans=(model,)).candidates == (stop,)
    assert PlanOutcome(model, sample_plans=(model, model)).candidates == (model, model)
