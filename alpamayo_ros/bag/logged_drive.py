"""Inspection of a logged drive through the core, step by step at the planner's rate.

For every planning tick it answers what the live planner would face: is there a complete
frame set and an ego history at t0, and how well do the unicycle model and the trajectory
tokens represent what the driver then did (the logged future). It is the input check that
comes before replaying a model over the bag, and the source of training targets.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from alpamayo_ros.bag.playback import (
    InputFeed,
    add_image_size_notes,
    first_tick,
    read_logged_drive,
    step_through,
    tick_times,
)
from alpamayo_ros.bag.reader import Bag, SkipCounts
from alpamayo_ros.core.atomic_output import refuse_a_file, write_text_atomically
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.ego_history import EgoHistoryUnavailable, EgoPoseBuffer
from alpamayo_ros.core.frame_buffer import FrameBuffer, FrameBufferSpec, FramesUnavailable
from alpamayo_ros.core.meta_actions import extract_meta_actions
from alpamayo_ros.core.tokens import ControlTokenizer
from alpamayo_ros.core.trajectory import UnicycleSpec, fit_controls, integrate, yaw_from_rotation

log = logging.getLogger(__name__)


@dataclass
class StepReport:
    """One planning tick. Distances in metres, speeds in m/s, times in seconds (bag time)."""

    tick: float
    t0: float | None
    speed: float | None = None
    frames: str = "ok"
    history: str = "ok"
    future: str = "ok"
    horizon: float | None = None
    fit_error_max: float | None = None
    token_error_max: float | None = None
    meta_actions: tuple[str, ...] = ()


@dataclass
class DriveReport:
    bag: str
    cameras: dict[str, str]
    camera_notes: dict[str, str]
    rate_hz: float
    steps: list[StepReport] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    truncation: str = ""  # what was recovered from a truncated or damaged MCAP ("": complete)

    def summary(self) -> dict[str, object]:
        usable = [s for s in self.steps if s.frames == "ok" and s.history == "ok"]
        fitted = [s for s in self.steps if s.fit_error_max is not None]
        return {
            "bag": self.bag,
            "ticks": len(self.steps),
            "ticks_with_inputs": len(usable),
            "ticks_with_logged_future": len(fitted),
            "ticks_with_full_horizon": sum(s.future == "ok" for s in fitted),
            "fit_error_max_m": max((s.fit_error_max or 0.0) for s in fitted) if fitted else None,
            "token_error_max_m": max((s.token_error_max or 0.0) for s in fitted)
            if fitted
            else None,
            "skipped": self.skipped,
            "truncation": self.truncation,
        }

    def write(self, out_dir: Path) -> Path:
        """out_dir/logged_drive.json, replacing an earlier one only when complete."""
        refuse_a_file(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "logged_drive.json"
        doc = {"summary": self.summary(), **asdict(self)}
        write_text_atomically(path, json.dumps(doc, indent=2, default=float))
        return path


def inspect_logged_drive(
    bag_path: str | Path,
    rig: CameraRig,
    odom_source: str = "/odom",
    rate_hz: float = 10.0,
    trajectory: UnicycleSpec | None = None,
    tokenizer: ControlTokenizer | None = None,
    progress: bool = True,
    min_future: float = 1.0,
) -> DriveReport:
    """Step through the bag at rate_hz and report each tick (see StepReport).

    min_future: seconds of logged future needed to check the unicycle fit and the tokens
    at a tick (the full 6.4 s where the bag has it, less near its end).
    """
    spec = trajectory or UnicycleSpec()
    tok = tokenizer or ControlTokenizer()
    skipped = SkipCounts()
    with Bag(bag_path) as bag:
        bag.require_inputs(rig, odom_source)
        live = EgoPoseBuffer()
        logged = read_logged_drive(bag, odom_source, live.spec, skipped)
        frames = FrameBuffer(FrameBufferSpec(cameras=rig.names))
        report = DriveReport(
            bag=str(bag_path),
            cameras={c.name: c.topic for c in rig.cameras},
            camera_notes={c.name: c.note for c in rig.cameras if c.note},
            rate_hz=rate_hz,
        )
        is_tf = bag.topics[odom_source] == "tf2_msgs/msg/TFMessage"
        feed = InputFeed(rig, odom_source, is_tf, frames.add, live.add, skipped)
        ticks = tick_times(first_tick(bag, live.spec), bag.end_time, rate_hz)
        for tick in tqdm(
            step_through(bag, feed, ticks), total=len(ticks), disable=not progress, desc="inspect"
        ):
            report.steps.append(_step(tick, frames, live, logged.poses, spec, tok, min_future))
        report.skipped = skipped.as_dict()
        report.truncation = bag.truncation  # set by the passes, where a record was damaged
        add_image_size_notes(report.camera_notes, rig, feed.image_sizes)
    return report


def _step(tick, frames, live, logged, spec, tok, min_future) -> StepReport:
    t0 = frames.newest_complete_t0()
    step = StepReport(tick=tick, t0=t0)
    if t0 is None:
        step.frames = "a camera has no frame yet"
        step.history = step.future = "not tried"
        return step
    try:
        frames.assemble(t0)
    except FramesUnavailable as err:
        step.frames = str(err)
    try:
        hist = live.history(t0)
        step.speed = hist.speed
    except EgoHistoryUnavailable as err:
        step.history = str(err)
        step.future = "not tried"
        return step
    # Use as much logged future as there is (at least min_future seconds): short bags
    # and bag ends still get a check over a shorter horizon.
    newest = logged.latest_stamp
    steps = min(spec.num_steps, int((newest - t0) / spec.dt + 1e-6))
    if steps * spec.dt < min_future - 1e-9:
        step.future = f"logged future {max(newest - t0, 0.0):.2f} s < {min_future} s"
        return step
    if steps < spec.num_steps:
        step.future = f"partial: {steps * spec.dt:.1f} s of {spec.horizon:.1f} s"
        spec = replace(spec, num_steps=steps)
    try:
        fut_xyz, fut_rot = logged.future(t0, spec.num_steps, spec.dt)
    except EgoHistoryUnavailable as err:
        step.future = str(err)
        return step
    step.horizon = spec.horizon
    heading = np.unwrap(yaw_from_rotation(fut_rot))
    controls = fit_controls(fut_xyz[:, :2], hist.speed, spec, heading=heading)
    fitted = integrate(controls, hist.speed, spec)
    step.fit_error_max = float(np.linalg.norm(fitted.xy - fut_xyz[:, :2], axis=-1).max())
    decoded = integrate(spec.clip(tok.decode(tok.encode(controls))), hist.speed, spec)
    step.token_error_max = float(np.linalg.norm(decoded.xy - fut_xyz[:, :2], axis=-1).max())
    step.meta_actions = extract_meta_actions(
        fitted.speed, fitted.heading, fitted.y, hist.speed, spec.dt
    )
    return step
