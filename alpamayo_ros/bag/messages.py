"""Building ROS 2 messages and writing bags without ROS (rosbags' Jazzy typestore).

Used to write sample drives, replay outputs and test bags. Our own interfaces (msg/*.msg)
are registered in the typestore from the package's .msg files, so a bag written here carries
alpamayo_ros/msg/DrivingPlan that `ros2 bag play` and Foxglove read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.writer import Connection
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.messages.inputs import nanoseconds
from alpamayo_ros.messages.plan import header_msg

_LATCHED_QOS = Qos(
    history=QosHistory.KEEP_LAST,
    depth=1,
    reliability=QosReliability.RELIABLE,
    durability=QosDurability.TRANSIENT_LOCAL,
    deadline=QosTime(0, 0),
    lifespan=QosTime(0, 0),
    liveliness=QosLiveliness.AUTOMATIC,
    liveliness_lease_duration=QosTime(0, 0),
    avoid_ros_namespace_conventions=False,
)


def msg_dir() -> Path | None:
    """Our .msg files: the source tree's msg/ (pip -e), else share/alpamayo_ros/msg of an
    ament install (colcon)."""
    candidates = [Path(__file__).resolve().parents[2] / "msg"]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "alpamayo_ros" / "msg")
    return next((c for c in candidates if (c / "DrivingPlan.msg").is_file()), None)


def typestore(with_own_interfaces: bool = True) -> Typestore:
    """The Jazzy typestore, plus alpamayo_ros/msg/* (raises FileNotFoundError when asked
    for our interfaces and their .msg files cannot be found)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    if with_own_interfaces:
        folder = msg_dir()
        if folder is None:
            raise FileNotFoundError(
                "alpamayo_ros .msg files not found (looked in the source tree's msg/ and in "
                "share/alpamayo_ros/msg under AMENT_PREFIX_PATH)"
            )
        types: dict[str, Any] = {}
        for path in sorted(folder.glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"alpamayo_ros/msg/{path.stem}"))
        # Autoware's trajectory (integrators' output, --autoware), without Autoware
        from alpamayo_ros.messages.autoware import AUTOWARE_MSG_DEFINITIONS

        for name, text in AUTOWARE_MSG_DEFINITIONS.items():
            types.update(get_types_from_msg(text, name))
        store.register(types)
    return store


class MessageFactory:
    """Typed message constructors over one typestore."""

    def __init__(self, store: Typestore | None = None) -> None:
        self.store = store or typestore()
        self.t = self.store.types

    def types(self, name: str) -> Any:
        """The class of a message type name (the lookup messages.plan takes)."""
        return self.t[name]

    def header(self, seconds: float, frame_id: str) -> Any:
        return header_msg(self.types, seconds, frame_id)

    def pose(self, position, quaternion_wxyz) -> Any:
        t = self.t
        x, y, z = (float(v) for v in position)
        w, qx, qy, qz = (float(v) for v in quaternion_wxyz)
        return t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=x, y=y, z=z),
            orientation=t["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=w),
        )

    def vector3(self, x: float = 0.0, y: float = 0.0, z: float = 0.0) -> Any:
        return self.t["geometry_msgs/msg/Vector3"](x=float(x), y=float(y), z=float(z))

    def odometry(
        self,
        pose: StampedPose,
        speed: float = 0.0,
        yaw_rate: float = 0.0,
        frame_id: str = "odom",
        child_frame_id: str = "base_link",
    ) -> Any:
        """nav_msgs/Odometry; twist in the child frame (REP-105)."""
        t = self.t
        cov = np.zeros(36)
        return t["nav_msgs/msg/Odometry"](
            header=self.header(pose.stamp, frame_id),
            child_frame_id=child_frame_id,
            pose=t["geometry_msgs/msg/PoseWithCovariance"](
                pose=self.pose(pose.position, pose.quaternion), covariance=cov
            ),
            twist=t["geometry_msgs/msg/TwistWithCovariance"](
                twist=t["geometry_msgs/msg/Twist"](
                    linear=self.vector3(speed), angular=self.vector3(z=yaw_rate)
                ),
                covariance=cov.copy(),
            ),
        )

    def transform(self, pose: StampedPose, parent: str, child: str) -> Any:
        t = self.t
        x, y, z = pose.position
        w, qx, qy, qz = pose.quaternion
        return t["geometry_msgs/msg/TransformStamped"](
            header=self.header(pose.stamp, parent),
            child_frame_id=child,
            transform=t["geometry_msgs/msg/Transform"](
                translation=self.vector3(x, y, z),
                rotation=t["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=w),
            ),
        )

    def tf(self, transforms: list[Any]) -> Any:
        return self.t["tf2_msgs/msg/TFMessage"](transforms=transforms)

    def compressed_image(
        self, seconds: float, frame_id: str, rgb: np.ndarray, quality: int = 85
    ) -> Any:
        """(H, W, 3) uint8 RGB -> sensor_msgs/CompressedImage (JPEG)."""
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise ValueError(f"JPEG encoding failed for an image of shape {rgb.shape}")
        return self.t["sensor_msgs/msg/CompressedImage"](
            header=self.header(seconds, frame_id), format="jpeg", data=buf.reshape(-1)
        )

    def raw_image(self, seconds: float, frame_id: str, rgb: np.ndarray) -> Any:
        """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8."""
        h, w = rgb.shape[:2]
        return self.t["sensor_msgs/msg/Image"](
            header=self.header(seconds, frame_id),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=3 * w,
            data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1),
        )

    def camera_info(
        self,
        seconds: float,
        frame_id: str,
        width: int,
        height: int,
        fx: float,
        fy: float,
        cx: float,
        cy: float,
    ) -> Any:
        """A rectified pinhole sensor_msgs/CameraInfo."""
        t = self.t
        k = np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], dtype=np.float64)
        p = np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], dtype=np.float64)
        return t["sensor_msgs/msg/CameraInfo"](
            header=self.header(seconds, frame_id),
            height=height,
            width=width,
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=k,
            r=np.eye(3).reshape(-1),
            p=p,
            binning_x=0,
            binning_y=0,
            roi=t["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        )


class BagWriter:
    """Writes messages to a new ROS 2 bag (MCAP by default), registering topics on first use.

    Use as a context manager; `write(topic, seconds, msg)` stores msg with receive time
    `seconds`. Latched topics (e.g. /tf_static) are offered transient_local.
    """

    def __init__(
        self,
        path: str | Path,
        store: Typestore | None = None,
        storage: str = "mcap",
        latched: tuple[str, ...] = ("/tf_static",),
    ) -> None:
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}.get(storage)
        if plugin is None:
            raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
        self.store = store or typestore()
        self._writer = Writer(Path(path), version=9, storage_plugin=plugin)
        self._connections: dict[str, Connection] = {}
        self._latched = set(latched)

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def write(self, topic: str, seconds: float, msg: Any) -> None:
        conn = self._connections.get(topic)
        if conn is None:
            qos = (_LATCHED_QOS,) if topic in self._latched else ()
            conn = self._writer.add_connection(
                topic, msg.__msgtype__, typestore=self.store, offered_qos_profiles=qos
            )
            self._connections[topic] = conn
        data = self.store.serialize_cdr(msg, msg.__msgtype__)
        self._writer.write(conn, nanoseconds(seconds), data)

    def write_raw(self, topic: str, msgtype: str, seconds: float, data: bytes) -> None:
        """Write already-serialised (possibly deliberately corrupt) bytes."""
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store)
            self._connections[topic] = conn
        self._writer.write(conn, nanoseconds(seconds), data)


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a rotation by yaw radians about +z."""
    return (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
