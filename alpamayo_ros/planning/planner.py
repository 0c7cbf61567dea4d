"""The planning loop without ROS or torch: buffers in, a validated plan (or a controlled
stop) out.

One code path for the live node and the offline replay: both feed camera frames and ego
poses into a Planner, ask it at each tick for the newest complete input set (`prepare`,
cheap), and run the policy on it (`run`, slow: the node does this in a worker thread).
Whatever goes wrong (stale or missing inputs, the model raising, a plan out of bounds) gives
a controlled-stop plan flagged with the reason.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.clock import PLAN_AHEAD_TOLERANCE, ClockWatch, TimeJump
from alpamayo_ros.core.ego_history import (
    EgoHistory,
    EgoHistorySpec,
    EgoHistoryUnavailable,
    EgoPoseBuffer,
    StampedPose,
)
from alpamayo_ros.core.encoded_image import CameraFrame
from alpamayo_ros.core.frame_buffer import FrameBuffer, FrameBufferSpec, FrameSet, FramesUnavailable
from alpamayo_ros.core.meta_actions import extract_meta_actions, is_consistent, meta_actions_in_text
from alpamayo_ros.core.plan import LATENCY_STAGES, Plan, make_stop_plan, plan_problems
from alpamayo_ros.core.trajectory import held_at_standstill
from alpamayo_ros.planning.requests import PlanRequest, Policy
from alpamayo_ros.planning.settings import PlannerSettings, SampleChoice

log = logging.getLogger(__name__)


MODEL_ERROR = "model error"  # how the stop reason of a plan the model failed begins


class WarmUpFailed(RuntimeError):
    """The policy failed on its warm-up inputs; the message gives the model's error."""


class StampAhead(ValueError):
    """An input stamped further ahead of the clock than ClockSettings.future_tolerance."""


@dataclass(frozen=True)
class PlanInputs:
    """A complete input set at t0, ready for the policy."""

    t0: float
    frames: FrameSet
    ego: EgoHistory
    navigation: str | None = None
    # The clock's backward jumps counted when the set was assembled (Planner.timeline):
    # inputs, plans and chains of an abandoned timeline never mix with the new one's.
    timeline: int = 0


@dataclass(frozen=True)
class Navigation:
    """Route text (Alpamayo 1.5) and the clock time (s) it was received."""

    text: str
    received: float


@dataclass(frozen=True)
class Chain:
    """A causal chain to reuse (the trajectory lane): its token ids (teacher-forced into the
    next prefills), its text, the input time t0 (s) it was written for, and the timeline of
    those inputs (PlanInputs.timeline)."""

    ids: tuple[int, ...]
    text: str
    t0: float
    timeline: int = 0


@dataclass(frozen=True)
class PlanOutcome:
    """The published plan and, for reports, every sample drawn (xy (S, T, 2) metres);
    chain: the published sample's causal chain, written for this plan's inputs (full
    plans only: what the reasoning lane hands over); sample_plans: each sample that passes
    the plan checks as a Plan (the candidates offered to a stack's selector)."""

    plan: Plan
    sample_xy: np.ndarray | None = None
    sample_reasoning: tuple[str, ...] = ()
    chain: Chain | None = None
    sample_plans: tuple[Plan, ...] = ()

    @property
    def candidates(self) -> tuple[Plan, ...]:
        """The plans to offer as candidates: the valid samples of a model plan, or the
        published stop plan alone (a stop is never offered beside model samples)."""
        if self.plan.is_fallback or not self.sample_plans:
            return (self.plan,)
        return self.sample_plans


def choose_sample(
    xy: np.ndarray,
    how: SampleChoice,
    consistent: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> int:
    """Index of the sample to publish among xy (S, T, 2): the first, or the one whose path
    is closest (mean point distance) to the point-wise median of all samples, or
    ("consistent") of the samples flagged in `consistent` (S,) bool (all, if none is).
    valid (S,) bool: the samples that pass the plan checks; when some do, only those are
    chosen from (an invalid sample is never published while a valid one was drawn).

    Samples whose mean distances differ by less than TIE_M are equally close: among them
    the one closest to the median of all valid samples, then the first. Two candidates are
    always equally close to their own median (its midpoint), and an argmin would pick one by
    float rounding: the eager and the fast engine published different samples of the same
    plans (5 of 65 on the sample drive)."""
    pool = np.arange(len(xy))
    if valid is not None and np.any(valid):
        pool = np.flatnonzero(valid)
    if how == "first" or len(pool) == 1:
        return int(pool[0])
    candidates = pool
    if how == "consistent" and consistent is not None and np.any(consistent[pool]):
        candidates = pool[consistent[pool]]
    candidates = _closest_to_median(xy, candidates, candidates)
    if len(candidates) > 1:
        candidates = _closest_to_median(xy, candidates, pool)
    return int(candidates[0])


TIE_M = 1e-3  # m: mean path distances closer than this are a tie in choose_sample


def _closest_to_median(xy: np.ndarray, among: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The indices in `among` whose paths (T, 2) are closest (mean point distance, m, ties
    within TIE_M) to the point-wise median of the paths in `reference`."""
    median = np.median(xy[reference], axis=0)
    spread = np.linalg.norm(xy[among] - median, axis=-1).mean(axis=-1)
    return among[spread <= spread.min() + TIE_M]


def self_consistent(samples: list[Any], v0: float) -> np.ndarray:
    """(S,) bool: which samples' causal chains state what their own trajectories do."""
    flags = []
    for smp in samples:
        roll = smp.rollout
        extracted = extract_meta_actions(roll.speed, roll.heading, roll.y, v0, roll.dt)
        flags.append(is_consistent(meta_actions_in_text(smp.reasoning), extracted))
    return np.array(flags, dtype=bool)


def held_sample(sample: Any) -> Any:
    """A policy sample with its speeds held at standstill instead of falling through zero (its
    path, states and xyz from the held rollout); the sample itself when that changes nothing."""
    roll = held_at_standstill(sample.rollout)
    if roll is None:
        return sample
    xyz, rot = roll.to_xyz_rot(z=float(np.asarray(sample.xyz)[0, 2]))
    return replace(sample, controls=roll.controls, rollout=roll, xyz=xyz, rot=rot)


class Planner:
    """Frame and pose buffers plus a policy; see the module docstring."""

    def __init__(
        self,
        policy: Policy | None,
        rig: CameraRig,
        settings: PlannerSettings | None = None,
        frame_spec: FrameBufferSpec | None = None,
        ego_spec: EgoHistorySpec | None = None,
    ) -> None:
        self.policy = policy
        self.rig = rig
        self.settings = settings or PlannerSettings()
        self.frames = FrameBuffer(frame_spec or FrameBufferSpec(cameras=rig.names))
        if self.frames.spec.cameras != rig.names:
            raise ValueError(
                f"frame buffer cameras {self.frames.spec.cameras} differ from the rig's {rig.names}"
            )
        self.poses = EgoPoseBuffer(ego_spec)
        self.clock = ClockWatch(self.settings.clock)
        self.ticks = 0
        self.late_plans = 0
        self.navigation: Navigation | None = None
        self.navigation_dropped = 0  # texts dropped for being older than navigation_max_age
        # At the last prepare: how far the newest input was stamped ahead of the clock (s;
        # negative: behind) and which input it was ("" before any complete set).
        self.input_lead = math.nan
        self.input_lead_name = ""
        self.cancel = threading.Event()  # set: the running plan is abandoned (shutdown)

    @property
    def timeline(self) -> int:
        """Backward jumps of the clock seen so far: each starts a new timeline."""
        return self.clock.jumps

    @property
    def model_id(self) -> str:
        return str(getattr(self.policy, "model_id", "") or "")

    # -- clock and inputs -----------------------------------------------------------------
    def check_clock(self, now: float, wall: float) -> TimeJump | None:
        """Record a reading of the clock (seconds) at monotonic wall time `wall`. When it
        went back (a bag played again, a simulator reset) every buffered frame and pose
        belongs to the abandoned timeline: they are dropped and the jump is returned."""
        jump = self.clock.observe(now, wall)
        if jump is not None:
            self.reset()
            log.warning("%s: frame and pose buffers cleared", jump)
        return jump

    def reset(self) -> None:
        """Forget every buffered frame and pose."""
        self.frames.clear()
        self.poses.clear()
        self.navigation = None
        self.input_lead, self.input_lead_name = math.nan, ""

    def _check_stamp(self, what: str, stamp: float, now: float | None) -> None:
        if now is None or now <= 0.0:  # no clock yet (use_sim_time before /clock)
            return
        ahead = self.clock.ahead(stamp, now)
        if ahead > 0:
            raise StampAhead(
                f"{what} stamped {stamp - now:.2f} s ahead of the clock ({stamp:.3f} s at "
                f"{now:.3f} s; future_tolerance {self.settings.clock.future_tolerance} s)"
            )

    def add_image(
        self, camera: str, stamp: float, image: CameraFrame, now: float | None = None
    ) -> None:
        """Buffer a frame. With `now` (the clock, seconds; 0 = not started yet), a frame
        stamped further ahead of it than the tolerance raises StampAhead and is not kept."""
        self._check_stamp(f"camera {camera} frame", stamp, now)
        self.frames.add(camera, stamp, image)

    def add_pose(self, pose: StampedPose, now: float | None = None) -> None:
        """Buffer an ego pose; `now` as for add_image."""
        self._check_stamp("ego pose", pose.stamp, now)
        self.poses.add(pose)

    def set_navigation(self, text: str, now: float) -> None:
        """Route text received at clock time `now` (s); empty text clears it. Text holding
        the model's control markup is refused (ValueError) and the previous text kept."""
        text = text.strip()
        if not text:
            self.navigation = None
            return
        if "<|" in text or "|>" in text:
            raise ValueError(f"navigation text must not contain '<|' or '|>': {text!r}")
        self.navigation = Navigation(text, now)

    def navigation_at(self, now: float) -> str | None:
        """The route text for a plan at clock time `now`, or None: none was received, or it
        is older than navigation_max_age (then it is dropped and counted)."""
        nav = self.navigation
        if nav is None:
            return None
        if now - nav.received > self.settings.navigation_max_age:
            log.warning(
                "navigation %r dropped: received %.1f s ago (navigation_max_age %.1f s)",
                nav.text, now - nav.received, self.settings.navigation_max_age,
            )  # fmt: skip
            self.navigation = None
            self.navigation_dropped += 1
            return None
        return nav.text

    def current_speed(self) -> float:
        """Best speed estimate now (m/s, never negative going forward) for a stop plan; 0
        when unknown."""
        latest = self.poses.latest_stamp
        if latest is None:
            return 0.0
        try:
            return self.poses.history(latest).travel_speed
        except EgoHistoryUnavailable:
            return 0.0

    # -- planning -------------------------------------------------------------------------
    def prepare(self, now: float) -> PlanInputs | Plan:
        """The newest complete input set, or a stop plan saying why there is none.

        now: the current time in seconds (ROS time, or bag time in a replay).
        """
        s = self.settings
        latest = {**self.frames.latest_stamps(), "odometry": self.poses.latest_stamp}
        stale = []
        for name, stamp in latest.items():
            if stamp is None:
                stale.append(f"{name}: {'none' if name == 'odometry' else 'no frame'} yet")
            elif now - stamp > s.max_input_age:
                stale.append(f"{name}: {now - stamp:.2f} s old")
        if stale:
            return self.stop_plan(now, "stale input: " + "; ".join(stale))
        newest = max(t for t in latest.values() if t is not None)
        self.input_lead = newest - now
        self.input_lead_name = next(k for k, t in latest.items() if t == newest)
        if self.clock.ahead(newest, now) > 0:  # inputs of another timeline
            return self.stop_plan(
                now, f"input ahead of the clock: stamped {newest - now:.2f} s after now"
            )
        # A plan is never stamped ahead of the clock (the controller would not follow it):
        # frames stamped after now + PLAN_AHEAD_TOLERANCE wait for the clock to reach them.
        t0 = self.frames.newest_complete_t0(at_most=now + PLAN_AHEAD_TOLERANCE)
        if t0 is None:
            complete = self.frames.newest_complete_t0()
            assert complete is not None  # every camera has a frame (checked above)
            return self.stop_plan(
                now, f"input ahead of the clock: the newest complete frame set is stamped "
                f"{complete - now:.2f} s after now and none is at or before now + "
                f"{PLAN_AHEAD_TOLERANCE} s (sensor clocks not synchronised with this clock?)",
            )  # fmt: skip
        try:
            frames = self.frames.assemble(t0)
            ego = self.poses.history(t0)
        except (FramesUnavailable, EgoHistoryUnavailable) as err:
            return self.stop_plan(now, f"incomplete input: {err}")
        return PlanInputs(
            t0=t0, frames=frames, ego=ego, navigation=self.navigation_at(now),
            timeline=self.timeline,
        )  # fmt: skip

    def warm_up(self, inputs: PlanInputs, two_lane: bool = False) -> float:
        """The policy once on inputs as a full plan and, with two_lane, once as a
        trajectory-lane plan on that plan's chain and once as the reasoning lane writing a
        chain: nothing published, no tick counted (the seeds of later plans are unchanged).
        What a compiled engine compiles on its first calls happens here, outside a timed
        schedule. Returns the seconds it took; raises WarmUpFailed when the model failed
        (the plan's stop reason), and stops early, quietly, when `cancel` is set."""
        start, ticks = time.perf_counter(), self.ticks
        try:
            for outcome in self._warm_up_calls(inputs, two_lane):
                plan = outcome.plan
                if plan.is_fallback and plan.fallback_reason.startswith(MODEL_ERROR):
                    raise WarmUpFailed(f"warm-up failed: {plan.fallback_reason}")
        finally:
            self.ticks = ticks
        return time.perf_counter() - start

    def _warm_up_calls(self, inputs: PlanInputs, two_lane: bool) -> Iterator[PlanOutcome]:
        full = self.run_batch([inputs])
        if not full or self.cancel.is_set():
            return
        yield full[0]
        chain = full[0].chain
        if not two_lane or chain is None:
            return
        lane = self.run_batch([inputs], chain)
        if not lane or self.cancel.is_set():
            return
        yield lane[0]
        steps = self.reasoning_steps(inputs)
        try:
            while not self.cancel.is_set():
                next(steps)
        except StopIteration:
            pass
        except Exception as err:  # the reasoning lane's own calls failed
            raise WarmUpFailed(
                f"warm-up failed: {MODEL_ERROR}: {type(err).__name__}: {err}"
            ) from err

    def run(self, inputs: PlanInputs, chain: Chain | None = None) -> PlanOutcome:
        """The policy on one input set -> the chosen sample as a Plan (stop plan on failure);
        with `chain`, the trajectory lane (that chain teacher-forced, nothing decoded)."""
        return self.run_batch([inputs], chain)[0]

    def run_batch(self, batch: list[PlanInputs], chain: Chain | None = None) -> list[PlanOutcome]:
        """The policy on several input sets in one call (one forward pass); an outcome per
        input set, in order. A model error gives each of them a stop plan; a plan abandoned
        through `cancel` (shutdown) gives no outcome at all. With `chain`, every input set
        is planned with that causal chain (lane "trajectory") instead of a fresh one."""
        s = self.settings
        if chain is not None and any(i.timeline != chain.timeline for i in batch):
            log.warning("a chain of another timeline (the clock jumped back) is not reused")
            chain = None
        self.ticks += 1
        fields: list[dict[str, Any]] = [
            dict(
                frame_id=s.frame_id,
                camera_names=inputs.frames.cameras,
                camera_stamps=inputs.frames.stamps,
                odometry_stamp=inputs.ego.t0,
                model_id=self.model_id,
                navigation=inputs.navigation or "",
            )
            for inputs in batch
        ]
        extra: dict[str, Any] = {}
        if chain is not None:
            extra["reasoning_ids"] = [list(chain.ids)] * len(batch)
        if self.policy is None:
            return [
                PlanOutcome(self.stop_plan(inputs.t0, "no model loaded", **f))
                for inputs, f in zip(batch, fields, strict=True)
            ]
        try:
            requests = [
                PlanRequest(tuple(i.frames.flat()), i.ego, i.frames.cameras, i.navigation)
                for i in batch
            ]
            result = self.policy.plan(
                requests,
                num_samples=s.num_samples,
                temperature=s.temperature,
                top_p=s.top_p,
                max_reasoning_tokens=s.max_reasoning_tokens,
                seed=None if s.seed is None else s.seed + self.ticks,
                num_flow_steps=s.num_flow_steps,
                cancel=self.cancel,
                navigation_guidance=s.navigation_guidance,
                noise_temperature=s.noise_temperature,
                **extra,
            )
        except Exception as err:  # the model failing must never stop the vehicle's planner
            if self.cancel.is_set():
                return []  # abandoned at shutdown: nothing to publish
            log.exception("policy failed")
            reason = f"{MODEL_ERROR}: {type(err).__name__}: {err}"
            return [
                PlanOutcome(self.stop_plan(i.t0, reason, v0=i.ego.travel_speed, **f))
                for i, f in zip(batch, fields, strict=True)
            ]
        # The message's stages (a policy may time more, e.g. guidance_prefill, which its
        # trajectory stage includes).
        latency = {k: float(v) for k, v in result.timings_ms.items() if k in LATENCY_STAGES}
        lane = {"lane": "trajectory", "chain_stamp": chain.t0} if chain is not None else {}
        return [
            self._outcome(inputs, samples, latency, {**f, **lane})
            for inputs, samples, f in zip(batch, result.samples, fields, strict=True)
        ]

    def reasoning_steps(self, inputs: PlanInputs) -> Generator[str, None, Chain | None]:
        """The reasoning lane on one input set, a step at a time (Policy.reason_steps with
        the planner's sampling settings): yields after the prefill and each token; returns
        the causal chain written for inputs.t0 (None when the policy cannot write one)."""
        policy = self.policy
        if policy is None or not hasattr(policy, "reason_steps"):
            return None
        s = self.settings
        request = PlanRequest(
            tuple(inputs.frames.flat()), inputs.ego, inputs.frames.cameras, inputs.navigation
        )
        steps = policy.reason_steps(
            request, temperature=s.temperature, top_p=s.top_p,
            max_tokens=s.max_reasoning_tokens,
            seed=None if s.seed is None else s.seed + self.ticks,
        )  # fmt: skip
        ids, text, _ = yield from steps
        return Chain(tuple(ids), text, inputs.t0, inputs.timeline)

    def _outcome(
        self, inputs: PlanInputs, samples: list, latency: dict[str, float], fields: dict[str, Any]
    ) -> PlanOutcome:
        """The published plan from one request's samples (or a stop plan if it is invalid)."""
        s = self.settings
        fields = {"lane": "full", "chain_stamp": inputs.t0, **fields}
        if s.hold_at_standstill:
            samples = [held_sample(smp) for smp in samples]
        xy = np.stack([smp.rollout.xy for smp in samples])

        def as_plan(k: int) -> Plan:
            smp, roll = samples[k], samples[k].rollout
            return Plan(
                stamp=inputs.t0,
                xyz=smp.xyz,
                heading=roll.heading,
                speed=roll.speed,
                accel=roll.accel,
                curvature=roll.curvature,
                dt=roll.dt,
                reasoning=smp.reasoning,
                meta_actions=extract_meta_actions(
                    roll.speed, roll.heading, roll.y, inputs.ego.speed, roll.dt
                ),
                chosen_sample=k,
                num_samples=len(samples),
                latency_ms=latency,
                **fields,
            )

        sample_plans = [as_plan(k) for k in range(len(samples))]
        problems_of = [plan_problems(p, s.limits) for p in sample_plans]
        ok = np.array([not found for found in problems_of])
        consistent = self_consistent(samples, inputs.ego.speed)
        chosen = choose_sample(xy, s.sample_choice, consistent, ok)
        plan, smp = replace(sample_plans[chosen], chosen_sample=chosen), samples[chosen]
        valid = tuple(p for p, good in zip(sample_plans, ok, strict=True) if good)
        problems = problems_of[chosen]
        chain = None
        if fields["lane"] == "full" and smp.reasoning_token_ids:
            chain = Chain(tuple(smp.reasoning_token_ids), smp.reasoning, inputs.t0, inputs.timeline)
        if problems:
            reason = "model plan rejected: " + "; ".join(problems)
            stop_fields = {k: v for k, v in fields.items() if k not in ("lane", "chain_stamp")}
            plan = self.stop_plan(inputs.t0, reason, v0=inputs.ego.travel_speed, **stop_fields)
        return PlanOutcome(plan, xy, tuple(x.reasoning for x in samples), chain, valid)

    def finish(self, outcome: PlanOutcome, now: float) -> PlanOutcome | None:
        """The outcome as it may be published at `now` (seconds): a model plan whose t0 is
        more than max_plan_age old, or ahead of the clock (made before the clock jumped
        back), is late and becomes a flagged stop plan stamped now (late_plan "stop") or
        None (late_plan "drop"). Stop plans pass unchanged."""
        plan = outcome.plan
        age = now - plan.stamp
        s = self.settings
        if plan.is_fallback or -PLAN_AHEAD_TOLERANCE <= age <= s.max_plan_age:
            return outcome
        self.late_plans += 1
        if age < 0:
            why = f"late plan: made for t0 {-age:.2f} s after now (the clock jumped back)"
        else:
            why = f"late plan: made for t0 {age:.2f} s ago (max_plan_age {s.max_plan_age} s)"
        log.warning(why)
        if s.late_plan == "drop":
            return None
        fields: dict[str, Any] = dict(
            camera_names=plan.camera_names, camera_stamps=plan.camera_stamps,
            odometry_stamp=plan.odometry_stamp, latency_ms=plan.latency_ms,
        )  # fmt: skip
        return PlanOutcome(self.stop_plan(now, why, **fields), outcome.sample_xy,
                           outcome.sample_reasoning)  # fmt: skip

    def step(self, now: float) -> PlanOutcome:
        """prepare + run, for callers without a worker thread (the replay)."""
        prepared = self.prepare(now)
        if isinstance(prepared, Plan):
            return PlanOutcome(prepared)
        return self.run(prepared)

    def stop_plan(self, stamp: float, reason: str, v0: float | None = None, **fields: Any) -> Plan:
        """A controlled stop from the current speed along the current heading (never from a
        negative speed unless the car is reversing: v0 is a travel speed)."""
        speed = self.current_speed() if v0 is None or not math.isfinite(v0) else v0
        fields.setdefault("frame_id", self.settings.frame_id)
        fields.setdefault("model_id", self.model_id)
        return make_stop_plan(stamp, speed, reason, decel=self.settings.stop_decel, **fields)
