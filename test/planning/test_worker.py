"""The planning worker: inference off the caller's thread, newest input wins, drops counted,
optional batching, never dies."""

import threading

import numpy as np
from worker_inputs import RIG, inputs

from alpamayo_ros.core.trajectory import integrate
from alpamayo_ros.planning.planner import Planner
from alpamayo_ros.planning.requests import PlanResult, PolicySample
from alpamayo_ros.planning.worker import PlanningWorker


class GatedPolicy:
    """Blocks in plan() until released; records the t0s of every call."""

    model_id = "gated"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls: list[list[float]] = []

    def plan(self, requests, num_samples=1, **_):
        self.calls.append([r.ego.t0 for r in requests])
        self.started.set()
        self.release.wait(5.0)
        roll = integrate(np.zeros((64, 2)), 1.0)
        xyz, rot = roll.to_xyz_rot()
        smp = PolicySample("Keep speed.", np.zeros((64, 2)), roll, xyz, rot, True)
        return PlanResult([[smp] * num_samples for _ in requests], {"total": 1.0})


def test_newest_input_wins_and_drops_are_counted():
    policy = GatedPolicy()
    published = []
    worker = PlanningWorker(Planner(policy, RIG), lambda o: published.append(o.plan.stamp))
    assert worker.submit(inputs(10.0))
    assert policy.started.wait(5.0) and worker.busy
    assert worker.submit(inputs(10.1))  # waits: the model is busy
    assert not worker.submit(inputs(10.2))  # replaces 10.1, which is dropped
    assert not worker.submit(inputs(10.3))
    policy.release.set()
    assert worker.wait_idle()
    worker.stop()
    assert policy.calls == [[10.0], [10.3]]
    assert published == [10.0, 10.3]
    assert worker.dropped == 2 and worker.completed == 2


def test_batching_plans_waiting_inputs_together():
    policy = GatedPolicy()
    published = []
    worker = PlanningWorker(
        Planner(policy, RIG), lambda o: published.append(o.plan.stamp), max_batch=2
    )
    worker.submit(inputs(10.0))
    assert policy.started.wait(5.0)
    for t in (10.1, 10.2, 10.3):
        worker.submit(inputs(t))
    policy.release.set()
    assert worker.wait_idle()
    worker.stop()
    assert policy.calls == [[10.0], [10.2, 10.3]] and worker.dropped == 1
    assert published == [10.0, 10.2, 10.3]


def test_worker_survives_a_failing_publisher():
    policy = GatedPolicy()
    policy.release.set()
    seen = []

    def flaky(outcome):
        seen.append(outcome.plan.stamp)
        if len(seen) == 1:
            raise RuntimeError("publisher gone")

    worker = PlanningWorker(Planner(policy, RIG), flaky)
    worker.submit(inputs(1.0))
    assert worker.wait_idle()
    worker.submit(inputs(2.0))
    assert worker.wait_idle()
    worker.stop()
    assert seen == [1.0, 2.0]


def test_stop_abandons_the_running_plan_and_publishes_nothing_after():
    """A policy that checks `cancel` between tokens, as AlpamayoPolicy does: stop() ends the
    thread at once, and the abandoned plan is never handed on."""

    class SlowPolicy(GatedPolicy):
        def plan(self, requests, num_samples=1, cancel=None, **kwargs):
            self.started.set()
            for _ in range(500):  # 5 s of "tokens"
                if cancel is not None and cancel.is_set():
                    raise RuntimeError("plan abandoned")
                threading.Event().wait(0.01)
            return super().plan(requests, num_samples, **kwargs)

    policy = SlowPolicy()
    policy.release.set()
    published = []
    worker = PlanningWorker(Planner(policy, RIG), lambda o: published.append(o.plan))
    worker.submit(inputs(10.0))
    assert policy.started.wait(5.0)
    assert worker.running_for() > 0.0
    import time

    start = time.monotonic()
    assert worker.stop(timeout=2.0)
    assert time.monotonic() - start < 1.0 and published == []
    assert worker.running_for() == 0.0
