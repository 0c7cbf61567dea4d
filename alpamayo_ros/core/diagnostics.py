"""What the planner reports about itself: input rates, latency percentiles, counters and its
state, as ROS-free values that the node turns into diagnostic_msgs and PlannerStatus.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

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
    """Messages per second per key over a sliding window of `window` seconds."""

    def __init__(self, window: float = 2.0) -> None:
        if not window > 0:
            raise ValueError(f"window must be > 0 s, got {window}")
        self.window = window
        self._stamps: dict[str, deque[float]] = {}

    def tick(self, key: str, now: float) -> None:
        stamps = self._stamps.setdefault(key, deque())
        stamps.append(now)
        while stamps and stamps[0] < now - self.window:
            stamps.popleft()

    def rate(self, key: str, now: float) -> float:
        stamps = self._stamps.get(key, deque())
        while stamps and stamps[0] < now - self.window:
            stamps.popleft()
        return len(stamps) / self.window


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


class PlannerMonitor:
    """Counters, rates and state of the planner node; see `diagnostics` and `state`."""

    def __init__(self, cameras: tuple[str, ...], window: float = 2.0) -> None:
        self.cameras = cameras
        self.rates = RateMeter(window)
        self.latency = LatencyWindow()
        self.bad_messages: Counter[str] = Counter()
        self.plans = 0
        self.fallback_plans = 0
        self.dropped_cycles = 0
        self.last_odometry: float | None = None
        self.state = STARTING
        self.detail = "loading the model"
        self._model_failed = False

    def on_image(self, camera: str, now: float) -> None:
        self.rates.tick(camera, now)

    def on_pose(self, stamp: float, now: float) -> None:
        self.rates.tick("odometry", now)
        self.last_odometry = stamp

    def on_bad_message(self, kind: str) -> None:
        self.bad_messages[kind] += 1

    def on_dropped_cycle(self) -> None:
        self.dropped_cycles += 1

    def on_model_loaded(self, model_id: str) -> None:
        self.detail = f"model {model_id} loaded"

    def on_model_failed(self, reason: str) -> None:
        self._model_failed = True
        self.state = FAILED
        self.detail = reason

    def on_plan(self, plan: Plan) -> bool:
        """Count a published plan; True when the state changed."""
        before = (self.state, self.detail)
        self.plans += 1
        if plan.is_fallback:
            self.fallback_plans += 1
        else:
            self.latency.add(plan.latency_ms)
        if not self._model_failed:
            self.state = FALLBACK if plan.is_fallback else PLANNING
            # The reason's kind ("stale input", "model error", ...) names the state; the
            # details change every cycle and would make every plan a state change.
            self.detail = plan.fallback_reason.split(":")[0] if plan.is_fallback else "ok"
        return (self.state, self.detail) != before

    @property
    def bad_message_total(self) -> int:
        return sum(self.bad_messages.values())

    def diagnostics(self, now: float, prefix: str = "alpamayo_planner") -> list[DiagnosticItem]:
        """An inputs item (rate per camera, odometry rate and age, skipped messages) and a
        model item (state, latency p50/p99 per stage, plans, fallbacks, dropped cycles)."""
        values = [(f"{cam} rate [Hz]", f"{self.rates.rate(cam, now):.1f}") for cam in self.cameras]
        silent = [cam for cam in self.cameras if self.rates.rate(cam, now) == 0.0]
        values.append(("odometry rate [Hz]", f"{self.rates.rate('odometry', now):.1f}"))
        age = now - self.last_odometry if self.last_odometry is not None else math.inf
        values.append(("odometry age [s]", f"{age:.3f}"))
        values += [(f"skipped {kind}", str(n)) for kind, n in sorted(self.bad_messages.items())]
        if silent or not math.isfinite(age):
            missing = silent + (["odometry"] if not math.isfinite(age) else [])
            inputs = DiagnosticItem(
                f"{prefix}: inputs", ERROR, f"no messages from {', '.join(missing)}", tuple(values)
            )
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
        ]
        level = {STARTING: WARN, PLANNING: OK, FALLBACK: WARN, FAILED: ERROR}[self.state]
        model = DiagnosticItem(
            f"{prefix}: model", level, f"{STATE_NAMES[self.state]}: {self.detail}",
            tuple(model_values),
        )  # fmt: skip
        return [inputs, model]
