"""Planning at the model's speed on a fake clock (the issue's CI target): a fake policy whose
full plans take 300 ms and trajectory-lane plans 60 ms. two_lane publishes at 10 Hz with no
missed cycle and chains at most 0.5 s old; full mode publishes ~3 Hz and counts its drops."""

import time

import numpy as np
import pytest

from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.trajectory import UnicycleSpec, integrate
from alpamayo_ros.planning.planner import Planner
from alpamayo_ros.planning.realtime import LaneLatency, LaneSharing, RealtimePlanner
from alpamayo_ros.planning.requests import PlanResult, PolicySample
from alpamayo_ros.planning.settings import PlannerSettings

RIG = CameraRig.released_default()
SPEED = 6.0
IMG = np.full((16, 24, 3), 128, np.uint8)


class ChainPolicy:
    """Writes chain (7, 8, 9) on full plans; records which calls had a chain forced."""

    model_id = "fake"

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def plan(self, requests, num_samples=1, reasoning_ids=None, **_):
        self.calls.append(reasoning_ids is not None)
        ids = tuple(reasoning_ids[0]) if reasoning_ids is not None else (7, 8, 9)
        roll = integrate(np.zeros((64, 2)), SPEED, UnicycleSpec(integration="trapezoid"))
        xyz, rot = roll.to_xyz_rot()
        smp = PolicySample("Keep speed: the road is clear.", np.zeros((64, 2)), roll, xyz, rot,
                           True, reasoning_token_ids=ids)  # fmt: skip
        return PlanResult([[smp] * num_samples for _ in requests], {"total": 1.0})


def feed(planner: Planner, t: float) -> None:
    """What arrives by tick t: poses at 20 Hz, a frame per camera at 10 Hz."""
    for s in (t - 0.05, t):
        planner.add_pose(StampedPose(s, (SPEED * s, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    for cam in RIG.names:
        planner.add_image(cam, t, IMG)


def run(mode: str, seconds: float = 6.0, trajectory: float = 0.06, **kw):
    policy = ChainPolicy()
    planner = Planner(policy, RIG, PlannerSettings(num_samples=1))
    latency = LaneLatency(full=0.3, trajectory=trajectory)
    realtime = RealtimePlanner(planner, mode, latency, **kw)  # type: ignore[arg-type]
    ticks = [round(8.0 + 0.1 * k, 6) for k in range(round((2.0 + seconds) * 10))]
    published = []
    for t in ticks:
        feed(planner, t)
        published += realtime.tick(t)
    published += realtime.flush()
    return realtime, policy, [p for p in published if p.time >= 10.0]  # history full from 9.5 s


def test_two_lane_publishes_every_tick_with_fresh_chains():
    realtime, policy, published = run("two_lane")
    models = [p for p in published if not p.plan.is_fallback]
    assert len(models) == len(published) == 60  # 6 s at 10 Hz: a plan for every tick
    # no missed cycle once the first chain exists (before: full plans on the trajectory lane)
    assert not [t for t in realtime.stats.dropped_at if t >= 9.9]
    assert realtime.planner.late_plans == 0
    assert all(p.plan.lane == "trajectory" for p in models)
    assert all(p.age == pytest.approx(0.06) for p in models)  # published 60 ms after t0
    chain_ages = [p.plan.stamp - p.plan.chain_stamp for p in models]
    assert max(chain_ages) <= 0.5 + 1e-9 and min(chain_ages) >= 0.3 - 1e-9
    assert realtime.stats.chains >= 6 / 0.3 - 1  # a chain every 0.3 s
    assert any(policy.calls) and not all(policy.calls)  # both lanes ran


def test_full_mode_publishes_at_the_model_rate_and_counts_its_drops():
    realtime, _, published = run("full")
    # published 300 ms after t0, or up to 0.2 s later for an input that waited
    assert all(p.plan.lane == "full" and 0.3 - 1e-9 <= p.age <= 0.5 + 1e-9 for p in published)
    rate = len(published) / 6.0
    assert 3.0 <= rate <= 3.7  # one plan per 0.3 s (+1 at each end of the window)
    assert realtime.stats.dropped_cycles >= 2 * len(published) - 2  # two ticks of three


def test_a_model_slower_than_max_plan_age_gives_late_stop_plans():
    policy = ChainPolicy()
    planner = Planner(policy, RIG, PlannerSettings(num_samples=1, max_plan_age=1.0))
    realtime = RealtimePlanner(planner, "full", LaneLatency(full=1.5))
    out = []
    for k in range(60):
        t = round(8.0 + 0.1 * k, 6)
        feed(planner, t)
        out += realtime.tick(t)
    out += realtime.flush()
    late = [p for p in out if p.plan.fallback_reason.startswith("late plan")]
    assert late and not [p for p in out if not p.plan.is_fallback]
    assert all(p.time == pytest.approx(p.plan.stamp) for p in late)  # stamped when published


def test_settings_are_checked():
    with pytest.raises(ValueError, match="trajectory must be > 0 s"):
        LaneLatency(trajectory=0.0)
    with pytest.raises(ValueError, match="planning mode"):
        RealtimePlanner(Planner(None, RIG), "three_lane")  # type: ignore[arg-type]


def test_lanes_sharing_one_device_give_the_chain_only_the_time_plans_leave():
    """one_device (the node's worker): a chain needs 300 ms of device time, and gets the
    40 ms per tick that 60 ms trajectory plans leave: still a plan every tick, chains about
    every 0.8 s instead of 0.3 s."""
    realtime, _, published = run("two_lane", sharing=LaneSharing())
    models = [p for p in published if not p.plan.is_fallback]
    assert len(models) == len(published) == 60
    assert all(p.age == pytest.approx(0.06) for p in models)
    ages = [p.plan.stamp - p.plan.chain_stamp for p in models]
    # a chain every ~0.75 s of device time left over, each 0.8-1.5 s old while in use
    assert 0.7 <= min(ages[15:]) and max(ages[15:]) <= 1.6 and max(ages) <= 1.8
    assert 6 / 0.8 <= realtime.stats.chains <= 6 / 0.6 + 1


def test_a_trajectory_lane_that_fills_the_device_starves_the_chain_unless_it_is_stale():
    """Trajectory plans of 120 ms on one device: no idle time. Without a stale-chain slice
    the first chain is kept for the whole drive; with max_chain_age 1 s and 30 ms after
    each plan, chains keep coming (each 300 ms of device time: ten slices), at a cost in
    plans."""
    starved, _, published = run("two_lane", trajectory=0.12, sharing=LaneSharing())
    ages = [p.plan.stamp - p.plan.chain_stamp for p in published if not p.plan.is_fallback]
    assert max(ages) > 5.0  # the chain of the first full plans, for ever
    fed, _, fed_published = run("two_lane", trajectory=0.12, sharing=LaneSharing(1.0, 0.03))
    ages = [p.plan.stamp - p.plan.chain_stamp for p in fed_published if not p.plan.is_fallback]
    assert fed.stats.chains >= 4 and max(ages[-20:]) < 3.1  # ~1.4 s to write one
    assert len(fed_published) < len(published)  # the slices cost plans
    assert fed.stats.dropped_cycles > starved.stats.dropped_cycles


class CompilingPolicy(ChainPolicy):
    """Its first two calls take 0.35 s (a compiled engine compiling), the rest no time."""

    def plan(self, requests, num_samples=1, reasoning_ids=None, **kw):
        if len(self.calls) < 2:
            time.sleep(0.35)
        return super().plan(requests, num_samples, reasoning_ids, **kw)


@pytest.mark.parametrize("warm_up", [False, True])
def test_a_warm_up_keeps_compilation_out_of_measured_latencies(warm_up):
    """Measured latencies (none given): without the warm-up the first plans carry the
    engine's compilation in their age; with it, the policy ran once as a full plan and once
    as a trajectory-lane plan before the first tick's plan, untimed, and no tick was counted
    for it (the seeds of the plans are those of a replay without it)."""
    policy = CompilingPolicy()
    planner = Planner(policy, RIG, PlannerSettings(num_samples=1, seed=0))
    realtime = RealtimePlanner(planner, "two_lane", LaneLatency(), warm_up=warm_up)
    published = []
    ticks = [round(8.0 + 0.1 * k, 6) for k in range(30)]
    for t in ticks:
        feed(planner, t)
        published += realtime.tick(t)
    published += realtime.flush()
    ages = [p.age for p in published if not p.plan.is_fallback]
    assert ages
    if warm_up:
        assert policy.calls[:2] == [False, True]  # a full plan, then the lane on its chain
        assert realtime.stats.warm_up_seconds >= 0.7
        assert max(ages) < 0.2
    else:
        assert realtime.stats.warm_up_seconds == 0.0
        assert max(ages) >= 0.35
    assert planner.ticks == len(policy.calls) - (2 if warm_up else 0)
