"""JPEG frames kept encoded: the header read without decoding, crops as a camera crops an
array, and pixels equal to what the replay decodes on arrival."""

import cv2
import numpy as np
import pytest

from alpamayo_ros.core.camera_rig import CameraInput
from alpamayo_ros.core.encoded_image import (
    BadJpeg,
    DamagedJpeg,
    EncodedImage,
    NotDeferrable,
    deferred_jpeg,
    jpeg_header,
    jpeg_structure_problem,
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
    """Its markers already refuse it on arrival (jpeg_structure_problem); a frame that
    passes them and still does not decode is named when its pixels are asked for."""
    good = jpeg(scene())
    data = bytearray(good)
    sos = data.index(b"\xff\xda")
    data[sos:-2] = b"\xff\x01" * ((len(data) - 2 - sos) // 2) + b"\x01" * ((len(data) - sos) % 2)
    with pytest.raises(DamagedJpeg, match=r"marker 0xff01 out of place"):
        EncodedImage.from_jpeg(bytes(data), "/cam at 3.000 s")
    image = EncodedImage(
        bytes(data), EncodedImage.from_jpeg(good).full_size, source="/cam at 3.000 s"
    )
    with pytest.raises(ValueError, match=r"undecodable JPEG /cam at 3\.000 s"):
        np.asarray(image)


def test_the_fingerprint_follows_content_and_crop():
    a = EncodedImage.from_jpeg(jpeg(scene(seed=0)))
    b = EncodedImage.from_jpeg(jpeg(scene(seed=1)))
    assert a.fingerprint() == EncodedImage.from_jpeg(a.data).fingerprint()
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() != a[:, 10:].fingerprint()


def encodings(image: np.ndarray) -> dict[str, bytes]:
    """One image as encoders write it: qualities, progressive, optimised Huffman tables,
    restart intervals, grey, 4:4:4, and Pillow's baseline and progressive."""
    import io

    from PIL import Image

    out = {f"q{q}": jpeg(image, cv2.IMWRITE_JPEG_QUALITY, q) for q in (5, 50, 100)}
    flags = {"progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
             "optimised": [cv2.IMWRITE_JPEG_OPTIMIZE, 1],
             "restart 1": [cv2.IMWRITE_JPEG_RST_INTERVAL, 1],
             "restart 9": [cv2.IMWRITE_JPEG_RST_INTERVAL, 9],
             "444": [cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                     cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]}  # fmt: skip
    for name, flag in flags.items():
        out[name] = cv2.imencode(".jpg", image[:, :, ::-1], flag)[1].tobytes()
    out["grey"] = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))[1].tobytes()
    for kw in ({}, {"progressive": True, "optimize": True}):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", **kw)
        out[f"pillow {kw}"] = buffer.getvalue()
    return out


def test_whole_jpegs_of_every_encoder_setting_pass_the_structure_check():
    """No false alarm: on these, on the 804 frames of the PandaSet and sample bags
    (measured), a damaged-data check must never drop a good frame."""
    for name, data in encodings(scene(240, 320)).items():
        assert jpeg_structure_problem(data) is None, name
        assert EncodedImage.from_jpeg(data).full_size == (240, 320)


def test_a_page_of_garbage_in_the_data_is_refused_naming_the_frame():
    """A 4 KiB page of random bytes in a JPEG's data (what a damaged storage page leaves):
    before, it decoded to smeared blocks without a word (OpenCV, Pillow). Now
    caught every time (misplaced markers). Zeroed data is caught only through the restart
    markers' order (here 1 KiB where the encoder wrote one per 16x16 block: caught unless a
    multiple of 8 of them is lost)."""
    rng = np.random.default_rng(3)
    sources = [encodings(scene(480, 640, seed=k)) for k in range(2)]
    caught = {"garbage": 0, "zeros, restart markers": 0}
    for k in range(200):
        data = bytearray(sources[k % 2]["restart 1" if k % 4 < 2 else "q50"])
        at = int(rng.integers(len(data) // 4, len(data) // 2))
        data[at : at + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        caught["garbage"] += jpeg_structure_problem(bytes(data)) is not None
        zeroed = bytearray(sources[k % 2]["restart 1"])
        zeroed[at : at + 1024] = bytes(1024)
        caught["zeros, restart markers"] += jpeg_structure_problem(bytes(zeroed)) is not None
    assert caught["garbage"] == 200
    assert caught["zeros, restart markers"] > 100
    with pytest.raises(DamagedJpeg, match=r"^/cam at 4\.000 s: damaged JPEG data: "):
        deferred_jpeg(bytes(data), "jpeg", "/cam at 4.000 s")


def test_a_jpeg_damaged_in_its_data_is_a_bad_message_on_arrival():
    """The on-arrival decoder (what the replay and a non-deferred planner use) refuses it
    too, as a BadMessage naming the topic and stamp: counted and skipped."""
    from types import SimpleNamespace

    from alpamayo_ros.messages.images import decode_image
    from alpamayo_ros.messages.inputs import BadMessage

    good = jpeg(scene(240, 320))
    data = bytearray(good)
    data[len(data) // 2 : len(data) // 2 + 512] = (
        np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes()
    )
    stamp = SimpleNamespace(sec=5, nanosec=0)

    def msg(payload: bytes):
        return SimpleNamespace(header=SimpleNamespace(stamp=stamp), format="jpeg", data=payload)

    assert decode_image(msg(good), "compressed", "/cam").shape == (240, 320, 3)
    assert decode_image(msg(good + bytes(100)), "compressed", "/cam").shape == (240, 320, 3)
    with pytest.raises(BadMessage, match=r"/cam at 5\.000 s: damaged JPEG data: "):
        decode_image(msg(bytes(data)), "compressed", "/cam")
    with pytest.raises(BadMessage, match=r"the data ends inside the scan .* \(cut short\?\)"):
        decode_image(msg(good[: len(good) * 2 // 3]), "compressed", "/cam")
