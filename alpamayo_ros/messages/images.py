"""Camera image messages -> (H, W, 3) uint8 RGB arrays (OpenCV): what the planner node's
subscriptions and the offline replay both read, so the replay sees the node's pixels.

sensor_msgs/Image in every encoding cv_bridge turns into rgb8, with its results (tested equal
to cv_bridge under ROS 2), and where cv_bridge's Python path goes wrong, right: a row step
padded by bytes that are not a whole number of pixels (a 1000-pixel rgb8 row in 3008 bytes:
cv_bridge shears every row after the first), big-endian 16-bit images (cv_bridge raises under
NumPy 2). CompressedImage through cv2.imdecode in colour (EXIF orientation applied, grey
JPEGs in three channels).
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
    jpeg_structure_problem,
)
from alpamayo_ros.messages.inputs import BadMessage, stamp_seconds

# sensor_msgs/Image encodings cv_bridge turns into rgb8, and how:
# channels, bits per channel, the OpenCV colour conversion to RGB (None: the channels are
# RGB already, alpha dropped). 16-bit images are converted in 16 bits and then scaled by
# 255 / 65535 and rounded, as cv_bridge does (tested equal to it under ROS 2).
_RAW_FORMATS: dict[str, tuple[int, int, int | None]] = {
    "rgb8": (3, 8, None), "bgr8": (3, 8, cv2.COLOR_BGR2RGB),
    "rgba8": (4, 8, None), "bgra8": (4, 8, cv2.COLOR_BGRA2RGB),
    "mono8": (1, 8, cv2.COLOR_GRAY2RGB),
    "rgb16": (3, 16, None), "bgr16": (3, 16, cv2.COLOR_BGR2RGB),
    "rgba16": (4, 16, None), "bgra16": (4, 16, cv2.COLOR_BGRA2RGB),
    "mono16": (1, 16, cv2.COLOR_GRAY2RGB),
    "bayer_rggb8": (1, 8, cv2.COLOR_BayerBG2RGB), "bayer_bggr8": (1, 8, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, 8, cv2.COLOR_BayerGR2RGB), "bayer_grbg8": (1, 8, cv2.COLOR_BayerGB2RGB),
    "bayer_rggb16": (1, 16, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr16": (1, 16, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg16": (1, 16, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg16": (1, 16, cv2.COLOR_BayerGB2RGB),
    "yuv422": (2, 8, cv2.COLOR_YUV2RGB_UYVY), "yuv422_yuy2": (2, 8, cv2.COLOR_YUV2RGB_YUY2),
}  # fmt: skip


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
        raw = bytes(msg.data)
        if raw[:2] == b"\xff\xd8":  # a JPEG: libjpeg decodes damaged data without a word
            problem = jpeg_structure_problem(raw, max_trailing=None)
            if problem is not None:
                raise BadMessage(f"{topic} at {t:.3f} s: damaged JPEG data: {problem}")
        data = np.frombuffer(raw, dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise BadMessage(f"{topic} at {t:.3f} s: undecodable {msg.format!r} image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    layout = _RAW_FORMATS.get(msg.encoding)
    if layout is None:
        raise BadMessage(
            f"{topic} at {t:.3f} s: unsupported encoding {msg.encoding!r} "
            f"(supported: {sorted(_RAW_FORMATS)})"
        )
    channels, bits, to_rgb = layout
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    try:  # rclpy's array.array and rosbags' ndarray without a copy (6 MB a full-HD frame)
        data = np.frombuffer(msg.data, dtype=np.uint8)
    except TypeError:  # a list of ints
        data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    row = w * channels * bits // 8
    if h * step > data.size or step < row or (bits == 16 and step % 2):
        raise BadMessage(
            f"{topic} at {t:.3f} s: {data.size} bytes for {h}x{w} {msg.encoding} (step {step})"
        )
    rows = data[: h * step].reshape(h, step)[:, :row]
    if bits == 16:
        order = ">" if getattr(msg, "is_bigendian", 0) else "<"
        rows = np.ascontiguousarray(rows).view(f"{order}u2").astype(np.uint16)
    img: np.ndarray = np.ascontiguousarray(rows).reshape(h, w, channels)
    try:
        if to_rgb is None:
            img = img[..., :3]
        else:
            img = cv2.cvtColor(img[..., 0] if channels == 1 else img, to_rgb)
    except cv2.error as err:  # e.g. a YUV 4:2:2 image of odd width
        why = str(err).strip().splitlines()[-1].split("error: ")[-1]
        raise BadMessage(f"{topic} at {t:.3f} s: {h}x{w} {msg.encoding}: {why}") from err
    if bits == 16:  # cv_bridge: convertTo(CV_8U, 255 / 65535), which rounds
        return np.rint(img.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    return np.ascontiguousarray(img)
