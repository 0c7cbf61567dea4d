"""What the planner reports about itself: input rates, latency percentiles, counters and its
state, as ROS-free values that the node turns into diagnostic_msgs and PlannerStatus.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.bond import Bond
from alpamayo_ros.core.clock import PLAN_AHEAD_TOLERANCE
from alpamayo_ros.core.plan import LATENCY_STAGES, Plan

# diagnostic_msgs/DiagnosticStatus levels.
OK, WARN, ERROR, STALE = 0, 1, 2, 3
# alpamayo_ros/msg/PlannerStatus states.
STARTING, PLANNING, FALLBACK, FAILED = 0, 1, 2, 3
STATE_NAMES = {STARTING: "starting", PLANNING: "planning", FALLBACK: "fallback", FAILED: "error"}


@dataclass(frozen=True)
class DiagnosticItem:
    """One diagnostic_msgs/DiagnosticStatus: level (OK ... STALE), name, message, values."""

    name: str
    level: int
    message: str
    values: tuple[tuple[str, str], ...] = ()


class RateMeter:
    """Messages per second per key over a sliding window of `window` seconds. A tick more
    than a window before the key's newest (time went back: a bag played again) restarts
    that key's window; `reset` restarts all (the node calls it on a detected time jump)."""

    def __init__(self, window: float = 2.0) -> None:
        if not window > 0:
            raise ValueError(f"window must be > 0 s, got {window}")
        self.window = window
        self._stamps: dict[str, deque[float]] = {}

    def tick(self, key: str, now: float) -> None:
        stamps = self._stamps.setdefault(key, deque())
        if stamps and now < stamps[-1] - self.window:
            stamps.clear()
        stamps.append(now)
        while stamps and stamps[0] < now - self.window:
            stamps.popleft()

    def rate(self, key: str, now: float) -> float:
        stamps = self._stamps.get(key, deque())
        while stamps and stamps[0] < now - self.window:
            stamps.popleft()
        return len(stamps) / self.window

    def reset(self) -> None:
        self._stamps.clear()


class LatencyWindow:
    """The last `size` latencies per stage (ms) and their percentiles."""

    def __init__(self, size: int = 200) -> None:
        self._values: dict[str, deque[float]] = {s: deque(maxlen=size) for s in LATENCY_STAGES}

    def add(self, latency_ms: dict[str, float]) -> None:
        for stage, value in latency_ms.items():
            if stage in self._values and math.isfinite(value):
                self._values[stage].append(value)

    def percentiles(self, stage: str) -> tuple[float, float] | None:
        """(p50, p99) ms of a stage, or None before its first value."""
        values = self._values.get(stage)
        if not values:
            return None
        p50, p99 = np.percentile(np.asarray(values), [50, 99])
        return float(p50), float(p99)


@dataclass(frozen=True)
class HealthLimits:
    """When the planner's health turns WARN or ERROR, in wall-clock seconds (a stalled
    /clock must not hide anything).

    clock_stall: the node's clock has not advanced for longer -> ERROR.
    model_stall: one inference has been running for longer -> ERROR.
    no_plan: nothing published for longer -> ERROR.
    max_drop_fraction: dropped share of the last `cycle_window` planning cycles above which
        the model counts as lagging -> WARN (openpilot: 20 %).
    max_chain_age: the newest model plan's causal chain is older than this, seconds of
        input time (two_lane) -> WARN.
    """

    clock_stall: float = 1.0
    model_stall: float = 10.0
    no_plan: float = 2.0
    max_drop_fraction: float = 0.2
    cycle_window: int = 50
    max_chain_age: float = math.inf

    def __post_init__(self) -> None:
        for name in ("clock_stall", "model_stall", "no_plan"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HealthLimits.{name} must be > 0 s, got {getattr(self, name)}")
        if not 0 < self.max_drop_fraction <= 1:
            raise ValueError(
                f"HealthLimits.max_drop_fraction must be in (0, 1], got {self.max_drop_fraction}"
            )


def ready_outcome(
    model_ready: bool, state: int, detail: str, node_started: float, started_after: float
) -> tuple[int, str] | None:
    """What a waiter for the planner (alpamayo_wait_ready) makes of one PlannerStatus:
    (0, why) ready, (1, why) failed, None keep waiting. A status from a planner whose node
    started (system time, s) before `started_after` is an older planner's (another launch
    still running, or shutting down) and is ignored."""
    if node_started < started_after:
        return None
    if model_ready:
        return 0, "planner ready"
    if state == FAILED:
        return 1, f"planner failed: {detail}"
    return None


class PlannerMonitor:
    """Counters, rates and state of the planner node; see `diagnostics` and `state`."""

    def __init__(
        self, cameras: tuple[str, ...], window: float = 2.0, limits: HealthLimits | None = None
    ) -> None:
        self.cameras = cameras
        self.limits = limits or HealthLimits()
        self.rates = RateMeter(window)
        self.latency = LatencyWindow()
        self.bad_messages: Counter[str] = Counter()
        self.plans = 0
        self.fallback_plans = 0
        self.dropped_cycles = 0
        self.late_plans = 0
        self.time_jumps = 0
        self.last_time_jump = ""
        self.cycles: deque[bool] = deque(maxlen=self.limits.cycle_window)  # True: dropped
        self.last_plan_wall: float | None = None
        self.started_wall: float | None = None
        self.last_odometry: float | None = None
        self.started_system = time.time()  # s since the epoch (system clock): node_started
        self.state = STARTING
        self.detail = "loading the model"
        self.model_ready = False
        self._model_failed = False
        self.lane_plans: dict[str, int] = {}  # model plans by lane ("full", "trajectory")
        self.lane_latency: dict[str, LatencyWindow] = {}  # total ms of each lane's plans
        # The reasoning lane (two_lane), as its worker last said: chains written, and wall
        # seconds the newest took from its prefill to its hand-over.
        self.chains_written = 0
        self.last_chain_seconds = math.nan
        self.last_chain_age = math.nan  # s, the newest model plan's causal chain
        self.input_lead = math.nan  # s the newest input was ahead of the clock at the last tick
        self.input_lead_name = ""

    def on_image(self, camera: str, now: float) -> None:
        self.rates.tick(camera, now)

    def on_pose(self, stamp: float, now: float) -> None:
        self.rates.tick("odometry", now)
        self.last_odometry = stamp

    def on_input_lead(self, lead: float, name: str) -> None:
        """At a tick: the newest input (`name`) was stamped `lead` seconds ahead of the clock
        (negative: behind; NaN: no complete input set)."""
        self.input_lead, self.input_lead_name = lead, name

    def on_bad_message(self, kind: str) -> None:
        self.bad_messages[kind] += 1

    def on_cycle(self, dropped: bool) -> None:
        """A planning cycle handed to the model (dropped: it displaced one not yet run)."""
        self.cycles.append(dropped)
        if dropped:
            self.dropped_cycles += 1

    def on_dropped_cycle(self) -> None:
        self.on_cycle(True)

    def on_late_plan(self) -> None:
        self.late_plans += 1

    def on_time_jump(self, what: str) -> None:
        """The clock went back: rates restart, the jump is reported."""
        self.time_jumps += 1
        self.last_time_jump = what
        self.rates.reset()
        self.last_odometry = None
        self.last_chain_age = math.nan
        self.input_lead, self.input_lead_name = math.nan, ""

    @property
    def drop_fraction(self) -> float:
        """Dropped share of the recent planning cycles (0 before any)."""
        return sum(self.cycles) / len(self.cycles) if self.cycles else 0.0

    def on_warming_up(self, what: str) -> None:
        """The model is loaded and warming up (not ready yet): `what` says on what."""
        self.detail = what

    def on_model_loaded(self, model_id: str) -> None:
        self.detail = f"model {model_id} loaded"
        self.model_ready = True

    def on_model_released(self, why: str) -> None:
        """The model was let go (a managed node cleaned up): not ready, not failed, and
        the plan watch restarts (see on_activated)."""
        self.model_ready = False
        self._model_failed = False
        self.state = STARTING
        self.detail = why
        self.on_activated()

    def on_activated(self) -> None:
        """A managed node became active: "no plan published for N s" counts from the next
        health check, not from the last plan before it was deactivated."""
        self.started_wall = None
        self.last_plan_wall = None

    def on_model_failed(self, reason: str) -> None:
        self._model_failed = True
        self.state = FAILED
        self.detail = reason

    def on_plan(self, plan: Plan, wall: float | None = None) -> bool:
        """Count a published plan (at monotonic wall time `wall`); True when the state
        changed."""
        before = (self.state, self.detail)
        self.plans += 1
        if wall is not None:
            self.last_plan_wall = wall
        if plan.is_fallback:
            self.fallback_plans += 1
        else:
            self.latency.add(plan.latency_ms)
            self.lane_plans[plan.lane] = self.lane_plans.get(plan.lane, 0) + 1
            self.lane_latency.setdefault(plan.lane, LatencyWindow()).add(plan.latency_ms)
            if math.isfinite(plan.chain_stamp):
                self.last_chain_age = plan.stamp - plan.chain_stamp
        if not self._model_failed:
            self.state = FALLBACK if plan.is_fallback else PLANNING
            # The reason's kind ("stale input", "model error", ...) names the state; the
            # details change every cycle and would make every plan a state change.
            self.detail = plan.fallback_reason.split(":")[0] if plan.is_fallback else "ok"
        return (self.state, self.detail) != before

    @property
    def bad_message_total(self) -> int:
        return sum(self.bad_messages.values())

    def health(
        self, wall: float, clock_stalled_for: float = 0.0, inference_running_for: float = 0.0
    ) -> tuple[int, str]:
        """(level, message) of what wall time shows: a stalled clock or model, no plan
        for too long, a lagging model; (OK, "") when none applies. `wall`: monotonic
        seconds; the other two: wall seconds."""
        lim = self.limits
        if self.started_wall is None:
            self.started_wall = wall
        if clock_stalled_for > lim.clock_stall:
            return ERROR, (
                f"clock stalled: the node's time has not advanced for {clock_stalled_for:.1f} s "
                "(use_sim_time and /clock stopped?)"
            )
        if inference_running_for > lim.model_stall:
            return ERROR, f"model stalled: one inference running for {inference_running_for:.1f} s"
        last = self.last_plan_wall if self.last_plan_wall is not None else self.started_wall
        since = wall - last
        if since > lim.no_plan and self.state != FAILED:
            return ERROR, f"no plan published for {since:.1f} s"
        if len(self.cycles) >= 10 and self.drop_fraction > lim.max_drop_fraction:
            return WARN, (
                f"model lagging: {100 * self.drop_fraction:.0f} % of the last {len(self.cycles)} "
                "cycles dropped (the model is slower than rate_hz)"
            )
        return OK, ""

    def diagnostics(
        self,
        now: float,
        prefix: str = "alpamayo_planner",
        wall: float | None = None,
        clock_stalled_for: float = 0.0,
        inference_running_for: float = 0.0,
    ) -> list[DiagnosticItem]:
        """An inputs item (rate per camera, odometry rate and age, skipped messages) and a
        model item (state, latency p50/p99 per stage, plans, fallbacks, dropped cycles, late
        plans, time jumps). With `wall` (monotonic seconds) the model item's level is also
        raised by `health` (stalled clock or model, no plan, lagging model)."""
        values = [(f"{cam} rate [Hz]", f"{self.rates.rate(cam, now):.1f}") for cam in self.cameras]
        silent = [cam for cam in self.cameras if self.rates.rate(cam, now) == 0.0]
        values.append(("odometry rate [Hz]", f"{self.rates.rate('odometry', now):.1f}"))
        age = now - self.last_odometry if self.last_odometry is not None else math.inf
        values.append(("odometry age [s]", f"{age:.3f}"))
        values += [(f"skipped {kind}", str(n)) for kind, n in sorted(self.bad_messages.items())]
        lead = self.input_lead
        if math.isfinite(lead):
            values.append(("newest input ahead of the clock [s]", f"{lead:.3f}"))
        if silent or not math.isfinite(age):
            missing = silent + (["odometry"] if not math.isfinite(age) else [])
            inputs = DiagnosticItem(
                f"{prefix}: inputs", ERROR, f"no messages from {', '.join(missing)}", tuple(values)
            )
        elif lead > PLAN_AHEAD_TOLERANCE:
            inputs = DiagnosticItem(
                f"{prefix}: inputs", WARN,
                f"{self.input_lead_name} stamped {lead:.2f} s ahead of the clock (sensor "
                "clocks not synchronised with this node's?): plans use older inputs",
                tuple(values),
            )  # fmt: skip
        elif self.bad_messages:
            inputs = DiagnosticItem(
                f"{prefix}: inputs", WARN, f"{self.bad_message_total} messages skipped",
                tuple(values),
            )  # fmt: skip
        else:
            inputs = DiagnosticItem(f"{prefix}: inputs", OK, "all inputs arriving", tuple(values))

        model_values = [("state", STATE_NAMES[self.state]), ("detail", self.detail)]
        for stage in LATENCY_STAGES:
            pct = self.latency.percentiles(stage)
            if pct is not None:
                model_values += [(f"{stage} p50 [ms]", f"{pct[0]:.1f}"),
                                 (f"{stage} p99 [ms]", f"{pct[1]:.1f}")]  # fmt: skip
        model_values += [
            ("plans published", str(self.plans)),
            ("fallback plans", str(self.fallback_plans)),
            ("dropped cycles", str(self.dropped_cycles)),
            ("dropped share of recent cycles", f"{self.drop_fraction:.2f}"),
            ("late plans", str(self.late_plans)),
            ("time jumps", str(self.time_jumps)),
        ]
        lanes = sorted(self.lane_plans.items())
        model_values += [(f"{lane} lane plans", str(n)) for lane, n in lanes]
        if len(self.lane_plans) > 1 or self.chains_written:  # two_lane: each lane's timing
            for lane, window in sorted(self.lane_latency.items()):
                pct = window.percentiles("total")
                if pct is not None:
                    model_values += [(f"{lane} lane total p50 [ms]", f"{pct[0]:.1f}"),
                                     (f"{lane} lane total p99 [ms]", f"{pct[1]:.1f}")]  # fmt: skip
            model_values.append(("reasoning lane chains", str(self.chains_written)))
            if math.isfinite(self.last_chain_seconds):
                model_values.append(
                    ("reasoning lane last chain [s]", f"{self.last_chain_seconds:.2f}")
                )
        if math.isfinite(self.last_chain_age):
            model_values.append(("causal-chain age [s]", f"{self.last_chain_age:.2f}"))
        if self.last_time_jump:
            model_values.append(("last time jump", self.last_time_jump))
        level = {STARTING: WARN, PLANNING: OK, FALLBACK: WARN, FAILED: ERROR}[self.state]
        message = f"{STATE_NAMES[self.state]}: {self.detail}"
        if self.state == PLANNING and self.last_chain_age > self.limits.max_chain_age:
            level = WARN
            message += (
                f"; causal chain {self.last_chain_age:.1f} s old (max_chain_age "
                f"{self.limits.max_chain_age:g} s: the trajectory lane leaves the reasoning "
                "lane too little GPU time)"
            )
        if wall is not None:
            health, why = self.health(wall, clock_stalled_for, inference_running_for)
            model_values += [
                ("clock stalled for [s]", f"{clock_stalled_for:.1f}"),
                ("inference running for [s]", f"{inference_running_for:.1f}"),
            ]
            if health > level:
                level, message = health, why
            elif why:
                message += f"; {why}"
        model = DiagnosticItem(f"{prefix}: model", level, message, tuple(model_values))
        return [inputs, model]


def lifecycle_item(prefix: str, state: str, meaning: str) -> DiagnosticItem:
    """A managed node that is not active (lifecycle `state`: unconfigured, inactive): OK,
    what it does meanwhile (`meaning`), instead of the errors of a node that should be
    planning or commanding (no plans, stale inputs)."""
    return DiagnosticItem(
        f"{prefix}: lifecycle", OK, f"{state}: {meaning}", (("lifecycle state", state),)
    )


def bond_item(prefix: str, bond: Bond) -> DiagnosticItem:
    """The bond an active managed node holds with nav2's lifecycle manager (core.bond): OK
    while formed or waiting (no manager may be running: OK too once it gave up waiting),
    WARN once lost (the manager broke it or stopped beating: nothing supervises the node)."""
    level = WARN if bond.lost else OK
    if bond.lost:
        message = f"bond with the lifecycle manager broken: {bond.why_broken}"
    elif bond.broken:
        message = f"no lifecycle manager holds a bond with this node ({bond.why_broken})"
    else:
        message = f"bond with the lifecycle manager {bond.state.value}"
    values = (("bond id", bond.id), ("state", bond.state.name.lower()))
    return DiagnosticItem(f"{prefix}: bond", level, message, values)


def navigation_item(
    prefix: str,
    topic: str,
    text: str | None,
    age: float | None,
    dropped: int,
    max_age: float,
) -> DiagnosticItem:
    """The navigation input (Alpamayo 1.5): OK with the current route text and its age
    (s), WARN when there is none because the last text was older than max_age (dropped,
    so plans go on without a route), OK "no route" when none was ever received."""
    values = (
        ("topic", topic),
        ("text", text or ""),
        ("age [s]", f"{age:.1f}" if age is not None else "-"),
        ("dropped (older than navigation_max_age)", str(dropped)),
    )
    name = f"{prefix}: navigation"
    if text is not None:
        return DiagnosticItem(name, OK, f"route: {text}", values)
    if dropped:
        return DiagnosticItem(
            name, WARN, f"no route: the last text was older than {max_age:g} s and was dropped",
            values,
        )  # fmt: skip
    return DiagnosticItem(name, OK, "no route received", values)
