"""The planning loop without ROS: complete inputs -> a model plan; anything wrong -> a
controlled stop that says why."""

import math
from dataclasses import replace

import numpy as np
import pytest

from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.plan import Plan
from alpamayo_ros.core.trajectory import UnicycleSpec, integrate
from alpamayo_ros.planning.planner import PlanInputs, Planner, choose_sample
from alpamayo_ros.planning.requests import PlanResult, PolicySample
from alpamayo_ros.planning.settings import PlannerSettings

RIG = CameraRig.released_default()
SPEED = 6.0


def fill(planner: Planner, until: float, cameras=RIG.names, odom: bool = True) -> None:
    """2 s of a straight drive at SPEED m/s: poses at 20 Hz, frames at 10 Hz."""
    img = np.full((32, 48, 3), 128, np.uint8)
    t = until - 2.0
    for k in range(41):
        s = t + 0.05 * k
        if odom:
            planner.add_pose(StampedPose(s, (SPEED * s, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
        if k % 2 == 0:
            for cam in cameras:
                planner.add_image(cam, s, img)


def sample(controls: np.ndarray, v0: float = SPEED) -> PolicySample:
    roll = integrate(controls, v0, UnicycleSpec(integration="trapezoid"))
    xyz, rot = roll.to_xyz_rot()
    return PolicySample("Keep speed: the road ahead is clear.", controls, roll, xyz, rot, True)


class FixedPolicy:
    """Returns the given controls for every sample (or raises)."""

    model_id = "fixed"

    def __init__(self, controls=None, error: Exception | None = None) -> None:
        self.controls = np.zeros((64, 2)) if controls is None else controls
        self.error = error
        self.calls: list[dict] = []

    def plan(self, requests, **kwargs):
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        n = kwargs["num_samples"]
        return PlanResult([[sample(self.controls)] * n for _ in requests], {"total": 1.0})


def test_complete_inputs_give_a_model_plan_with_its_stamps():
    policy = FixedPolicy()
    planner = Planner(policy, RIG, PlannerSettings(num_samples=3, seed=7))
    fill(planner, 10.0)
    prepared = planner.prepare(10.05)
    assert isinstance(prepared, PlanInputs)
    assert prepared.t0 == pytest.approx(10.0)
    outcome = planner.run(prepared)
    plan = outcome.plan
    assert not plan.is_fallback and plan.num_samples == 3 and plan.model_id == "fixed"
    assert plan.camera_stamps.shape == (4, 4) and plan.camera_stamps[0, -1] == pytest.approx(10.0)
    assert plan.odometry_stamp == pytest.approx(10.0)
    assert plan.meta_actions == ("keep_speed", "go_straight")
    assert plan.speed[-1] == pytest.approx(SPEED)  # v0 came from the ego history
    assert policy.calls[0]["seed"] == 8  # base seed + tick count
    assert outcome.sample_xy is not None and outcome.sample_xy.shape == (3, 64, 2)


def test_stale_camera_gives_a_stop_plan_naming_it():
    planner = Planner(FixedPolicy(), RIG, PlannerSettings(max_input_age=0.3))
    fill(planner, 10.0, cameras=RIG.names[:3])
    fill(planner, 9.0, cameras=RIG.names[3:], odom=False)  # tele camera stopped at 9 s
    plan = planner.prepare(10.05)
    assert isinstance(plan, Plan) and plan.is_fallback
    assert "camera_front_tele_30fov: 1.05 s old" in plan.fallback_reason
    assert plan.speed[0] < SPEED and plan.speed[-1] == pytest.approx(
        0.0, abs=1e-9
    )  # decelerating to a stop
    assert np.all(np.diff(plan.speed) <= 1e-12) and np.allclose(plan.xyz[:, 1], 0.0)


def test_no_odometry_gives_a_stop_plan_at_standstill():
    planner = Planner(FixedPolicy(), RIG)
    fill(planner, 10.0, odom=False)
    plan = planner.prepare(10.0)
    assert isinstance(plan, Plan) and "odometry: none yet" in plan.fallback_reason
    assert np.all(plan.speed == 0.0)


def test_model_error_gives_a_stop_plan_from_the_current_speed():
    planner = Planner(FixedPolicy(error=RuntimeError("CUDA out of memory")), RIG)
    fill(planner, 10.0)
    outcome = planner.step(10.0)
    assert outcome.plan.is_fallback
    assert outcome.plan.fallback_reason == "model error: RuntimeError: CUDA out of memory"
    # 2 m/s^2 from 6 m/s: the first step is at 5.8 m/s
    assert outcome.plan.speed[0] == pytest.approx(SPEED - 0.2, abs=1e-3)  # official v0: ridge bias


@pytest.mark.parametrize(
    ("controls", "problem"),
    [
        (np.tile([0.0, 0.5], (64, 1)), "curvature"),
        (np.tile([-4.0, 0.0], (64, 1)), "speed"),  # reverses at up to -19.6 m/s
    ],
)
def test_invalid_model_output_is_rejected_for_a_stop(controls, problem):
    planner = Planner(FixedPolicy(controls), RIG, PlannerSettings(hold_at_standstill=False))
    fill(planner, 10.0)
    plan = planner.step(10.0).plan
    assert plan.is_fallback and plan.fallback_reason.startswith("model plan rejected")
    assert problem in plan.fallback_reason


def test_nan_in_the_model_output_is_rejected_for_a_stop():
    class NanPolicy(FixedPolicy):
        def plan(self, requests, **kwargs):
            result = super().plan(requests, **kwargs)
            smp = result.samples[0][0]
            speed = smp.rollout.speed.copy()
            speed[10] = math.nan
            bad = replace(smp, rollout=replace(smp.rollout, speed=speed))
            return PlanResult([[bad]], result.timings_ms)

    planner = Planner(NanPolicy(), RIG, PlannerSettings(num_samples=1))
    fill(planner, 10.0)
    plan = planner.step(10.0).plan
    assert plan.is_fallback and plan.fallback_reason == (
        "model plan rejected: speed has NaN or infinite values"
    )


def test_no_model_gives_stop_plans():
    planner = Planner(None, RIG)
    fill(planner, 10.0)
    assert planner.step(10.0).plan.fallback_reason == "no model loaded"


def test_median_sample_is_the_one_closest_to_the_others():
    xy = np.zeros((5, 64, 2))
    xy[:, :, 1] = np.array([-3.0, 0.4, 0.0, -0.5, 9.0])[:, None]  # median 0
    assert choose_sample(xy, "median") == 2
    assert choose_sample(xy, "first") == 0


def test_consistent_choice_prefers_samples_whose_text_matches_their_trajectory():
    xy = np.zeros((5, 64, 2))
    xy[:, :, 1] = np.array([-3.0, 0.4, 0.0, -0.5, 9.0])[:, None]
    consistent = np.array([True, False, False, True, True])
    # the median of samples 0, 3, 4 (y = -3, -0.5, 9) is -0.5: sample 3
    assert choose_sample(xy, "consistent", consistent) == 3
    assert choose_sample(xy, "consistent", np.zeros(5, bool)) == 2  # none: plain median
    assert choose_sample(xy, "median", consistent) == 2


def test_equally_close_samples_are_chosen_without_float_rounding():
    """Two consistent samples are always equally close to their median (its midpoint): the
    one closer to the median of all samples is chosen, whatever rounding noise (the eager
    and fast engines differ by ~1e-5 m) says; a tie there too goes to the first."""
    base = np.array([-3.0, 0.4, 0.0, -0.5, 9.0])
    consistent = np.array([True, False, False, True, False])  # samples 0 and 3
    for noise in (0.0, 1e-5, -1e-5):
        xy = np.zeros((5, 64, 2))
        xy[:, :, 1] = base[:, None]
        xy[0, :, 1] += noise
        # all five: median 0, sample 3 (-0.5) is closer than sample 0 (-3)
        assert choose_sample(xy, "consistent", consistent) == 3
    xy = np.zeros((2, 64, 2))
    xy[:, :, 1] = np.array([[1.0], [-1.0 + 1e-5]])
    assert choose_sample(xy, "median") == 0
    xy[:, :, 1] = np.array([[1.0 + 1e-5], [-1.0]])
    assert choose_sample(xy, "median") == 0


def test_the_published_sample_says_what_it_does():
    keep = sample(np.zeros((64, 2)))
    stop_text = PolicySample("Stop: a pedestrian is crossing.", keep.controls, keep.rollout,
                             keep.xyz, keep.rot, True)  # fmt: skip

    class Mixed(FixedPolicy):
        def plan(self, requests, **kwargs):
            return PlanResult([[stop_text, stop_text, keep]], {"total": 1.0})

    planner = Planner(Mixed(), RIG, PlannerSettings(num_samples=3))
    fill(planner, 10.0)
    plan = planner.step(10.0).plan
    assert plan.chosen_sample == 2 and plan.reasoning.startswith("Keep speed")


def test_settings_errors_name_the_field_and_value():
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        PlannerSettings(top_p=1.5)
    with pytest.raises(ValueError, match=r"sample_choice .* got 'best'"):
        PlannerSettings(sample_choice="best")  # type: ignore[arg-type]


def test_tiny_policy_end_to_end(tiny_policy):
    planner = Planner(tiny_policy, RIG, PlannerSettings(num_samples=2, max_reasoning_tokens=4))
    fill(planner, 10.0)
    outcome = planner.step(10.0)
    assert outcome.plan.num_points == 64
    assert set(outcome.plan.latency_ms) <= {"preprocess", "prefill", "reasoning", "trajectory",
                                            "total"}  # fmt: skip
    assert outcome.sample_xy is not None or outcome.plan.is_fallback


def test_time_jumping_back_clears_the_buffers_and_planning_resumes_on_the_new_pass():
    planner = Planner(FixedPolicy(), RIG, PlannerSettings(num_samples=1))
    fill(planner, 10.0)
    assert planner.check_clock(10.0, wall=0.0) is None
    assert isinstance(planner.prepare(10.05), PlanInputs)
    jump = planner.check_clock(2.0, wall=0.1)  # the bag again, from 2 s
    assert jump is not None and len(planner.frames) == 0 and len(planner.poses) == 0
    stop = planner.prepare(2.0)
    assert isinstance(stop, Plan) and stop.is_fallback and stop.stamp == 2.0
    fill(planner, 4.0)
    prepared = planner.prepare(4.05)
    assert isinstance(prepared, PlanInputs) and prepared.t0 == pytest.approx(4.0)


def test_inputs_stamped_ahead_of_the_clock_are_refused():
    from alpamayo_ros.planning.planner import StampAhead

    planner = Planner(FixedPolicy(), RIG, PlannerSettings())
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(StampAhead, match=r"camera_front_wide_120fov frame stamped 6\.00 s ahead"):
        planner.add_image("camera_front_wide_120fov", 16.0, img, now=10.0)
    with pytest.raises(StampAhead, match="ego pose"):
        planner.add_pose(StampedPose(16.0, (0, 0, 0), (1, 0, 0, 0)), now=10.0)
    assert len(planner.frames) == 0 and len(planner.poses) == 0
    planner.add_image("camera_front_wide_120fov", 10.3, img, now=10.0)  # within tolerance
    # Buffered without a clock check (e.g. before the jump was seen): still no plan from it.
    fill(planner, 16.0)
    stop = planner.prepare(10.0)
    assert isinstance(stop, Plan) and stop.fallback_reason.startswith("input ahead of the clock")


def test_frames_ahead_of_the_clock_wait_for_it_and_a_plan_is_never_stamped_ahead():
    """The clock reads 10.0 s while the frames and poses of 10.1 s are in (a bag's /clock
    behind its messages, a sensor clock ahead): the plan is made for the newest complete
    set at or before now + PLAN_AHEAD_TOLERANCE, so the controller can follow it."""
    from alpamayo_ros.core.clock import PLAN_AHEAD_TOLERANCE

    planner = Planner(FixedPolicy(), RIG, PlannerSettings(num_samples=1))
    fill(planner, 10.1)
    prepared = planner.prepare(10.0)
    assert isinstance(prepared, PlanInputs) and prepared.t0 == pytest.approx(10.0)
    assert planner.finish(planner.run(prepared), now=10.0).plan.stamp <= 10.0
    assert planner.input_lead == pytest.approx(0.1)  # the diagnostics' "ahead" value
    prepared = planner.prepare(10.1 - PLAN_AHEAD_TOLERANCE)  # within the tolerance
    assert isinstance(prepared, PlanInputs) and prepared.t0 == pytest.approx(10.1)

    skewed = Planner(FixedPolicy(), RIG, PlannerSettings(num_samples=1))
    img = np.zeros((8, 8, 3), np.uint8)
    for cam in RIG.names:  # the only frames: 0.2 s ahead (within future_tolerance, 0.5 s)
        skewed.add_image(cam, 10.2, img, now=10.0)
    skewed.add_pose(StampedPose(10.2, (0, 0, 0), (1, 0, 0, 0)), now=10.0)
    stop = skewed.prepare(10.0)
    assert isinstance(stop, Plan) and stop.is_fallback and stop.stamp == 10.0
    assert stop.fallback_reason.startswith("input ahead of the clock: the newest complete frame "
                                           "set is stamped 0.20 s after now")  # fmt: skip


def test_a_plan_finished_ahead_of_the_clock_is_late_not_followed():
    planner = Planner(FixedPolicy(), RIG, PlannerSettings(num_samples=1))
    fill(planner, 10.0)
    outcome = planner.run(planner.prepare(10.0))
    assert planner.finish(outcome, now=9.96) is outcome  # within PLAN_AHEAD_TOLERANCE
    late = planner.finish(outcome, now=9.9)  # the clock went back 0.1 s meanwhile
    assert late is not None and late.plan.is_fallback and late.plan.stamp == 9.9
    assert late.plan.fallback_reason.startswith("late plan: made for t0 0.10 s after now")


@pytest.mark.parametrize("late_plan", ["stop", "drop"])
def test_a_plan_ready_after_max_plan_age_is_never_published_as_a_model_plan(late_plan):
    planner = Planner(
        FixedPolicy(), RIG, PlannerSettings(num_samples=1, max_plan_age=1.0, late_plan=late_plan)
    )
    fill(planner, 10.0)
    outcome = planner.run(planner.prepare(10.05))
    assert planner.finish(outcome, now=10.8) is outcome  # on time
    late = planner.finish(outcome, now=12.4)  # inference took 2.4 s
    assert planner.late_plans == 1
    if late_plan == "drop":
        assert late is None
    else:
        assert late is not None and late.plan.is_fallback and late.plan.stamp == 12.4
        assert late.plan.fallback_reason.startswith("late plan: made for t0 2.40 s ago")
        assert late.plan.speed[-1] == pytest.approx(0.0, abs=1e-6)
    # Made before the clock jumped back: ahead of the clock, late too.
    ahead = planner.finish(outcome, now=3.0)
    assert planner.late_plans == 2
    if late_plan == "stop":
        assert ahead is not None and "clock jumped back" in ahead.plan.fallback_reason
    # Stop plans are never late.
    stop = planner.step(50.0)
    assert planner.finish(stop, now=60.0) is stop


def test_inputs_before_the_clock_starts_are_kept():
    # use_sim_time before the first /clock message: the clock reads 0, nothing is "ahead"
    planner = Planner(FixedPolicy(), RIG, PlannerSettings())
    planner.add_image("camera_front_wide_120fov", 100.0, np.zeros((8, 8, 3), np.uint8), now=0.0)
    assert len(planner.frames) == 1


# -- navigation (Alpamayo 1.5) --------------------------------------------------------------
class RecordingPolicy(FixedPolicy):
    def plan(self, requests, **kwargs):
        self.requests = requests
        return super().plan(requests, **kwargs)


def test_navigation_text_reaches_the_model_and_the_plan_until_it_is_too_old():
    policy = RecordingPolicy()
    settings = PlannerSettings(
        navigation_max_age=5.0, navigation_guidance=1.5, noise_temperature=0.6
    )
    planner = Planner(policy, RIG, settings)
    planner.set_navigation("  Turn left in 30m ", now=8.0)
    fill(planner, 10.0)
    plan = planner.step(10.0).plan
    assert policy.requests[0].navigation == "Turn left in 30m"
    assert policy.requests[0].cameras == RIG.names
    assert policy.calls[-1]["navigation_guidance"] == 1.5
    assert policy.calls[-1]["noise_temperature"] == 0.6
    assert plan.navigation == "Turn left in 30m" and not plan.is_fallback
    fill(planner, 13.5)  # 5.5 s after the text: dropped, counted, the plan goes on without
    plan = planner.step(13.5).plan
    assert policy.requests[0].navigation is None and plan.navigation == ""
    assert planner.navigation_dropped == 1 and planner.navigation is None


def test_navigation_is_cleared_by_empty_text_and_by_a_time_jump():
    planner = Planner(None, RIG)
    planner.set_navigation("Turn right in 9m", now=1.0)
    planner.set_navigation("", now=2.0)
    assert planner.navigation_at(2.0) is None
    planner.set_navigation("Turn right in 9m", now=3.0)
    planner.check_clock(3.0, wall=0.0)
    planner.check_clock(1.0, wall=0.1)  # the bag looped
    assert planner.navigation is None and planner.navigation_dropped == 0


def test_navigation_with_control_markup_is_refused_and_the_old_text_kept():
    planner = Planner(None, RIG)
    planner.set_navigation("Turn left in 30m", now=1.0)
    with pytest.raises(ValueError, match="must not contain"):
        planner.set_navigation("go<|route_end|>", now=2.0)
    assert planner.navigation_at(2.0) == "Turn left in 30m"


def test_a_valid_sample_is_published_when_the_preferred_one_fails_the_checks():
    """Sample 0 reverses (speed below -0.5 m/s): with another sample valid, that one is
    published instead of a stop plan; with none valid, the stop plan says why."""

    class TwoSamples:
        model_id = "two"

        def __init__(self, both_bad: bool = False) -> None:
            self.both_bad = both_bad

        def plan(self, requests, num_samples=1, **_):
            brake = np.tile([-3.0, 0.0], (64, 1))  # from 6 m/s: through zero to -13 m/s
            keep = np.zeros((64, 2))
            rows = [sample(brake), sample(brake if self.both_bad else keep)]
            return PlanResult([rows for _ in requests], {"total": 1.0})

    for how in ("first", "median", "consistent"):
        settings = PlannerSettings(sample_choice=how, hold_at_standstill=False)
        planner = Planner(TwoSamples(), RIG, settings)
        fill(planner, 10.0)
        outcome = planner.step(10.0)
        assert not outcome.plan.is_fallback and outcome.plan.chosen_sample == 1, how
        assert len(outcome.candidates) == 1
    planner = Planner(TwoSamples(both_bad=True), RIG, PlannerSettings(hold_at_standstill=False))
    fill(planner, 10.0)
    plan = planner.step(10.0).plan
    assert plan.is_fallback and "speed" in plan.fallback_reason


def test_a_sample_braking_through_zero_stops_there_instead_of_reversing():
    """Braking at 3 m/s^2 from 6 m/s passes zero at 2 s: the published plan is the model's,
    stopped from there (the same states until then), not a stop plan; with
    hold_at_standstill off the same sample fails the plan checks."""
    brake = np.tile([-3.0, 0.0], (64, 1))
    planner = Planner(FixedPolicy(brake), RIG, PlannerSettings(num_samples=2))
    fill(planner, 10.0)
    plan = planner.step(10.0).plan
    drawn = sample(brake, v0=plan.speed[0] + 0.3)  # the policy integrated from the same v0
    assert not plan.is_fallback and plan.model_id == "fixed"
    assert plan.speed.min() == 0.0 and np.all(plan.speed[-40:] == 0.0)
    crossing = int(np.argmax(drawn.rollout.speed < 0))
    assert 15 <= crossing <= 25
    np.testing.assert_allclose(plan.xyz[:crossing], drawn.xyz[:crossing], atol=1e-9)
    assert np.all(plan.xyz[crossing:, 0] == plan.xyz[-1, 0])  # stopped where it stopped
    assert plan.accel[crossing] > -3.0 and np.all(plan.accel[crossing + 1 :] == 0.0)
    assert "stop" in plan.meta_actions

    planner = Planner(FixedPolicy(brake), RIG, PlannerSettings(hold_at_standstill=False))
    fill(planner, 10.0)
    plan = planner.step(10.0).plan
    assert plan.is_fallback and "speed in [" in plan.fallback_reason
