"""Image messages -> RGB arrays (OpenCV), without cv_bridge: for offline replay.

The live nodes use cv_bridge; both end in the same (H, W, 3) uint8 RGB array.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from alpamayo_ros.core.encoded_image import (
    BadJpeg,
    CameraFrame,
    deferred_jpeg,
    frame_size_problem,
)
from alpamayo_ros.messages.inputs import BadMessage, stamp_seconds

_RAW_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def intake_image(msg: Any, encoding: str, topic: str, defer_jpeg: bool = False) -> CameraFrame:
    """decode_image, or with defer_jpeg a JPEG CompressedImage kept as an EncodedImage for
    the model to decode on its device (its header checked: BadMessage if broken). An image
    too small or too large to be a camera frame (frame_size_problem) is a BadMessage."""
    image: CameraFrame | None = None
    if defer_jpeg and encoding == "compressed":
        t = stamp_seconds(msg.header.stamp)
        try:
            image = deferred_jpeg(bytes(msg.data), str(msg.format), f"{topic} at {t:.3f} s")
        except BadJpeg as err:
            raise BadMessage(str(err)) from err
    if image is None:
        image = decode_image(msg, encoding, topic)
    problem = frame_size_problem(image.shape)
    if problem is not None:
        raise BadMessage(f"{topic} at {stamp_seconds(msg.header.stamp):.3f} s: {problem}")
    return image


def decode_image(msg: Any, encoding: str, topic: str) -> np.ndarray:
    """sensor_msgs/CompressedImage (encoding "compressed") or sensor_msgs/Image ("raw")
    -> (H, W, 3) uint8 RGB. Raises BadMessage naming the topic, stamp and problem."""
    t = stamp_seconds(msg.header.stamp)
    if encoding == "compressed":
        data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise BadMessage(f"{topic} at {t:.3f} s: undecodable {msg.format!r} image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    channels = _RAW_CHANNELS.get(msg.encoding)
    if channels is None:
        raise BadMessage(
            f"{topic} at {t:.3f} s: unsupported encoding {msg.encoding!r} "
            f"(supported: {sorted(_RAW_CHANNELS)})"
        )
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if h * step > data.size or step < w * channels:
        raise BadMessage(
            f"{topic} at {t:.3f} s: {data.size} bytes for {h}x{w} {msg.encoding} (step {step})"
        )
    img = data[: h * step].reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if msg.encoding == "mono8":
        return np.repeat(img, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        return np.ascontiguousarray(img[..., 2::-1])
    return np.ascontiguousarray(img[..., :3])
