"""JPEG frames kept encoded: the header read without decoding, crops as a camera crops an
array, and pixels equal to what the replay decodes on arrival."""

import cv2
import numpy as np
import pytest

from alpamayo_ros.core.camera_rig import CameraInput
from alpamayo_ros.core.encoded_image import (
    BadJpeg,
    EncodedImage,
    NotDeferrable,
    deferred_jpeg,
    jpeg_header,
)


def scene(h=120, w=200, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (9, 9), 3)


def jpeg(img: np.ndarray, *flags: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, list(flags))
    assert ok
    return buf.tobytes()


def arrival_decode(data: bytes) -> np.ndarray:
    """What messages.images.decode_image does with a CompressedImage."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize(
    ("flags", "components", "kind"),
    [((), 3, "baseline"), ((cv2.IMWRITE_JPEG_PROGRESSIVE, 1), 3, "progressive")],
)
def test_the_header_gives_size_components_and_kind(flags, components, kind):
    assert jpeg_header(jpeg(scene(120, 200), *flags)) == (120, 200, components, kind)
    assert jpeg_header(jpeg(scene(120, 200)[..., 0])) == (120, 200, 1, "baseline")


def test_pixels_and_crops_equal_the_arrival_decoder():
    data = jpeg(scene(120, 200))
    image = EncodedImage.from_jpeg(data, "/cam at 1.000 s")
    assert image.shape == (120, 200, 3) and image.ndim == 3 and image.dtype == np.uint8
    full = arrival_decode(data)
    assert np.array_equal(np.asarray(image), full)
    cam = CameraInput("front", "/cam", crop=(0.25, 0.1, 0.8, 0.9))
    crop = cam.crop_image(image)
    assert isinstance(crop, EncodedImage) and crop.data is image.data
    assert np.array_equal(np.asarray(crop), cam.crop_image(full))
    # a crop of a crop, and open-ended slices, as numpy
    assert np.array_equal(np.asarray(crop[5:, :-7]), cam.crop_image(full)[5:, :-7])
    gray = EncodedImage.from_jpeg(jpeg(scene()[..., 1]))
    assert np.asarray(gray).shape == (120, 200, 3)


def test_crops_are_slices_of_step_one_inside_the_image():
    image = EncodedImage.from_jpeg(jpeg(scene()))
    with pytest.raises(TypeError, match="step 1"):
        image[::2, :]
    with pytest.raises(TypeError, match="slices only"):
        image[3]
    with pytest.raises(ValueError, match="not inside"):
        image[50:50, :]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a JPEG"),
        (jpeg(scene())[:-2] + b"\0" * 20, "end-of-image"),
    ],
)
def test_what_is_not_deferrable_is_decoded_on_arrival(data, reason):
    with pytest.raises(NotDeferrable, match=reason):
        EncodedImage.from_jpeg(data)
    assert deferred_jpeg(data, "jpeg") is None


def test_exif_and_png_formats_are_decoded_on_arrival():
    data = jpeg(scene())
    exif = data[:2] + b"\xff\xe1\x00\x10Exif\x00\x00" + b"\0" * 8 + data[2:]
    assert jpeg_header(data)
    with pytest.raises(NotDeferrable, match="EXIF"):
        jpeg_header(exif)
    assert deferred_jpeg(exif) is None
    assert deferred_jpeg(data, "png") is None
    assert isinstance(deferred_jpeg(data, "rgb8; jpeg compressed bgr8"), EncodedImage)


def test_a_broken_header_is_an_error_naming_the_frame():
    data = jpeg(scene())
    with pytest.raises(BadJpeg, match=r"/cam at 2\.000 s: broken JPEG header: .*past the end"):
        deferred_jpeg(data[:40], "jpeg", "/cam at 2.000 s")
    with pytest.raises(BadJpeg, match="expected a marker"):
        jpeg_header(data[:2] + b"\x00\x01" + data[4:])


def test_an_undecodable_body_is_an_error_naming_the_frame():
    data = bytearray(jpeg(scene()))
    sos = data.index(b"\xff\xda")
    data[sos:-2] = b"\xff\x01" * ((len(data) - 2 - sos) // 2) + b"\x01" * ((len(data) - sos) % 2)
    image = EncodedImage.from_jpeg(bytes(data), "/cam at 3.000 s")
    with pytest.raises(ValueError, match=r"undecodable JPEG /cam at 3\.000 s"):
        np.asarray(image)


def test_the_fingerprint_follows_content_and_crop():
    a = EncodedImage.from_jpeg(jpeg(scene(seed=0)))
    b = EncodedImage.from_jpeg(jpeg(scene(seed=1)))
    assert a.fingerprint() == EncodedImage.from_jpeg(a.data).fingerprint()
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() != a[:, 10:].fingerprint()
