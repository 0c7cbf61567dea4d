"""The image reading of the planner node and the replay (messages.images.decode_image,
OpenCV) against cv_bridge's imgmsg_to_cv2(msg, "rgb8"), which the node used before, on
random pictures of every encoding it reads (skipped without ROS 2's cv_bridge).

Rows are padded by whole pixels and little-endian here: cv_bridge's Python path shears an
image whose row padding is not a whole number of pixels (test_image_encodings.py pads rgb8
rows by 4 bytes) and raises on big-endian 16-bit images under NumPy 2; decode_image reads
both right."""

from __future__ import annotations

import numpy as np
import pytest

cv_bridge = pytest.importorskip("cv_bridge")
sensor_msgs = pytest.importorskip("sensor_msgs.msg")

from alpamayo_ros.messages.images import _RAW_FORMATS, decode_image  # noqa: E402


@pytest.mark.parametrize("encoding", sorted(_RAW_FORMATS))
def test_every_encoding_reads_as_cv_bridge_reads_it(encoding):
    channels, bits, _ = _RAW_FORMATS[encoding]
    h, w = 16, 24
    rng = np.random.default_rng(sorted(_RAW_FORMATS).index(encoding))
    dtype = np.dtype("<u2") if bits == 16 else np.dtype(np.uint8)
    pixels = rng.integers(0, 2**bits, size=(h, w, channels)).astype(dtype)
    rows = pixels.reshape(h, -1).view(np.uint8).reshape(h, -1)
    pad = np.zeros((h, 2 * channels * dtype.itemsize), np.uint8)  # two pixels of padding
    rows = np.concatenate([rows, pad], axis=1)
    msg = sensor_msgs.Image(height=h, width=w, encoding=encoding, step=rows.shape[1],
                            is_bigendian=0, data=rows.tobytes())  # fmt: skip
    expected = cv_bridge.CvBridge().imgmsg_to_cv2(msg, desired_encoding="rgb8")
    np.testing.assert_array_equal(decode_image(msg, "raw", "/cam"), expected)


def test_a_jpeg_reads_as_cv_bridge_reads_it():
    import cv2

    rgb = np.random.default_rng(1).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    for picture in (rgb[..., ::-1], rgb[..., 0]):  # colour (BGR to OpenCV) and grey
        ok, data = cv2.imencode(".jpg", picture)
        assert ok
        msg = sensor_msgs.CompressedImage(format="jpeg", data=data.tobytes())
        expected = cv_bridge.CvBridge().compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8")
        np.testing.assert_array_equal(decode_image(msg, "compressed", "/cam"), expected)
