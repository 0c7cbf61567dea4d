"""Planning at the model's own speed on a clock the caller advances (bag time in a replay, a
fake clock in tests): what a car would get from a planner whose model takes the time it
takes.

mode "full": one lane. Each tick's newest complete inputs go to the model; while it is busy
they wait, the newest wins (an older waiting input is a dropped cycle, counted), as the
node's worker does. A plan is published when it would be finished (start + latency) and
checked then against max_plan_age (Planner.finish), so a slow model yields late stop plans.

mode "two_lane": the trajectory lane plans every tick's inputs with the newest causal chain
teacher-forced (no decoding: latency of prefill + expert); the reasoning lane writes a fresh
chain on the newest inputs whenever it is free (a full plan) and hands it over when it would
be finished. Until the first chain exists the trajectory lane makes full plans. By default
the lanes run side by side (a second CUDA stream on a GPU) and neither slows the other.
With a LaneSharing (what the planner node's worker does on one GPU or CPU) they share the
device: the reasoning lane's chain needs its full-plan time of device time, which it gets
only while the trajectory lane is idle, and, once the newest input is more than
max_chain_age newer than the chain, up to stale_chain_slice seconds after each trajectory
plan before a waiting input starts.

Latencies: each lane's given seconds, or (None) the measured wall time of the call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

from alpamayo_ros.core.plan import Plan
from alpamayo_ros.planning.planner import Chain, PlanInputs, Planner, PlanOutcome

PlanningMode = Literal["full", "two_lane"]
PLANNING_MODES: tuple[str, ...] = ("full", "two_lane")
EPS = 1e-9


@dataclass(frozen=True)
class LaneLatency:
    """Seconds a call takes in the simulation: full (decoding a chain, then the expert) and
    trajectory (a given chain teacher-forced, then the expert); None = the measured wall
    time of the call."""

    full: float | None = None
    trajectory: float | None = None

    def __post_init__(self) -> None:
        for name in ("full", "trajectory"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"LaneLatency.{name} must be > 0 s, got {value}")


@dataclass(frozen=True)
class LaneSharing:
    """two_lane on one device (the planner node's worker): the reasoning lane gets the device
    only while the trajectory lane is idle, and, once the newest input is more than
    max_chain_age (s) newer than the chain, stale_chain_slice (s) after each trajectory
    plan before a waiting input starts (the node's parameters of the same names)."""

    max_chain_age: float = math.inf
    stale_chain_slice: float = 0.0

    def __post_init__(self) -> None:
        if not self.max_chain_age > 0:
            raise ValueError(f"max_chain_age must be > 0 s, got {self.max_chain_age}")
        if not self.stale_chain_slice >= 0:
            raise ValueError(f"stale_chain_slice must be >= 0 s, got {self.stale_chain_slice}")


@dataclass
class Publication:
    """A plan as published: at `time` (clock seconds), from `inputs` (None for a stop plan
    made at a tick), by `lane` ("full", "trajectory", or "" for a stop)."""

    time: float
    outcome: PlanOutcome
    inputs: PlanInputs | None = None

    @property
    def plan(self) -> Plan:
        return self.outcome.plan

    @property
    def age(self) -> float:
        """Seconds from the plan's input time t0 to its publication."""
        return self.time - self.plan.stamp


@dataclass
class _Job:
    lane: str  # "trajectory" (full plans too, in full mode) or "reasoning"
    inputs: PlanInputs
    finish: float
    outcome: PlanOutcome


@dataclass
class _Lane:
    job: _Job | None = None
    waiting: PlanInputs | None = None


@dataclass
class RealtimeStats:
    """dropped_cycles: inputs replaced while waiting for the trajectory lane (dropped_at: the
    input times t0 of those); chains: chains handed over by the reasoning lane; busy_seconds:
    per lane, simulated seconds computing; warm_up_seconds: wall seconds of the untimed
    warm-up before the first plan (RealtimePlanner's warm_up)."""

    dropped_cycles: int = 0
    dropped_at: list[float] = field(default_factory=list)
    chains: int = 0
    busy_seconds: dict[str, float] = field(default_factory=dict)
    warm_up_seconds: float = 0.0


class RealtimePlanner:
    """See the module docstring. Call `tick(now)` at every planner tick, in time order,
    after the planner's buffers hold the inputs that have arrived by `now`."""

    def __init__(
        self,
        planner: Planner,
        mode: PlanningMode = "full",
        latency: LaneLatency | None = None,
        sharing: LaneSharing | None = None,
        warm_up: bool = False,
    ) -> None:
        """sharing: two_lane on one device (None: the lanes side by side). warm_up: before
        the first plan, run the policy once per kind of call, untimed (Planner.warm_up):
        with measured latencies, a compiled engine's first calls would otherwise count its
        compilation (tens of seconds) as the latency of a plan, and the clock would run
        past the whole bag."""
        if mode not in PLANNING_MODES:
            raise ValueError(f"planning mode must be one of {PLANNING_MODES}, got {mode!r}")
        self.planner = planner
        self.mode = mode
        self.latency = latency or LaneLatency()
        self.one_device = sharing is not None and mode == "two_lane"
        sharing = sharing or LaneSharing()
        self.max_chain_age = sharing.max_chain_age
        self.stale_chain_slice = sharing.stale_chain_slice
        self.chain: Chain | None = None
        self.stats = RealtimeStats()
        self._lanes = {"trajectory": _Lane(), "reasoning": _Lane()}
        self._clock = -math.inf  # one_device: simulated up to here
        self._reasoning_left = 0.0  # one_device: device seconds the running chain still needs
        self._warm_up = warm_up

    # -- the clock ------------------------------------------------------------------------
    def tick(self, now: float) -> list[Publication]:
        """Advance to `now` (s): publications of jobs finished by then (at their finish
        times), then this tick's stop plan, or its inputs handed to the lanes."""
        out = self._advance(now) if self.one_device else self._finish_until(now)
        prepared = self.planner.prepare(now)
        if isinstance(prepared, Plan):
            out.append(Publication(now, PlanOutcome(prepared)))
            return out
        self._offer("trajectory", prepared, now)
        if self.mode == "two_lane":
            self._offer("reasoning", prepared, now)
        return out

    def flush(self) -> list[Publication]:
        """Finish what is still running (the end of a replay)."""
        if self.one_device:
            return self._advance(math.inf)
        return self._finish_until(math.inf)

    # -- lanes ----------------------------------------------------------------------------
    def _offer(self, lane: str, inputs: PlanInputs, now: float) -> None:
        if self._warm_up:
            self._warm_up = False
            self.stats.warm_up_seconds = self.planner.warm_up(inputs, self.mode == "two_lane")
        state = self._lanes[lane]
        if state.job is None:
            self._start(lane, inputs, now)
            return
        if state.waiting is not None and lane == "trajectory":
            self._drop(state.waiting)
        state.waiting = inputs  # the newest wins

    def _drop(self, inputs: PlanInputs) -> None:
        self.stats.dropped_cycles += 1
        self.stats.dropped_at.append(inputs.t0)

    def _start(self, lane: str, inputs: PlanInputs, start: float) -> None:
        chain = self.chain if (lane == "trajectory" and self.mode == "two_lane") else None
        wall = time.perf_counter()
        outcome = self.planner.run(inputs, chain)
        measured = time.perf_counter() - wall
        given = self.latency.trajectory if chain is not None else self.latency.full
        duration = given if given is not None else measured
        self.stats.busy_seconds[lane] = self.stats.busy_seconds.get(lane, 0.0) + duration
        if self.one_device and lane == "reasoning":  # finishes when it has had the device time
            self._reasoning_left = duration
            self._lanes[lane].job = _Job(lane, inputs, math.inf, outcome)
            return
        self._lanes[lane].job = _Job(lane, inputs, start + duration, outcome)

    def _hand_over(self, job: _Job) -> None:
        if job.outcome.chain is not None and self.mode == "two_lane":
            self.chain = job.outcome.chain  # handed over when it would be finished
            self.stats.chains += 1

    def _published(self, job: _Job) -> list[Publication]:
        finished = self.planner.finish(job.outcome, job.finish)
        return [Publication(job.finish, finished, job.inputs)] if finished is not None else []

    def _advance(self, now: float) -> list[Publication]:
        """one_device: the device's time from the last call to `now`, trajectory lane first."""
        out: list[Publication] = []
        t = max(self._clock, -1e300)
        traj, reason = self._lanes["trajectory"], self._lanes["reasoning"]
        while True:
            job = traj.job
            if job is not None:  # the device plans; the chain waits
                if job.finish > now + EPS:
                    break
                t, traj.job = job.finish, None
                self._hand_over(job)  # a full plan's chain (before the first)
                out += self._published(job)
                waiting, traj.waiting = traj.waiting, None
                if waiting is None:
                    continue
                start = t
                stale = self.chain is not None and waiting.t0 - self.chain.t0 > self.max_chain_age
                if stale and reason.job is not None and self.stale_chain_slice > 0:
                    spent = min(self.stale_chain_slice, self._reasoning_left)
                    self._reasoning_left -= spent
                    start = t + spent
                    if self._reasoning_left <= EPS:
                        self._finish_reasoning(start)
                if start < now - EPS:  # otherwise this tick brings fresher inputs
                    self._start("trajectory", waiting, start)
                else:
                    self._drop(waiting)
                continue
            if reason.job is not None:  # the device is free for the chain
                done = t + self._reasoning_left
                if done <= now + EPS:
                    t = done
                    self._finish_reasoning(done)
                    continue
                self._reasoning_left -= now - t
            break
        self._clock = now
        return out

    def _finish_reasoning(self, at: float) -> None:
        reason = self._lanes["reasoning"]
        assert reason.job is not None
        job, reason.job = reason.job, None
        self._reasoning_left = 0.0
        self._hand_over(job)
        waiting, reason.waiting = reason.waiting, None
        if waiting is not None:
            self._start("reasoning", waiting, at)

    def _finish_until(self, now: float) -> list[Publication]:
        out: list[Publication] = []
        while True:
            running = [s.job for s in self._lanes.values() if s.job is not None]
            done = [j for j in running if j.finish <= now + EPS]
            if not done:
                return out
            job = min(done, key=lambda j: j.finish)
            state = self._lanes[job.lane]
            state.job = None
            self._hand_over(job)
            if job.lane == "trajectory":
                out += self._published(job)
            # A waiting input starts at once, unless this tick brings fresher inputs.
            if state.waiting is not None and job.finish < now - EPS:
                waiting, state.waiting = state.waiting, None
                self._start(job.lane, waiting, job.finish)
            elif state.waiting is not None and job.lane == "trajectory":
                self._drop(state.waiting)  # superseded by this tick's inputs
                state.waiting = None
            else:
                state.waiting = None
