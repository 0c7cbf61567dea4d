"""Questions about a recorded scene, offline: the newest complete frame set of a bag at a
given time, asked of an Alpamayo 1.5 checkpoint (`alpamayo-ros ask BAG --at T "..."`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alpamayo_ros.bag.reader import BadMessage, Bag, BagError, SkipCounts, stamp_seconds
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.frame_buffer import FrameBuffer, FrameBufferSpec, FrameSet, FramesUnavailable
from alpamayo_ros.messages.images import decode_image
from alpamayo_ros.planning.requests import Answer, QuestionRequest


@dataclass(frozen=True)
class SceneAnswer:
    """The answer, and the frames it was given (frames.t0: the input stamp, s; bag_start:
    the bag's first receive time, s)."""

    answer: Answer
    frames: FrameSet
    skipped: dict[str, int]
    bag_start: float = 0.0


def frames_at(
    bag_path: str | Path, rig: CameraRig, at: float, frames_per_camera: int = 4
) -> tuple[FrameSet, dict[str, int], float]:
    """The newest complete frame set received by `at` seconds after the bag's start: every
    rig camera's frames at t0 - (F-1) * 0.1 s ... t0. BagError naming the cameras and why
    when there is none; malformed images are counted and skipped. Also returns the skips
    and the bag's start time (s)."""
    buffer = FrameBuffer(
        FrameBufferSpec(cameras=rig.names, num_frames=frames_per_camera, capacity=32)
    )
    skipped = SkipCounts()
    by_topic = rig.by_topic()
    with Bag(bag_path) as bag:
        bag.require_inputs(rig)
        start = bag.start_time
        end = start + at
        if not 0 <= at <= bag.end_time - bag.start_time:
            raise BagError(
                f"--at {at:g} s is outside {bag_path}: it lasts "
                f"{bag.end_time - bag.start_time:.1f} s"
            )
        for topic, received, msg in bag.messages(list(by_topic)):
            if received > end:
                break
            try:
                if isinstance(msg, BadMessage):
                    raise msg
                cams = by_topic[topic]
                image = decode_image(msg, cams[0].encoding, topic)
                stamp = stamp_seconds(msg.header.stamp)
                for cam in cams:
                    buffer.add(cam.name, stamp, cam.crop_image(image))
            except BadMessage as err:
                skipped.add("bad_image", str(err))
    t0 = buffer.newest_complete_t0()
    if t0 is None:
        missing = [c for c, s in buffer.latest_stamps().items() if s is None]
        raise BagError(f"no frame of cameras {missing} in {bag_path} by {at:g} s")
    try:
        return buffer.assemble(t0), skipped.as_dict(), start
    except FramesUnavailable as err:
        raise BagError(f"{bag_path} at {at:g} s: {err}") from err


def ask_bag(
    bag_path: str | Path,
    policy: Any,
    rig: CameraRig,
    at: float,
    question: str,
    frames_per_camera: int = 4,
    **ask_kwargs: Any,
) -> SceneAnswer:
    """Ask `policy` (AlpamayoPolicy.ask) `question` about the scene at `at` s."""
    frames, skipped, start = frames_at(bag_path, rig, at, frames_per_camera)
    request = QuestionRequest(tuple(frames.flat()), question, frames.cameras)
    return SceneAnswer(policy.ask(request, **ask_kwargs), frames, skipped, start)
