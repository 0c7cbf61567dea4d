"""Offline replay of a bag through the same Planner the live node uses.

Steps through bag time at the planner's rate, feeds the frame and pose buffers with what
has arrived by each tick, plans (or falls back to a stop, for the same reasons as live), and
writes: DIR/plans/ (a ROS 2 bag, plans.mcap + metadata.yaml, with DrivingPlan, Path,
reasoning and markers stamped in bag time, and the node's /diagnostics and status once per
second of bag time), DIR/report.html and DIR/summary.json (open-loop
metrics against the logged future, latency per stage, everything skipped and why).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from alpamayo_ros.bag.messages import BagWriter, typestore
from alpamayo_ros.bag.playback import (
    InputFeed,
    LoggedDrive,
    add_image_size_notes,
    first_tick,
    read_logged_drive,
    step_through,
    tick_times,
)
from alpamayo_ros.bag.projection import read_calibrations
from alpamayo_ros.bag.reader import Bag, BagError, SkipCounts
from alpamayo_ros.bag.report import ReportWriter
from alpamayo_ros.core.atomic_output import written_atomically
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.diagnostics import HealthLimits, PlannerMonitor
from alpamayo_ros.core.ego_history import EgoHistorySpec, StampedPose
from alpamayo_ros.core.encoded_image import CameraFrame
from alpamayo_ros.core.frame_buffer import FrameBufferSpec
from alpamayo_ros.core.metrics import (
    constant_controls_xy,
    constant_velocity_xy,
    displacement_metrics,
    recent_controls,
)
from alpamayo_ros.core.plan import LATENCY_STAGES, Plan
from alpamayo_ros.messages.autoware import autoware_candidates_msg, autoware_trajectory_msg
from alpamayo_ros.messages.diagnostics import diagnostic_array_msg, planner_status_msg
from alpamayo_ros.messages.plan import plan_messages
from alpamayo_ros.planning.planner import PlanInputs, Planner, PlanOutcome
from alpamayo_ros.planning.realtime import (
    LaneLatency,
    LaneSharing,
    PlanningMode,
    Publication,
    RealtimePlanner,
    RealtimeStats,
)
from alpamayo_ros.planning.settings import PlannerSettings

log = logging.getLogger(__name__)

PLANNER_NAMESPACE = "/alpamayo_planner"
DIAGNOSTICS_PERIOD = 1.0  # s of bag time between /diagnostics (and status) messages, as the node
PLAN_TOPICS = {
    "plan": "alpamayo_ros/msg/DrivingPlan",
    "path": "nav_msgs/msg/Path",
    "reasoning": "std_msgs/msg/String",
    "markers": "visualization_msgs/msg/MarkerArray",
}


@dataclass
class ReplayStep:
    """One tick: the plan, the samples, and metrics against the logged future.

    tick: bag time, s, when the plan was published (its t0 is plan.stamp: the same except
    in a realtime replay); sample_xy: (S, T, 2) m, every sample drawn (None for a stop plan
    made without the model); logged_xy: (K, 2) m, the driver's path after t0 in the ego
    frame at t0 (K <= T near the bag's end); image: (H, W, 3) RGB of the report camera at
    t0 (kept only until the report has drawn it); candidates: the plans offered as
    candidates (OutcomePlan.candidates: valid samples, or the stop plan), kept only until
    written.
    """

    tick: float
    plan: Plan
    metrics: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)  # constant velocity, same plan
    # constant acceleration and curvature (those of the last second of history), same plan
    baseline_ca: dict[str, float] = field(default_factory=dict)
    sample_xy: np.ndarray | None = None
    sample_reasoning: tuple[str, ...] = ()
    logged_xy: np.ndarray | None = None
    image: CameraFrame | None = None
    candidates: tuple[Plan, ...] = ()


@dataclass
class ReplayResult:
    """What a replay did; `summary()` is what summary.json holds besides the steps."""

    bag: str
    model_id: str
    untrained: bool
    model_description: str
    rate_hz: float
    steps: list[ReplayStep] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    odometry_gaps: list[tuple[float, float]] = field(default_factory=list)
    camera_notes: dict[str, str] = field(default_factory=dict)
    report_camera: str = ""
    calibrated: bool = False
    wall_seconds: float = 0.0
    interrupted: bool = False
    planning_mode: str = "full"
    realtime: RealtimeStats | None = None  # set by a realtime replay
    bag_seconds: float = 0.0  # of bag time replayed
    truncation: str = ""  # what was recovered from a truncated or damaged MCAP ("": complete)

    @property
    def plans_per_second(self) -> float:
        return len(self.steps) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        fallbacks = Counter(
            s.plan.fallback_reason.split(":")[0] for s in self.steps if s.plan.is_fallback
        )
        metric_keys = sorted({k for s in self.steps for k in s.metrics})
        metrics = {
            k: float(np.mean([s.metrics[k] for s in self.steps if k in s.metrics]))
            for k in metric_keys
        }
        latency = {}
        for stage in LATENCY_STAGES:
            v = [s.plan.latency_ms[stage] for s in self.steps if stage in s.plan.latency_ms]
            if v:
                p50, p99 = np.percentile(v, [50, 99])
                latency[stage] = {"p50_ms": float(p50), "p99_ms": float(p99)}
        return {
            "bag": self.bag,
            "bag_truncation": self.truncation,
            "model_id": self.model_id,
            "untrained_checkpoint": self.untrained,
            "model_description": self.model_description,
            "rate_hz": self.rate_hz,
            "plans": len(self.steps),
            "model_plans": sum(not s.plan.is_fallback for s in self.steps),
            "fallback_plans": dict(sorted(fallbacks.items())),
            "metrics_mean_m": metrics,
            "metrics_plan_count": {k: sum(k in s.metrics for s in self.steps) for k in metric_keys},
            "constant_velocity_mean_m": {
                k: float(np.mean([s.baseline[k] for s in self.steps if k in s.baseline]))
                for k in sorted({k for s in self.steps for k in s.baseline})
            },
            "constant_accel_curvature_mean_m": {
                k: float(np.mean([s.baseline_ca[k] for s in self.steps if k in s.baseline_ca]))
                for k in sorted({k for s in self.steps for k in s.baseline_ca})
            },
            "latency": latency,
            "skipped_inputs": self.skipped,
            "odometry_gaps": [{"start": a, "seconds": b} for a, b in self.odometry_gaps],
            "camera_notes": self.camera_notes,
            "report_camera": self.report_camera,
            "projected_on_camera": self.calibrated,
            "plans_per_second": self.plans_per_second,
            "wall_seconds": self.wall_seconds,
            "interrupted": self.interrupted,
            "planning_mode": self.planning_mode,
            **({"realtime": self.realtime_summary()} if self.realtime is not None else {}),
        }

    def realtime_summary(self) -> dict[str, Any]:
        """What a car would have got at the model's speed: plans and model plans per second
        of bag time, plan age when published, causal-chain age, dropped cycles, late plans."""
        assert self.realtime is not None
        model = [s for s in self.steps if not s.plan.is_fallback]
        ages = [s.tick - s.plan.stamp for s in model]
        chains = [s.plan.stamp - s.plan.chain_stamp for s in model if s.plan.lane]
        late = sum(s.plan.fallback_reason.startswith("late plan") for s in self.steps)

        def pct(values: list[float]) -> dict[str, float]:
            if not values:
                return {}
            p50, p99 = np.percentile(values, [50, 99])
            return {"p50": float(p50), "p99": float(p99), "max": float(max(values))}

        seconds = max(self.bag_seconds, 1e-9)
        return {
            "plans_per_bag_second": len(self.steps) / seconds,
            "model_plans_per_bag_second": len(model) / seconds,
            "plan_age_at_publish_s": pct(ages),
            "chain_age_s": pct(chains),
            "dropped_cycles": self.realtime.dropped_cycles,
            "late_plans": late,
            "chains_handed_over": self.realtime.chains,
            "lane_busy_seconds": self.realtime.busy_seconds,
            "warm_up_seconds": self.realtime.warm_up_seconds,
        }

    def to_json(self) -> dict[str, Any]:
        """summary.json: the summary and one entry per plan."""
        doc = self.summary()
        doc["steps"] = [
            {
                "tick": s.tick,
                "t0": s.plan.stamp,
                "reasoning": s.plan.reasoning,
                "meta_actions": list(s.plan.meta_actions),
                "is_fallback": s.plan.is_fallback,
                "fallback_reason": s.plan.fallback_reason,
                "chosen_sample": s.plan.chosen_sample,
                "num_samples": s.plan.num_samples,
                "lane": s.plan.lane,
                "chain_t0": None if np.isnan(s.plan.chain_stamp) else s.plan.chain_stamp,
                "metrics_m": s.metrics,
                "constant_velocity_m": s.baseline,
                "constant_accel_curvature_m": s.baseline_ca,
                "latency_ms": s.plan.latency_ms,
            }
            for s in self.steps
        ]
        return doc


def check_replay_inputs(
    bag_path: str | Path,
    rig: CameraRig,
    odom_source: str = "/odom",
    start: float = 0.0,
    duration: float | None = None,
    out_dir: str | Path | None = None,
    navigation_topic: str | None = None,
    rate_hz: float = 10.0,
) -> tuple[float, float]:
    """What replay_bag needs, checked before any model is loaded (fast): the rate is a
    positive number of Hz, the bag opens, has the rig's and the odometry topics, and the
    window [start, start + duration] after its first tick holds at least one tick; the
    output folder is not a file. Returns the bag time window (s). Raises BagError or
    ValueError naming what is wrong."""
    if not (rate_hz > 0 and math.isfinite(rate_hz)):
        raise ValueError(f"--rate must be > 0 Hz, got {rate_hz}")
    if duration is not None and not duration > 0:
        raise ValueError(f"--duration must be > 0 s, got {duration}")
    if not start >= 0:  # NaN too
        raise ValueError(f"--start must be >= 0 s, got {start}")
    if out_dir is not None and Path(out_dir).is_file():
        raise ValueError(f"output folder {out_dir} is a file")
    with Bag(bag_path) as bag:
        bag.require_inputs(rig, odom_source, [navigation_topic] if navigation_topic else [])
        ticks_from = first_tick(bag, EgoHistorySpec())  # the planner's history
        t_first = ticks_from + start
        if t_first >= bag.end_time:
            raise BagError(
                f"--start {start:g} s is past the end of {bag_path}: its ticks run from "
                f"{ticks_from - bag.start_time:.1f} s to {bag.end_time - bag.start_time:.1f} s"
            )
        t_last = bag.end_time if duration is None else min(bag.end_time, t_first + duration)
    return t_first, t_last


def replay_bag(
    bag_path: str | Path,
    policy: Any,
    rig: CameraRig,
    out_dir: str | Path,
    settings: PlannerSettings | None = None,
    rate_hz: float = 10.0,
    odom_source: str = "/odom",
    start: float = 0.0,
    duration: float | None = None,
    progress: bool = True,
    report_camera: str | None = None,
    realtime: bool = False,
    planning_mode: PlanningMode = "full",
    latency: LaneLatency | None = None,
    autoware_wheelbase: float | None = None,
    frames_per_camera: int = 4,
    navigation: str | None = None,
    navigation_topic: str | None = None,
    sharing: LaneSharing | None = None,
    defer_jpeg: bool = False,
    warm_up: bool = False,
) -> ReplayResult:
    """Replay `bag_path` with `policy` (anything with AlpamayoPolicy.plan's signature, or
    None for stop plans only) and write DIR/plans/, DIR/summary.json and DIR/report.html.

    start: seconds after the first tick at which to begin; duration: seconds of bag time to
    replay (None: to the end). Ctrl-C stops the replay and still writes what is done.
    realtime: bag time advances by the model's latency (measured, or `latency`): plans are
    published when they would be finished, inputs arriving meanwhile wait or are dropped
    as in the node (planning.realtime); planning_mode "two_lane" implies it.
    autoware_wheelbase: also write each plan as autoware_planning_msgs/msg/Trajectory on
    .../autoware/trajectory and its samples as autoware_internal_planning_msgs/msg/
    CandidateTrajectories on .../autoware/candidate_trajectories (front wheel angles for this
    wheelbase, m); None: do not.
    frames_per_camera: frames per camera in each plan's input (Alpamayo 1: 4).
    navigation: route text given to every plan (Alpamayo 1.5); navigation_topic: a
    std_msgs/String topic of the bag to read it from instead (its receive time counts
    for navigation_max_age).
    sharing: two_lane with the lanes sharing one device as the planner node's worker does
    (planning.realtime.LaneSharing); None: side by side.
    defer_jpeg: JPEG frames are kept encoded for the policy to decode (on its device where
    it can: the image_decode setting, planning.settings.jpeg_on_model); else decoded on
    arrival.
    warm_up: with realtime, run the policy once per kind of call before the first plan,
    untimed (what a compiled engine compiles then is not counted as plan latency).
    """
    if navigation is not None and navigation_topic is not None:
        raise ValueError("give navigation text or a navigation topic, not both")
    settings = settings or PlannerSettings()
    with written_atomically(Path(out_dir)) as out:
        return _replay_into(
            out, bag_path, policy, rig, settings, rate_hz=rate_hz, odom_source=odom_source,
            start=start, duration=duration, progress=progress, report_camera=report_camera,
            realtime=realtime, planning_mode=planning_mode, latency=latency,
            autoware_wheelbase=autoware_wheelbase, frames_per_camera=frames_per_camera,
            navigation=navigation, navigation_topic=navigation_topic, sharing=sharing,
            defer_jpeg=defer_jpeg, warm_up=warm_up,
        )  # fmt: skip


def _replay_into(
    out_dir: Path,
    bag_path: str | Path,
    policy: Any,
    rig: CameraRig,
    settings: PlannerSettings,
    *,
    rate_hz: float,
    odom_source: str,
    start: float,
    duration: float | None,
    progress: bool,
    report_camera: str | None,
    realtime: bool,
    planning_mode: PlanningMode,
    latency: LaneLatency | None,
    autoware_wheelbase: float | None,
    frames_per_camera: int,
    navigation: str | None,
    navigation_topic: str | None,
    sharing: LaneSharing | None,
    defer_jpeg: bool,
    warm_up: bool,
) -> ReplayResult:
    frame_spec = FrameBufferSpec(cameras=rig.names, num_frames=frames_per_camera)
    planner = Planner(policy, rig, settings, frame_spec=frame_spec)
    skipped = SkipCounts()
    report_camera = report_camera or (
        "camera_front_wide_120fov" if "camera_front_wide_120fov" in rig.names else rig.names[0]
    )
    if report_camera not in rig.names:
        raise ValueError(f"report_camera {report_camera!r} is not in the rig {rig.names}")
    cam_input = rig.cameras[rig.names.index(report_camera)]
    result = ReplayResult(
        bag=str(bag_path),
        model_id=planner.model_id,
        untrained=bool(getattr(policy, "untrained", False)),
        model_description=str(getattr(policy, "description", "")),
        rate_hz=rate_hz,
        camera_notes={c.name: c.note for c in rig.cameras if c.note},
        report_camera=report_camera,
    )
    store = typestore()

    def types(name: str) -> Any:
        return store.types[name]

    # What the node would say on /diagnostics and ~/status, in bag time (no wall-clock
    # health: the replay has no stalled clock or model to report).
    stale = sharing.max_chain_age if sharing is not None else math.inf
    monitor = PlannerMonitor(rig.names, limits=HealthLimits(max_chain_age=stale))
    monitor.on_model_loaded(planner.model_id)

    plans_dir = out_dir / "plans"
    wall_start = time.perf_counter()
    with Bag(bag_path) as bag, BagWriter(plans_dir, store=store) as writer:
        bag.require_inputs(rig, odom_source)
        logged = read_logged_drive(bag, odom_source, planner.poses.spec, skipped)
        result.odometry_gaps = logged.gaps
        # A crop changes the intrinsics: draw on that camera's frames only when uncropped.
        calib = read_calibrations(bag).get(cam_input.topic) if cam_input.crop is None else None
        result.calibrated = calib is not None
        is_tf = bag.topics[odom_source] == "tf2_msgs/msg/TFMessage"
        if navigation_topic is not None:
            bag.require([navigation_topic])

        def add_image(camera: str, stamp: float, image: CameraFrame) -> None:
            monitor.on_image(camera, feed.received)
            planner.add_image(camera, stamp, image)

        def add_pose(pose: StampedPose) -> None:
            monitor.on_pose(pose.stamp, feed.received)
            planner.add_pose(pose)

        feed = InputFeed(
            rig, odom_source, is_tf, add_image, add_pose, skipped,
            navigation_topic=navigation_topic, set_navigation=planner.set_navigation,
            defer_jpeg=defer_jpeg,
        )  # fmt: skip
        t_first = first_tick(bag, planner.poses.spec) + start
        t_last = bag.end_time if duration is None else min(bag.end_time, t_first + duration)
        ticks = tick_times(t_first, t_last, rate_hz)
        result.bag_seconds = len(ticks) / rate_hz
        report = ReportWriter(calib, expected_steps=len(ticks))
        bar = tqdm(total=len(ticks), disable=not progress, unit="tick", desc="replay")
        lanes = None
        if realtime or planning_mode != "full":
            lanes = RealtimePlanner(planner, planning_mode, latency, sharing, warm_up)
            result.planning_mode, result.realtime = planning_mode, lanes.stats

        def emit(step: ReplayStep) -> None:
            monitor.on_plan(step.plan)
            report.add(step)
            step.image = None  # drawn (or not needed): do not hold frames of long bags
            result.steps.append(step)
            for suffix, msg in plan_messages(step.plan, types).items():
                writer.write(f"{PLANNER_NAMESPACE}/{suffix}", step.tick, msg)
            if autoware_wheelbase is not None:
                trajectory = autoware_trajectory_msg(step.plan, types, autoware_wheelbase)
                writer.write(f"{PLANNER_NAMESPACE}/autoware/trajectory", step.tick, trajectory)
                candidates = autoware_candidates_msg(
                    step.plan, step.candidates or (step.plan,), types, autoware_wheelbase
                )
                writer.write(
                    f"{PLANNER_NAMESPACE}/autoware/candidate_trajectories", step.tick, candidates
                )
            step.candidates = ()

        next_diagnostics = t_first

        def write_diagnostics(now: float) -> None:
            monitor.bad_messages = Counter(skipped.as_dict())
            if lanes is not None:
                monitor.chains_written = lanes.stats.chains
            items = monitor.diagnostics(now, PLANNER_NAMESPACE.lstrip("/"))
            msg = diagnostic_array_msg(items, now, types, "alpamayo_planner")
            writer.write("/diagnostics", now, msg)
            writer.write(
                f"{PLANNER_NAMESPACE}/status", now, planner_status_msg(monitor, now, types)
            )

        try:
            for tick in step_through(bag, feed, ticks):
                if navigation is not None:
                    planner.set_navigation(navigation, tick)
                if lanes is None:
                    monitor.on_cycle(dropped=False)
                    emit(_plan_tick(planner, tick, logged, report_camera))
                else:
                    dropped_before = lanes.stats.dropped_cycles
                    for pub in lanes.tick(tick):
                        emit(_published_step(pub, logged, report_camera))
                    monitor.on_cycle(dropped=lanes.stats.dropped_cycles > dropped_before)
                monitor.on_input_lead(planner.input_lead, planner.input_lead_name)
                if tick >= next_diagnostics - 1e-9:
                    write_diagnostics(tick)
                    next_diagnostics = tick + DIAGNOSTICS_PERIOD
                bar.update(1)
            if lanes is not None:
                for pub in lanes.flush():
                    emit(_published_step(pub, logged, report_camera))
        except KeyboardInterrupt:
            result.interrupted = True
            log.warning("interrupted: writing what is done (%d plans)", len(result.steps))
        finally:
            bar.close()
        result.truncation = bag.truncation  # set by the passes, where a record was damaged
    result.wall_seconds = time.perf_counter() - wall_start
    result.skipped = skipped.as_dict()
    add_image_size_notes(result.camera_notes, rig, feed.image_sizes)
    (out_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    report.write(result, out_dir / "report.html")
    return result


def _plan_tick(planner: Planner, tick: float, logged: LoggedDrive, camera: str) -> ReplayStep:
    prepared = planner.prepare(tick)
    if isinstance(prepared, Plan):
        return ReplayStep(tick=tick, plan=prepared)
    return _step(tick, planner.run(prepared), prepared, logged, camera)


def _published_step(pub: Publication, logged: LoggedDrive, camera: str) -> ReplayStep:
    if pub.inputs is None:
        return ReplayStep(tick=pub.time, plan=pub.plan)
    return _step(pub.time, pub.outcome, pub.inputs, logged, camera)


def _step(
    tick: float, outcome: PlanOutcome, prepared: PlanInputs, logged: LoggedDrive, camera: str
) -> ReplayStep:
    """A published plan with its samples, the logged future from its t0 and its frame."""
    plan = outcome.plan
    frames = prepared.frames
    step = ReplayStep(
        tick=tick,
        plan=plan,
        sample_xy=outcome.sample_xy,
        sample_reasoning=outcome.sample_reasoning,
        logged_xy=logged.future_xy(plan.stamp, plan.num_points, plan.dt),
        image=frames.images[frames.cameras.index(camera)][-1],
        candidates=outcome.candidates,
    )
    if step.logged_xy is not None and not plan.is_fallback and outcome.sample_xy is not None:
        step.metrics = displacement_metrics(
            outcome.sample_xy, step.logged_xy, plan.dt, chosen=plan.chosen_sample
        )
        # the baseline on the same plans: straight ahead at the speed the model was given
        cv = constant_velocity_xy(prepared.ego.speed, plan.num_points, plan.dt)
        step.baseline = {
            k: v for k, v in displacement_metrics(cv, step.logged_xy, plan.dt).items()
            if not k.startswith("min_")
        }  # fmt: skip
        # and keeping the acceleration and curvature of the last second of history
        accel, curvature = recent_controls(prepared.ego.xyz, prepared.ego.rot, plan.dt)
        ca = constant_controls_xy(prepared.ego.speed, accel, curvature, plan.num_points, plan.dt)
        step.baseline_ca = {
            k: v for k, v in displacement_metrics(ca, step.logged_xy, plan.dt).items()
            if not k.startswith("min_")
        }  # fmt: skip
    return step
