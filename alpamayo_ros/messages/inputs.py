"""Input messages -> core values: odometry and tf -> ego poses, message stamps -> seconds.

Duck-typed on the message attributes, so the same code serves rclpy messages (live nodes)
and rosbags messages (offline replay). Malformed messages raise BadMessage (counted by the
caller, never fatal).
"""

from __future__ import annotations

import math
from typing import Any

from alpamayo_ros.core.ego_history import StampedPose


class BadMessage(ValueError):
    """A message that cannot be used; the text names the topic, stamp and field."""


def stamp_seconds(header_stamp: Any) -> float:
    """builtin_interfaces/Time (or Duration) -> seconds (float)."""
    return float(header_stamp.sec) + 1e-9 * float(header_stamp.nanosec)


def split_seconds(seconds: float) -> tuple[int, int]:
    """Seconds -> (sec, nanosec) rounded to the nanosecond, without going through a
    nanosecond float (which at epoch times is only good to ~256 ns)."""
    sec = math.floor(seconds)
    nanosec = round((seconds - sec) * 1e9)
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return int(sec), int(nanosec)


def nanoseconds(seconds: float) -> int:
    """Seconds -> integer nanoseconds (as split_seconds)."""
    sec, nanosec = split_seconds(seconds)
    return sec * 1_000_000_000 + nanosec


def pose_from_odometry(msg: Any, topic: str = "/odom") -> StampedPose:
    """nav_msgs/Odometry -> StampedPose (pose of child_frame_id in header.frame_id)."""
    t = stamp_seconds(msg.header.stamp)
    p = msg.pose.pose.position
    q = msg.pose.pose.orientation
    try:
        return StampedPose(t, (p.x, p.y, p.z), (q.w, q.x, q.y, q.z))
    except ValueError as err:
        raise BadMessage(f"{topic} at {t:.3f} s: {err}") from err


def odometry_frame_note(msg: Any, base_frame: str, topic: str = "/odom") -> str | None:
    """What to say (once) when nav_msgs/Odometry is of another child frame than the vehicle
    frame: the ego poses are then those of that frame (an IMU or a GNSS antenna, off the
    rear axle), and turns bend the history. None when they agree or the child is unnamed."""
    child = str(msg.child_frame_id).lstrip("/")
    if not child or child == base_frame.lstrip("/"):
        return None
    return (
        f"{topic}: odometry of child_frame_id {child!r}, not base_frame {base_frame!r}: the ego "
        f"poses are those of {child!r}; publish the odometry of {base_frame!r} or set base_frame"
    )


def poses_from_tf(
    msg: Any, parent: str = "odom", child: str = "base_link", topic: str = "/tf"
) -> list[StampedPose]:
    """tf2_msgs/TFMessage -> the parent->child poses it holds (often none)."""
    out = []
    for tr in msg.transforms:
        if tr.header.frame_id.lstrip("/") != parent or tr.child_frame_id.lstrip("/") != child:
            continue
        t = stamp_seconds(tr.header.stamp)
        v, q = tr.transform.translation, tr.transform.rotation
        try:
            out.append(StampedPose(t, (v.x, v.y, v.z), (q.w, q.x, q.y, q.z)))
        except ValueError as err:
            raise BadMessage(f"{topic} {parent}->{child} at {t:.3f} s: {err}") from err
    return out
