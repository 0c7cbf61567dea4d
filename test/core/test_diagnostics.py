"""Planner diagnostics: rates, latency percentiles, levels and state changes."""

from dataclasses import replace

import numpy as np
import pytest

from alpamayo_ros.bag.messages import typestore
from alpamayo_ros.core.diagnostics import (
    ERROR,
    FAILED,
    FALLBACK,
    OK,
    PLANNING,
    STARTING,
    WARN,
    LatencyWindow,
    PlannerMonitor,
    RateMeter,
    lifecycle_item,
    ready_outcome,
)
from alpamayo_ros.core.plan import Plan, make_stop_plan
from alpamayo_ros.core.trajectory import integrate
from alpamayo_ros.messages.diagnostics import diagnostic_array_msg, planner_status_msg

CAMS = ("front", "left")


def model_plan(total_ms: float) -> Plan:
    roll = integrate(np.zeros((64, 2)), 5.0)
    return Plan.from_rollout(roll, 0.0, 5.0, latency_ms={"total": total_ms, "prefill": 10.0})


def test_rate_meter_counts_the_window():
    meter = RateMeter(window=2.0)
    for k in range(40):
        meter.tick("cam", 0.1 * k)  # 10 Hz for 4 s
    assert meter.rate("cam", 3.9) == pytest.approx(10.0, abs=0.5)
    assert meter.rate("cam", 10.0) == 0.0 and meter.rate("other", 1.0) == 0.0


def test_latency_percentiles():
    window = LatencyWindow(size=100)
    for v in range(1, 201):
        window.add({"total": float(v)})
    p50, p99 = window.percentiles("total")
    assert p50 == pytest.approx(150.5) and p99 == pytest.approx(199.01)
    assert window.percentiles("prefill") is None


def test_monitor_levels_follow_inputs_and_plans():
    mon = PlannerMonitor(CAMS)
    for k in range(20):
        mon.on_image("front", 0.1 * k)
        mon.on_pose(0.1 * k, 0.1 * k)
    inputs, model = mon.diagnostics(2.0)
    assert inputs.level == ERROR and "left" in inputs.message
    assert model.level == WARN and "starting" in model.message
    for k in range(20):
        mon.on_image("left", 0.1 * k)
    assert mon.on_plan(model_plan(90.0)) is True
    assert mon.on_plan(model_plan(110.0)) is False  # same state: no status burst
    inputs, model = mon.diagnostics(2.0)
    assert inputs.level == OK and model.level == OK and mon.state == PLANNING
    values = dict(model.values)
    assert values["total p50 [ms]"] == "100.0" and values["plans published"] == "2"
    assert mon.on_plan(make_stop_plan(2.0, 5.0, "stale input: left: 0.50 s old"))
    assert mon.state == FALLBACK and mon.detail == "stale input"
    mon.on_bad_message("image")
    inputs, _ = mon.diagnostics(2.0)
    assert inputs.level == WARN and dict(inputs.values)["skipped image"] == "1"


def test_model_failure_is_an_error_state_whatever_is_published():
    mon = PlannerMonitor(CAMS)
    mon.on_model_failed("model failed to load: FileNotFoundError: /data/x")
    mon.on_plan(make_stop_plan(0.0, 0.0, "model failed to load: FileNotFoundError: /data/x"))
    _, model = mon.diagnostics(1.0)
    assert model.level == ERROR and "FileNotFoundError" in model.message


def test_a_released_model_is_not_ready_nor_failed_and_the_plan_watch_restarts():
    """A managed planner cleaned up (model let go) and later activated again: "no plan
    published" counts from its activation, not from its last plan before."""
    mon = PlannerMonitor(CAMS)
    mon.on_model_loaded("ckpt")
    mon.on_plan(model_plan(90.0), wall=100.0)
    assert mon.health(100.5)[0] == OK
    mon.on_model_released("not configured (lifecycle): no model loaded")
    assert not mon.model_ready and mon.state == STARTING and "lifecycle" in mon.detail
    assert mon.health(500.0) == (OK, "")  # the watch starts again here
    assert mon.health(503.5)[0] == ERROR  # 3.5 s after it without a plan
    mon.on_model_failed("model failed to load: x")
    mon.on_model_released("not configured (lifecycle): no model loaded")
    _, model = mon.diagnostics(1.0)
    assert model.level == WARN and mon.state == STARTING  # the failure is gone with it
    item = lifecycle_item("alpamayo_planner", "inactive", "no plans published")
    assert item.level == OK and item.message == "inactive: no plans published"


def test_messages_serialise():
    store = typestore()
    mon = PlannerMonitor(CAMS)
    mon.on_plan(model_plan(50.0))
    mon.on_dropped_cycle()
    array = diagnostic_array_msg(mon.diagnostics(1.0), 1.0, lambda n: store.types[n], "hw")
    data = store.serialize_cdr(array, array.__msgtype__)
    back = store.deserialize_cdr(data, array.__msgtype__)
    assert [s.name for s in back.status] == [
        "alpamayo_planner: inputs",
        "alpamayo_planner: model",
    ]
    status = planner_status_msg(mon, 1.0, lambda n: store.types[n])
    assert status.state == PLANNING and status.dropped_cycles == 1 and status.plans_published == 1
    started = status.node_started.sec + status.node_started.nanosec * 1e-9
    assert started == pytest.approx(mon.started_system, abs=1e-6)
    data = store.serialize_cdr(status, status.__msgtype__)
    assert store.deserialize_cdr(data, status.__msgtype__).node_started == status.node_started


def test_a_waiter_takes_readiness_only_from_a_planner_started_after_it_began_waiting():
    """alpamayo_wait_ready's rule (replay.launch.py passes its launch time): a planner of an
    earlier launch, still running on the same topic, must not start the bag."""
    launched = 1000.0
    assert ready_outcome(True, PLANNING, "ok", 1002.5, launched) == (0, "planner ready")
    assert ready_outcome(True, PLANNING, "ok", 940.0, launched) is None  # an older planner
    assert ready_outcome(False, FAILED, "model failed to load: x", 1001.0, launched) == (
        1, "planner failed: model failed to load: x",
    )  # fmt: skip
    assert ready_outcome(False, FAILED, "model failed to load: x", 900.0, launched) is None
    assert ready_outcome(False, STARTING, "loading the model", 1001.0, launched) is None
    assert ready_outcome(True, PLANNING, "ok", 12.0, 0.0) == (0, "planner ready")  # no filter


def test_rate_meter_survives_time_going_back():
    meter = RateMeter(window=2.0)
    for k in range(30):
        meter.tick("cam", 0.1 * k)
    for k in range(30):  # the bag again from 0: still 10 Hz, not 20
        meter.tick("cam", 0.1 * k)
    assert meter.rate("cam", 2.9) == pytest.approx(10.0, abs=0.5)


def planning_monitor() -> PlannerMonitor:
    mon = PlannerMonitor(CAMS)
    for k in range(20):
        for cam in CAMS:
            mon.on_image(cam, 0.1 * k)
        mon.on_pose(0.1 * k, 0.1 * k)
    mon.on_plan(model_plan(50.0), wall=100.0)
    return mon


def test_wall_time_health_raises_the_model_level():
    mon = planning_monitor()
    _, model = mon.diagnostics(2.0, wall=100.5)
    assert model.level == OK
    # /clock stopped: the node's time stands still, wall time goes on.
    _, model = mon.diagnostics(2.0, wall=101.0, clock_stalled_for=3.0)
    assert model.level == ERROR and model.message.startswith("clock stalled")
    # One inference hanging.
    _, model = mon.diagnostics(2.0, wall=101.0, inference_running_for=12.0)
    assert model.level == ERROR and "model stalled" in model.message
    # Nothing published for 20 s, though the last plan was a model plan ("planning: ok").
    _, model = mon.diagnostics(2.0, wall=120.0)
    assert model.level == ERROR and "no plan published for 20.0 s" in model.message


def test_dropping_over_a_fifth_of_the_cycles_is_model_lagging():
    mon = planning_monitor()
    for k in range(20):
        mon.on_cycle(dropped=k % 10 == 0)  # 10 % dropped
    assert mon.diagnostics(2.0, wall=100.5)[1].level == OK
    for k in range(20):
        mon.on_cycle(dropped=k % 10 != 0)  # 9 of 10 dropped
    _, model = mon.diagnostics(2.0, wall=100.5)
    assert model.level == WARN and "model lagging" in model.message
    assert mon.dropped_cycles == 20


def test_a_time_jump_is_counted_and_restarts_the_rates():
    mon = planning_monitor()
    mon.on_time_jump("time jumped back 2.00 s (from 2.000 s to 0.000 s)")
    inputs, model = mon.diagnostics(0.0, wall=100.5)
    values = dict(model.values)
    assert values["time jumps"] == "1" and "jumped back" in values["last time jump"]
    assert dict(inputs.values)["front rate [Hz]"] == "0.0"


def test_lanes_and_causal_chain_age_are_reported():
    import numpy as np

    from alpamayo_ros.core.diagnostics import PlannerMonitor
    from alpamayo_ros.core.plan import Plan
    from alpamayo_ros.core.trajectory import integrate

    monitor = PlannerMonitor(("cam",))
    base = Plan.from_rollout(integrate(np.zeros((64, 2)), 5.0), 10.0, 5.0)
    from dataclasses import replace

    monitor.on_plan(replace(base, lane="full", chain_stamp=10.0))
    monitor.on_plan(replace(base, stamp=10.3, lane="trajectory", chain_stamp=10.0))
    values = dict(monitor.diagnostics(10.3)[1].values)
    assert values["full lane plans"] == "1" and values["trajectory lane plans"] == "1"
    assert values["causal-chain age [s]"] == "0.30"
    # each lane's timing, and the reasoning lane's as the worker reports it
    monitor.on_plan(replace(base, stamp=10.4, lane="trajectory", chain_stamp=10.0,
                            latency_ms={"total": 150.0}))  # fmt: skip
    monitor.on_plan(replace(base, stamp=10.5, lane="full", chain_stamp=10.5,
                            latency_ms={"total": 900.0}))  # fmt: skip
    monitor.chains_written, monitor.last_chain_seconds = 3, 0.42
    values = dict(monitor.diagnostics(10.5)[1].values)
    assert values["trajectory lane total p50 [ms]"] == "150.0"
    assert values["full lane total p50 [ms]"] == "900.0"
    assert values["reasoning lane chains"] == "3"
    assert values["reasoning lane last chain [s]"] == "0.42"


def test_a_stale_causal_chain_warns():
    import numpy as np

    from alpamayo_ros.core.diagnostics import WARN, HealthLimits, PlannerMonitor
    from alpamayo_ros.core.plan import Plan
    from alpamayo_ros.core.trajectory import integrate

    base = Plan.from_rollout(integrate(np.zeros((64, 2)), 5.0), 10.0, 5.0)
    monitor = PlannerMonitor(("cam",), limits=HealthLimits(max_chain_age=1.0))
    monitor.on_plan(replace(base, stamp=10.8, lane="trajectory", chain_stamp=10.0))
    model = monitor.diagnostics(10.8)[1]
    assert model.level != WARN and "causal chain" not in model.message
    monitor.on_plan(replace(base, stamp=12.5, lane="trajectory", chain_stamp=10.0))
    model = monitor.diagnostics(12.5)[1]
    assert model.level == WARN and "causal chain 2.5 s old (max_chain_age 1 s" in model.message
    monitor.on_plan(replace(base, stamp=12.6, lane="trajectory", chain_stamp=12.0))
    assert monitor.diagnostics(12.6)[1].level != WARN  # refreshed


def test_inputs_stamped_ahead_of_the_clock_warn_naming_the_input():
    mon = PlannerMonitor(CAMS)
    for k in range(20):
        for cam in CAMS:
            mon.on_image(cam, 0.1 * k)
        mon.on_pose(0.1 * k, 0.1 * k)
    mon.on_input_lead(0.03, "front")  # /clock of a bag player: 25 ms steps
    inputs, _ = mon.diagnostics(2.0)
    assert inputs.level == OK and dict(inputs.values)["newest input ahead of the clock [s]"] == (
        "0.030"
    )
    mon.on_input_lead(0.2, "odometry")  # a sensor clock 0.2 s ahead
    inputs, _ = mon.diagnostics(2.0)
    assert inputs.level == WARN
    assert inputs.message.startswith("odometry stamped 0.20 s ahead of the clock")
    mon.on_time_jump("time jumped back 2.00 s (from 2.000 s to 0.000 s)")
    inputs, _ = mon.diagnostics(0.0)
    assert "newest input ahead of the clock [s]" not in dict(inputs.values)


def test_a_time_jump_forgets_the_causal_chain_age():
    mon = PlannerMonitor(CAMS)
    roll = integrate(np.zeros((64, 2)), 5.0)
    mon.on_plan(replace(Plan.from_rollout(roll, 10.3, 5.0), lane="trajectory", chain_stamp=10.0))
    assert dict(mon.diagnostics(10.3)[1].values)["causal-chain age [s]"] == "0.30"
    mon.on_time_jump("time jumped back 10.00 s (from 10.300 s to 0.300 s)")
    assert "causal-chain age [s]" not in dict(mon.diagnostics(0.3)[1].values)
