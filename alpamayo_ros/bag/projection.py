"""Camera calibration from a bag (camera_info + /tf_static) and projection of ego-frame
points into the image, for drawing trajectories on camera frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import transforms3d.quaternions as tq

from alpamayo_ros.bag.reader import BadMessage, Bag, BagError
from alpamayo_ros.core.rig_suggestion import CameraView, yaw_and_fov


@dataclass(frozen=True)
class CameraCalibration:
    """Pinhole camera: K (3, 3) pixels; p_optical = R (p_base - t), R (3, 3), t (3,) metres
    (the camera's optical frame: z forward, x right, y down; base_link: REP-103)."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    def project(self, points_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) metres in base_link -> pixels (N, 2) and a mask of points in front of the
        camera (depth > 0.5 m) that land inside the image."""
        p = (np.asarray(points_base, dtype=np.float64) - self.t) @ self.R.T
        z = p[:, 2]
        uvw = p @ self.K.T
        uv = uvw[:, :2] / np.maximum(uvw[:, 2:3], 1e-6)
        inside = (
            (uv[:, 0] >= 0) & (uv[:, 0] < self.width) & (uv[:, 1] >= 0) & (uv[:, 1] < self.height)
        )
        return uv, (z > 0.5) & inside


def camera_info_topic(image_topic: str) -> str:
    """/camera/front/image_raw/compressed -> /camera/front/camera_info."""
    base = image_topic
    for suffix in ("/compressed", "/image_raw", "/image_rect", "/image"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base}/camera_info"


def read_calibrations(bag: Bag, base_frame: str = "base_link") -> dict[str, CameraCalibration]:
    """Image topic -> calibration, for every image topic with a camera_info and a static
    transform from base_frame to the camera's frame. Missing pieces: the topic is absent."""
    statics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "/tf_static" in bag.topics:
        for _, _, msg in bag.messages(["/tf_static"]):
            if isinstance(msg, BadMessage):
                continue
            for tr in msg.transforms:
                if tr.header.frame_id.lstrip("/") != base_frame:
                    continue
                q = tr.transform.rotation
                v = tr.transform.translation
                rot = tq.quat2mat((q.w, q.x, q.y, q.z))  # child axes in the parent frame
                statics[tr.child_frame_id.lstrip("/")] = (rot.T, np.array([v.x, v.y, v.z]))
    infos = {}
    wanted = {
        camera_info_topic(t): t
        for t, ty in bag.topics.items()
        if ty in ("sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/Image")
    }
    present = [t for t in wanted if t in bag.topics]
    for topic, _, msg in bag.messages(present):
        if topic in infos or isinstance(msg, BadMessage):
            continue
        infos[topic] = msg
        if len(infos) == len(present):
            break
    out = {}
    for info_topic, msg in infos.items():
        frame = msg.header.frame_id.lstrip("/")
        if frame not in statics:
            continue
        R, t = statics[frame]
        out[wanted[info_topic]] = CameraCalibration(
            K=np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
            R=R,
            t=t,
            width=int(msg.width),
            height=int(msg.height),
        )
    return out


def camera_views(bag: Bag, base_frame: str = "base_link") -> list[CameraView]:
    """Heading and field of view of every calibrated image topic (camera_info and a static
    transform from base_frame), for a rig suggestion. BagError when there is none."""
    views = []
    for topic, calib in sorted(read_calibrations(bag, base_frame).items()):
        yaw, fov = yaw_and_fov(calib.R.tolist(), float(calib.K[0, 0]), calib.width)
        raw = bag.topics[topic] == "sensor_msgs/msg/Image"
        encoding = "raw" if raw else "compressed"
        views.append(CameraView(topic, yaw, fov, encoding, calib.width, calib.height))
    if not views:
        raise BagError(
            "no image topic with a camera_info and a /tf_static transform from "
            f"{base_frame!r}: a rig cannot be suggested (write one from config/cameras.yaml)"
        )
    return views
