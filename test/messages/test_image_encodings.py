"""sensor_msgs/Image encodings read without ROS as the live nodes read them with cv_bridge
(rgb8 out): 8- and 16-bit RGB, BGR, with alpha, mono, the four Bayer patterns, YUV 4:2:2.
Here each is checked against the picture it was made from; test_cv_bridge_parity.py checks
them against cv_bridge itself where ROS 2 is installed."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.bag.messages import MessageFactory
from alpamayo_ros.messages.images import _RAW_FORMATS, decode_image
from alpamayo_ros.messages.inputs import BadMessage

H, W = 8, 12


def image_msg(encoding: str, pixels: np.ndarray, step_pad: int = 0, big_endian: bool = False):
    """A sensor_msgs/Image of `pixels` ((H, W, C) uint8 or uint16, already in the encoding's
    channel order), rows padded by step_pad bytes."""
    f = MessageFactory()
    h, w = pixels.shape[:2]
    dtype = ">u2" if big_endian else "<u2"
    raw = pixels.astype(dtype) if pixels.dtype == np.uint16 else pixels
    rows = raw.reshape(h, -1).view(np.uint8).reshape(h, -1)
    rows = np.concatenate([rows, np.full((h, step_pad), 77, np.uint8)], axis=1)
    return f.t["sensor_msgs/msg/Image"](
        header=f.header(100.0, "cam"), height=h, width=w, encoding=encoding,
        is_bigendian=int(big_endian), step=rows.shape[1], data=rows.reshape(-1),
    )  # fmt: skip


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize(("bits", "big_endian"), [(8, False), (16, False), (16, True)])
def test_rgb_bgr_alpha_and_mono_give_the_picture_back(rgb, bits, big_endian):
    wide = (lambda a: a.astype(np.uint16) * 257) if bits == 16 else (lambda a: a)  # 255 -> 65535
    alpha = np.full((H, W, 1), 9, np.uint8)
    cases = {
        f"rgb{bits}": rgb, f"bgr{bits}": rgb[..., ::-1],
        f"rgba{bits}": np.concatenate([rgb, alpha], 2),
        f"bgra{bits}": np.concatenate([rgb[..., ::-1], alpha], 2),
    }  # fmt: skip
    for encoding, pixels in cases.items():
        for pad in (0, 4):
            msg = image_msg(encoding, wide(pixels), pad, big_endian)
            np.testing.assert_array_equal(decode_image(msg, "raw", "/cam"), rgb, encoding)
    gray = rgb[..., :1]
    out = decode_image(image_msg(f"mono{bits}", wide(gray), 2, big_endian), "raw", "/cam")
    np.testing.assert_array_equal(out, np.repeat(gray, 3, axis=2))


def test_16_bits_are_scaled_to_8_and_rounded_as_cv_bridge_scales_them():
    values = np.array([0, 128, 129, 385, 65535, 32768], np.uint16)
    msg = image_msg("mono16", np.repeat(values[None, :, None], 2, axis=0))
    out = decode_image(msg, "raw", "/cam")[0, :, 0]
    assert out.tolist() == [0, 0, 1, 1, 255, 128]  # round(v * 255 / 65535)


@pytest.mark.parametrize(
    ("encoding", "first"),  # the colour of the mosaic's top-left pixel
    [("bayer_rggb", 0), ("bayer_bggr", 2), ("bayer_gbrg", 1), ("bayer_grbg", 1)],
)
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_mosaics_of_a_flat_colour_demosaic_to_that_colour(encoding, first, bits):
    colour = np.array([200, 90, 30])  # R, G, B
    pattern = {"bayer_rggb": "RGGB", "bayer_bggr": "BGGR", "bayer_gbrg": "GBRG",
               "bayer_grbg": "GRBG"}[encoding]  # fmt: skip
    index = {"R": 0, "G": 1, "B": 2}
    mosaic = np.zeros((H, W), np.int64)
    for k, letter in enumerate(pattern):
        mosaic[k // 2 :: 2, k % 2 :: 2] = colour[index[letter]]
    assert index[pattern[0]] == first
    if bits == 16:
        mosaic = mosaic * 257
    pixels = mosaic.astype(np.uint16 if bits == 16 else np.uint8)[..., None]
    out = decode_image(image_msg(f"{encoding}{bits}", pixels), "raw", "/cam")
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to(colour, (H - 4, W - 4, 3)))


@pytest.mark.parametrize(("encoding", "order"), [("yuv422", "UYVY"), ("yuv422_yuy2", "YUYV")])
def test_yuv422_in_both_byte_orders(encoding, order):
    """Neutral chroma gives grey of BT.601 studio range, 1.164 (Y - 16): Y 100 -> 98, 180 ->
    191, alternating as the pixel pairs' Y bytes are read in the encoding's order."""
    ys = np.where(np.arange(W) % 2 == 0, 100, 180).astype(np.uint8)
    pairs = []
    for x in range(0, W, 2):
        y0, y1 = ys[x], ys[x + 1]
        pairs += [128, y0, 128, y1] if order == "UYVY" else [y0, 128, y1, 128]
    row = np.array(pairs, np.uint8).reshape(W, 2)
    out = decode_image(image_msg(encoding, np.repeat(row[None], H, axis=0)), "raw", "/cam")
    np.testing.assert_array_equal(out[0, :, 0], np.where(ys == 100, 98, 191))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_what_cannot_be_read_is_a_bad_message_naming_it(rgb):
    msg = image_msg("rgb8", rgb)
    msg.encoding = "32FC1"
    with pytest.raises(BadMessage, match=r"/cam at 100.000 s: unsupported encoding '32FC1'"):
        decode_image(msg, "raw", "/cam")
    odd = image_msg("yuv422", np.zeros((H, W - 1, 2), np.uint8))
    with pytest.raises(BadMessage, match=r"8x11 yuv422: .*width % 2 == 0"):
        decode_image(odd, "raw", "/cam")
    short = image_msg("mono16", np.zeros((H, W, 1), np.uint16))
    short.data = short.data[:-1]
    with pytest.raises(BadMessage, match=r"191 bytes for 8x12 mono16 \(step 24\)"):
        decode_image(short, "raw", "/cam")
    assert len(_RAW_FORMATS) == 20
