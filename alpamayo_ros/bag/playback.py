"""Stepping through a bag at the planner's rate, as the live planner would see it.

Shared by `inspect-bag`, `replay` and the training dataset builder: the planning ticks in
bag time, the messages that have arrived by each tick turned into core inputs (frames,
poses; malformed ones counted and skipped), and the whole logged odometry read up front,
since the logged future of a tick (what the driver did) lies ahead of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from alpamayo_ros.bag.reader import (
    BadMessage,
    Bag,
    SkipCounts,
    pose_from_odometry,
    poses_from_tf,
    stamp_seconds,
)
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.ego_history import (
    EgoHistorySpec,
    EgoHistoryUnavailable,
    EgoPoseBuffer,
    StampedPose,
)
from alpamayo_ros.core.encoded_image import CameraFrame
from alpamayo_ros.messages.images import intake_image

ImageSink = Callable[[str, float, CameraFrame], None]
PoseSink = Callable[[StampedPose], None]
MAX_TICKS = 10_000_000  # planning ticks of one pass: ~11.6 days of bag time at 10 Hz


def tick_times(start: float, end: float, rate_hz: float) -> np.ndarray:
    """(N,) planning ticks start, start + 1/rate, ... <= end, seconds (computed from the
    index, so long bags accumulate no rounding drift)."""
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    n = int(np.floor((end - start) * rate_hz + 1e-6)) + 1
    if n > MAX_TICKS:
        raise ValueError(
            f"the bag spans {end - start:.0f} s ({start:.3f} to {end:.3f} s): {n} ticks at "
            f"{rate_hz:g} Hz, more than {MAX_TICKS} (a damaged timestamp? replay's --start "
            "and --duration plan a part of it)"
        )
    return start + np.arange(max(n, 0)) / rate_hz


def first_tick(bag: Bag, history: EgoHistorySpec) -> float:
    """The first tick at which a full ego history can exist: the bag's start plus the
    history span, plus one step of margin for cameras stamped after odometry."""
    return bag.start_time + history.dt * history.num_poses


@dataclass
class LoggedDrive:
    """The whole logged ego motion of a bag (what the driver did)."""

    poses: EgoPoseBuffer
    gaps: list[tuple[float, float]]  # (start s, length s) of gaps wider than max_gap

    def future_xy(self, t0: float, num_steps: int, dt: float) -> np.ndarray | None:
        """(K, 2) metres: the logged path after t0 in the ego frame at t0, at dt, 2 dt, ...
        as far as the log goes without a gap (K <= num_steps: the bag's end or an odometry
        gap cuts it, and the horizons before the cut are still scored); None where there is
        none."""
        newest = self.poses.latest_stamp
        if newest is None:
            return None
        k = min(num_steps, int((newest - t0) / dt + 1e-6))
        offsets = dt * np.arange(1, k + 1)
        usable = 0
        for off in offsets:
            try:
                self.poses.pose_at(t0 + float(off))
            except EgoHistoryUnavailable:
                break
            usable += 1
        if usable < 1:
            return None
        try:
            xyz, _ = self.poses.poses_in_ego_frame(t0, offsets[:usable])
        except EgoHistoryUnavailable:  # t0 itself not placeable
            return None
        return xyz[:, :2]


def read_logged_drive(
    bag: Bag, source: str, spec: EgoHistorySpec | None = None, skipped: SkipCounts | None = None
) -> LoggedDrive:
    """Every ego pose of the bag (Odometry topic, or /tf odom->base_link) in one buffer,
    and the gaps in it wider than spec.max_gap."""
    spec = spec or EgoHistorySpec()
    poses = bag.read_ego_poses(source, skipped=skipped)
    buffer = EgoPoseBuffer(replace(spec, capacity=max(len(poses), spec.num_poses)))
    for p in poses:
        buffer.add(p)
    stamps = np.array(sorted(p.stamp for p in poses))
    widths = np.diff(stamps)
    gaps = [(float(stamps[i]), float(widths[i])) for i in np.flatnonzero(widths > spec.max_gap)]
    return LoggedDrive(buffer, gaps)


class InputFeed:
    """Routes bag messages to core inputs: images (decoded, or with defer_jpeg JPEGs kept as
    EncodedImages for the model; cropped per camera) and poses.

    Malformed images are counted in `skipped` as bad_image; malformed poses are not counted
    here (read_logged_drive counted them when it read the whole log).
    """

    def __init__(
        self,
        rig: CameraRig,
        odom_source: str,
        odom_is_tf: bool,
        add_image: ImageSink,
        add_pose: PoseSink,
        skipped: SkipCounts,
        navigation_topic: str | None = None,
        set_navigation: Callable[[str, float], None] | None = None,
        defer_jpeg: bool = False,
    ) -> None:
        self.rig = rig
        self.navigation_topic = navigation_topic
        self.set_navigation = set_navigation
        self.received = 0.0  # bag receive time (s) of the message being fed
        self.odom_source = odom_source
        self.odom_is_tf = odom_is_tf
        self.by_topic = rig.by_topic()
        self.add_image = add_image
        self.add_pose = add_pose
        self.skipped = skipped
        self.defer_jpeg = defer_jpeg
        self.image_sizes: dict[str, tuple[int, int]] = {}  # topic -> its first image's (W, H)

    @property
    def topics(self) -> list[str]:
        nav = [self.navigation_topic] if self.navigation_topic else []
        return [self.odom_source, *self.by_topic, *nav]

    def __call__(self, topic: str, msg: Any) -> None:
        try:
            if isinstance(msg, BadMessage):
                raise msg
            if topic == self.navigation_topic:
                text = getattr(msg, "data", None)
                if not isinstance(text, str):
                    raise BadMessage(f"{topic}: not a std_msgs/String")
                if self.set_navigation is not None:
                    try:
                        self.set_navigation(text, self.received)
                    except ValueError as err:
                        raise BadMessage(f"{topic}: {err}") from err
                return
            if topic == self.odom_source:
                if self.odom_is_tf:
                    for pose in poses_from_tf(msg, topic=topic):
                        self.add_pose(pose)
                else:
                    self.add_pose(pose_from_odometry(msg, topic))
                return
            cams = self.by_topic[topic]
            image = intake_image(msg, cams[0].encoding, topic, self.defer_jpeg)
            stamp = stamp_seconds(msg.header.stamp)
            self.image_sizes.setdefault(topic, (image.shape[1], image.shape[0]))
            for cam in cams:
                self.add_image(cam.name, stamp, cam.crop_image(image))
        except BadMessage as err:
            if topic == self.navigation_topic:
                self.skipped.add("bad_navigation", str(err))
            elif topic != self.odom_source:
                self.skipped.add("bad_image", str(err))


def add_image_size_notes(
    notes: dict[str, str], rig: CameraRig, sizes: dict[str, tuple[int, int]]
) -> None:
    """Add to a report's camera notes (camera name -> text) where a camera's image_size in
    the rig is not the size of its topic's frames in the bag (sizes: topic -> (width,
    height) pixels, InputFeed.image_sizes): a node would warm up on the wrong size."""
    for cam in rig.cameras:
        seen = sizes.get(cam.topic)
        if cam.image_size is None or seen is None or seen == cam.image_size:
            continue
        note = (
            f"the rig's image_size {cam.image_size[0]}x{cam.image_size[1]} is not the "
            f"{seen[0]}x{seen[1]} of the bag's frames (a fast engine warms up on the rig's)"
        )
        notes[cam.name] = f"{notes[cam.name]}; {note}" if notes.get(cam.name) else note


def step_through(bag: Bag, feed: InputFeed, ticks: np.ndarray) -> Iterator[float]:
    """Yield each tick after feeding every message received up to it (bag order)."""
    stream = bag.messages(feed.topics)
    pending = next(stream, None)
    for tick in ticks:
        while pending is not None and pending[1] <= tick + 1e-9:
            feed.received = pending[1]
            feed(pending[0], pending[2])
            pending = next(stream, None)
        yield float(tick)
