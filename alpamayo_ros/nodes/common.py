"""What both nodes share: the message-type lookup, the newest ego pose from tf, and main()."""

from __future__ import annotations

import functools
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.time import Time
from rosidl_runtime_py.utilities import get_message
from tf2_ros import Buffer, TransformException

from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.messages.inputs import stamp_seconds

# "pkg/msg/Name" -> message class, for the duck-typed builders in alpamayo_ros.messages.
types = functools.lru_cache(maxsize=None)(get_message)


def latest_tf_pose(buffer: Buffer, parent: str, child: str) -> StampedPose | None:
    """The newest parent -> child transform as a pose, or None while there is none.
    Raises ValueError (from StampedPose) for a non-finite transform."""
    try:
        tr = buffer.lookup_transform(parent, child, Time())
    except TransformException:
        return None
    t, q = tr.transform.translation, tr.transform.rotation
    return StampedPose(stamp_seconds(tr.header.stamp), (t.x, t.y, t.z), (q.w, q.x, q.y, q.z))


def run(
    make_node: Callable[[], Node],
    name: str,
    config_errors: tuple[type[BaseException], ...],
    args: list[str] | None = None,
) -> int:
    """rclpy.init(args), build the node (a configuration error: logged, exit code 1), spin
    until Ctrl-C or shutdown, clean up."""
    rclpy.init(args=args)
    try:
        node = make_node()
    except config_errors as err:
        rclpy.logging.get_logger(name).fatal(f"bad configuration: {err}")
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
