"""The planner node's two lanes on one worker thread: trajectory-lane plans with the newest
causal chain, the reasoning lane writing chains a step at a time between them."""

import threading
from dataclasses import replace

import numpy as np
from worker_inputs import RIG, inputs

from alpamayo_ros.core.trajectory import integrate
from alpamayo_ros.planning.planner import Planner
from alpamayo_ros.planning.requests import PlanResult, PolicySample
from alpamayo_ros.planning.worker import PlanningWorker


class LanePolicy:
    """A chain's ids encode its input time (round(10 t0)); every call is logged."""

    model_id = "lanes"

    def __init__(self, reasoning_steps: int = 4) -> None:
        self.log: list[str] = []
        self.reasoning_steps = reasoning_steps
        self.in_reasoning = threading.Event()
        self.gate = threading.Event()  # a reasoning step waits for it (the test holds steps)
        self.gate.set()

    def plan(self, requests, num_samples=1, reasoning_ids=None, **_):
        t0 = requests[0].ego.t0
        if reasoning_ids is None:
            self.log.append(f"full@{t0:.1f}")
            ids = (round(10 * t0),)
        else:
            self.log.append(f"trajectory@{t0:.1f}:chain{reasoning_ids[0][0]}")
            ids = tuple(reasoning_ids[0])
        roll = integrate(np.zeros((64, 2)), 1.0)
        xyz, rot = roll.to_xyz_rot()
        smp = PolicySample("Keep speed.", np.zeros((64, 2)), roll, xyz, rot, True, ids)
        return PlanResult([[smp] * num_samples for _ in requests], {"total": 1.0})

    def reason_steps(self, request, max_tokens=128, **_):
        t0 = request.ego.t0
        self.log.append(f"reason@{t0:.1f}")
        for k in range(self.reasoning_steps):
            self.in_reasoning.set()
            self.gate.wait(5.0)
            self.log.append(f"step{k}")
            yield "token"
        return (round(10 * t0),), f"chain for {t0:.1f}", True


def held_in_reasoning(policy: LanePolicy, first: float, second: float):
    """A two_lane worker that planned inputs at `first` (a full plan) and then at `second`
    (a trajectory plan), its reasoning lane now held in the first step of a chain for
    `second` (policy.gate.set() lets it go on): (worker, the plans published so far)."""
    plans: list = []
    worker = PlanningWorker(Planner(policy, RIG), lambda o: plans.append(o.plan), 1, "two_lane")
    worker.submit(inputs(first))
    assert worker.wait_idle()
    policy.in_reasoning.clear()
    policy.gate.clear()
    worker.submit(inputs(second))  # a trajectory plan with the first chain, then a chain
    assert policy.in_reasoning.wait(5.0)  # its first step is running (held)
    return worker, plans


def test_trajectory_plans_use_the_newest_chain_and_reasoning_runs_between_them():
    policy = LanePolicy(reasoning_steps=30)
    plans = []
    worker = PlanningWorker(Planner(policy, RIG), lambda o: plans.append(o.plan), 1, "two_lane")
    worker.submit(inputs(10.0))  # no chain yet: a full plan, whose chain becomes the first
    assert worker.wait_idle()
    assert not policy.in_reasoning.is_set()  # the full plan's chain is as new as the inputs
    worker.submit(inputs(10.1))
    assert worker.wait_idle()
    worker.stop()
    full, traj = plans[0], plans[1]
    assert full.lane == "full" and full.chain_stamp == 10.0
    assert traj.lane == "trajectory" and traj.chain_stamp == 10.0
    assert policy.log[0] == "full@10.0"
    assert "trajectory@10.1:chain100" in policy.log


def test_a_trajectory_plan_waits_for_at_most_one_reasoning_step_and_gets_the_new_chain():
    policy = LanePolicy(reasoning_steps=5)
    worker, plans = held_in_reasoning(policy, 10.0, 10.1)  # a chain for 10.1 being written
    at = len(policy.log)
    worker.submit(inputs(10.2))  # arrives mid-reasoning
    policy.gate.set()
    done = threading.Event()

    def wait_chain():
        while worker.chain is None or worker.chain.t0 < 10.2:
            if done.wait(0.01):
                return

    waiter = threading.Thread(target=wait_chain)
    waiter.start()
    waiter.join(10.0)
    done.set()
    worker.submit(inputs(10.3))
    assert worker.wait_idle()
    worker.stop()
    log = policy.log
    plan_10_2 = log.index("trajectory@10.2:chain100")
    assert log[at:plan_10_2] == ["step0"]  # right after the step that was running
    assert "reason@10.1" in log and "reason@10.2" in log
    last = next(p for p in plans if p.stamp == 10.3)
    assert last.lane == "trajectory" and last.chain_stamp == 10.2
    assert worker.chains >= 2


def test_full_mode_never_reasons_on_the_side():
    policy = LanePolicy()
    worker = PlanningWorker(Planner(policy, RIG), lambda o: None, 1, "full")
    for t in (10.0, 10.1, 10.2):
        worker.submit(inputs(t))
        assert worker.wait_idle()
    worker.stop()
    assert all(e.startswith("full@") for e in policy.log)


def test_questions_and_the_reasoning_lane_take_turns():
    from alpamayo_ros.planning.requests import Answer, QuestionRequest

    class Both(LanePolicy):
        def ask_steps(self, request, max_tokens=256, **_):
            for k in range(3):
                self.log.append(f"answer{k}")
                yield "token"
            return Answer("ok", True)

    policy = Both(reasoning_steps=50)
    worker = PlanningWorker(Planner(policy, RIG), lambda o: None, 1, "two_lane")
    worker.submit(inputs(10.0))
    assert worker.wait_idle()
    got = threading.Event()
    worker.submit(inputs(10.1))
    worker.ask(QuestionRequest((np.zeros((8, 8, 3), np.uint8),), "Why?"), lambda a, w: got.set())
    assert got.wait(10.0)
    worker.stop()
    log = policy.log
    first_answer = log.index("answer0")
    assert "answer2" in log and log.index("answer2") < log.index("step40")  # not starved
    assert first_answer < log.index("step10")


def test_a_stale_chain_is_refreshed_even_when_an_input_always_waits():
    """Trajectory plans that take the whole cycle: the next input arrives during every plan
    (the policy submits it), so an input always waits. Without a stale-chain slice the
    reasoning lane never runs and the first chain is kept for ever; with one, reasoning
    steps run between the plans once the chain is older than max_chain_age, and chains keep
    coming (each plan then uses the newest)."""

    def run(slice_s: float) -> tuple[PlanningWorker, list, LanePolicy]:
        box: dict[str, PlanningWorker] = {}

        class Busy(LanePolicy):
            def plan(self, requests, num_samples=1, reasoning_ids=None, **kw):
                t0 = requests[0].ego.t0
                if t0 < 14.95:  # the next input arrives while this plan runs
                    box["w"].submit(inputs(round(t0 + 0.1, 1)))
                return super().plan(requests, num_samples, reasoning_ids, **kw)

        policy = Busy(reasoning_steps=3)
        plans: list = []
        worker = PlanningWorker(
            Planner(policy, RIG), lambda o: plans.append(o.plan), 1, "two_lane",
            max_chain_age=0.3, stale_chain_slice=slice_s,
        )  # fmt: skip
        box["w"] = worker
        worker.submit(inputs(10.0))
        assert worker.wait_idle()
        worker.stop()
        return worker, plans, policy

    worker, plans, policy = run(0.0)
    assert worker.stale_steps == 0 and plans[-1].stamp == 15.0
    assert {p.chain_stamp for p in plans} == {10.0}  # the first full plan's, 5 s old at the end
    last_plan = max(i for i, e in enumerate(policy.log) if e.startswith("trajectory@"))
    assert not any(e.startswith("reason@") for e in policy.log[:last_plan])  # only once idle

    worker, plans, policy = run(1.0)
    assert worker.chains >= 5 and worker.stale_steps > 0
    assert 0.0 <= worker.last_chain_seconds < 5.0  # wall time of the newest chain
    ages = [p.stamp - p.chain_stamp for p in plans]
    assert plans[-1].stamp == 15.0 and max(ages[10:]) < 1.0
    # a stale step runs only after a plan: never two plans' worth of steps in a row
    steps_between = [len(run_) for run_ in "".join(
        "s" if e.startswith("step") else "|" for e in policy.log if not e.startswith("reason@")
    ).split("|")]  # fmt: skip
    assert max(steps_between) <= 3


def test_a_time_jump_drops_the_chain_of_the_old_timeline():
    """The clock jumped back (a looped bag, a simulator reset): inputs of the new timeline
    are never planned with a chain written for the old one (a chain "from the future" that
    also blocked fresh chains until the new timeline passed its t0); the first plan is a full
    plan again and its chain the new timeline's first."""
    policy = LanePolicy(reasoning_steps=2)
    plans = []
    planner = Planner(policy, RIG)
    worker = PlanningWorker(planner, lambda o: plans.append(o.plan), 1, "two_lane")
    for t in (12.0, 12.1, 12.2):
        worker.submit(inputs(t))
        assert worker.wait_idle()
    assert worker.chain is not None and worker.chain.t0 >= 12.0
    assert planner.check_clock(12.2, wall=0.0) is None
    assert planner.check_clock(2.0, wall=0.1) is not None  # the bag again, from 2 s
    new = [replace(inputs(t), timeline=planner.timeline) for t in (2.0, 2.1, 2.2, 2.3)]
    for prepared in new:
        worker.submit(prepared)
        assert worker.wait_idle()
    worker.stop()
    after = [p for p in plans if p.stamp < 10.0]
    assert [p.stamp for p in after] == [2.0, 2.1, 2.2, 2.3]
    assert after[0].lane == "full" and after[0].chain_stamp == 2.0
    assert all(p.chain_stamp < 10.0 for p in after), [p.chain_stamp for p in after]
    assert worker.chain is not None and worker.chain.t0 >= 2.0 and worker.chain.t0 < 10.0
    assert not [e for e in policy.log[policy.log.index("full@2.0") :] if "chain12" in e]


def test_a_chain_of_another_timeline_is_never_teacher_forced():
    policy = LanePolicy()
    planner = Planner(policy, RIG)
    (full,) = planner.run_batch([inputs(12.0)])
    assert full.chain is not None and full.chain.timeline == 0
    (same,) = planner.run_batch([inputs(12.1)], full.chain)
    assert same.plan.lane == "trajectory" and same.plan.chain_stamp == 12.0
    (other,) = planner.run_batch([replace(inputs(2.0), timeline=1)], full.chain)
    assert other.plan.lane == "full" and other.plan.chain_stamp == 2.0
    assert policy.log == ["full@12.0", "trajectory@12.1:chain120", "full@2.0"]


def test_a_chain_being_written_when_the_clock_jumps_back_is_abandoned():
    policy = LanePolicy(reasoning_steps=3)
    worker, plans = held_in_reasoning(policy, 12.0, 12.1)  # a chain for 12.1 being written
    worker.submit(replace(inputs(2.0), timeline=1))  # the clock jumped back meanwhile
    policy.gate.set()
    assert worker.wait_idle()
    worker.stop()
    assert worker.chain is not None and worker.chain.timeline == 1
    assert worker.chain.t0 == 2.0 and worker.chains == 0  # the 12.1 chain never handed over
    assert policy.log.count("step0") == 1 and "step2" not in policy.log  # closed mid-chain
    assert plans[-1].stamp == 2.0 and plans[-1].lane == "full"
