"""A camera frame kept as its JPEG bytes, so the model can decode it on its own device.

Decoding 16 full-HD JPEGs is ~100 ms of one CPU core; a GPU decodes them in a few ms and
uploads ~20x fewer bytes. An `EncodedImage` stands where the buffers and requests hold a
decoded (H, W, 3) uint8 RGB array: it has that array's `shape`, `ndim` and `dtype`, crops with
the same indexing (`image[y0:y1, x0:x1]`, as a camera's crop), and decodes on the CPU
(OpenCV, as the replay decodes) when something asks for its pixels (`np.asarray`). The
model's preprocessing decodes all of a plan's encoded frames in one batch on its device
(alpamayo_ros.model.frame_decoding).

Only what a decoder of either kind reads the same is accepted: baseline or progressive
Huffman JPEG, 8-bit, 1 or 3 components, ending with its end-of-image marker, no EXIF segment
(OpenCV would apply its orientation,
a GPU decoder would not). `EncodedImage.from_jpeg` says why it refused; the caller then
decodes on arrival as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_SIZE, MAX_SIZE = 16, 16384  # pixels: a camera image's width or height


def frame_size_problem(shape: tuple[int, ...]) -> str | None:
    """Why an image of (H, W, ...) `shape` cannot be a camera frame (None when it can):
    width and height of MIN_SIZE to MAX_SIZE pixels."""
    h, w = int(shape[0]), int(shape[1])
    if MIN_SIZE <= h <= MAX_SIZE and MIN_SIZE <= w <= MAX_SIZE:
        return None
    return f"a {w}x{h} image: camera images are {MIN_SIZE} to {MAX_SIZE} pixels wide and high"


# Start-of-frame markers of Huffman-coded JPEG: baseline, extended, progressive.
_SOF_HUFFMAN = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
# Other start-of-frame markers (lossless, arithmetic, hierarchical): not deferred.
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length field


class NotDeferrable(ValueError):
    """JPEG bytes whose header is valid but that are better decoded on arrival (the reason
    says why), or bytes that are not a JPEG at all."""


class BadJpeg(ValueError):
    """Bytes that start like a JPEG but whose header is broken (truncated, bad segment)."""


def jpeg_header(data: bytes) -> tuple[int, int, int, str]:
    """(height, width, components, kind) from a JPEG's header segments, without decoding.
    Raises NotDeferrable for what is not a deferrable JPEG and BadJpeg for a broken header."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise NotDeferrable("not a JPEG (no start-of-image marker)")
    pos, n = 2, len(data)
    while True:
        if pos + 1 >= n:
            raise BadJpeg(f"header truncated at byte {pos} of {n} (no start-of-frame segment)")
        if data[pos] != 0xFF:
            raise BadJpeg(f"byte {pos}: expected a marker, got 0x{data[pos]:02x}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            raise BadJpeg(f"byte {pos}: {'end of image' if marker == 0xD9 else 'scan'} "
                          "before any start-of-frame segment")  # fmt: skip
        if pos + 4 > n:
            raise BadJpeg(f"segment 0xff{marker:02x} at byte {pos} truncated")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > n:
            raise BadJpeg(f"segment 0xff{marker:02x} at byte {pos}: length {length} past the end")
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and body[:6] == b"Exif\x00\x00":
            raise NotDeferrable("EXIF segment (its orientation would be applied by OpenCV only)")
        if marker in _SOF_OTHER:
            raise NotDeferrable(
                f"start-of-frame 0xff{marker:02x} (not Huffman baseline/progressive)"
            )
        if marker in _SOF_HUFFMAN:
            if len(body) < 6:
                raise BadJpeg(f"start-of-frame segment at byte {pos} too short ({len(body)} bytes)")
            precision = body[0]
            height = int.from_bytes(body[1:3], "big")
            width = int.from_bytes(body[3:5], "big")
            components = body[5]
            if precision != 8:
                raise NotDeferrable(f"{precision}-bit samples")
            if components not in (1, 3):
                raise NotDeferrable(f"{components} colour components")
            if height == 0 or width == 0:
                raise BadJpeg(f"start-of-frame gives a {width}x{height} image")
            return height, width, components, _SOF_HUFFMAN[marker]
        pos += 2 + length


def deferred_jpeg(data: bytes, fmt: str = "jpeg", source: str = "") -> EncodedImage | None:
    """A sensor_msgs/CompressedImage's bytes and format as an EncodedImage for the model to
    decode, or None where it should be decoded on arrival (PNG, or a JPEG that is not
    deferrable). Raises BadJpeg, naming `source`, for a JPEG whose header is broken."""
    if "png" in fmt.lower():
        return None
    try:
        return EncodedImage.from_jpeg(data, source)
    except NotDeferrable:
        return None
    except BadJpeg as err:
        raise BadJpeg(f"{source + ': ' if source else ''}broken JPEG header: {err}") from err


class EncodedImage:
    """A JPEG camera frame, optionally cropped, standing in for its (H, W, 3) uint8 RGB array.

    data: the JPEG file's bytes. full_size: (height, width) pixels of the whole image.
    box: (y0, y1, x0, x1) pixels of the part kept (a camera's crop); the whole image if None.
    source: what the frame is, for error messages (topic and stamp).
    """

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(
        self,
        data: bytes,
        full_size: tuple[int, int],
        box: tuple[int, int, int, int] | None = None,
        source: str = "",
    ) -> None:
        h, w = full_size
        y0, y1, x0, x1 = box if box is not None else (0, h, 0, w)
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"EncodedImage box {(y0, y1, x0, x1)} is not inside {w}x{h}")
        self.data = bytes(data)
        self.full_size = (int(h), int(w))
        self.box = (int(y0), int(y1), int(x0), int(x1))
        self.source = source
        self._pixels: np.ndarray | None = None

    @classmethod
    def from_jpeg(cls, data: bytes, source: str = "") -> EncodedImage:
        """The frame of JPEG bytes, its size read from the header. Raises NotDeferrable or
        BadJpeg (see jpeg_header)."""
        data = bytes(data)
        height, width, _, _ = jpeg_header(data)
        if b"\xff\xd9" not in data[-16:]:
            # truncated in transit, or bytes after the image: left to the arrival decoder,
            # which fails or copes as it always did
            raise NotDeferrable("no end-of-image marker at the end of the data")
        return cls(data, (height, width), source=source)

    @property
    def shape(self) -> tuple[int, int, int]:
        y0, y1, x0, x1 = self.box
        return (y1 - y0, x1 - x0, 3)

    def __getitem__(self, key: Any) -> EncodedImage:
        """A crop, as numpy slices an (H, W, 3) array: image[y0:y1, x0:x1] (steps of 1)."""
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 2 or not all(isinstance(k, slice) for k in key):
            raise TypeError(f"an EncodedImage crops with [y0:y1, x0:x1] slices only, got {key!r}")
        y0, y1, x0, x1 = self.box
        bounds = [(y0, y1), (x0, x1)]
        for axis, k in enumerate(key):
            if k.step not in (None, 1):
                raise TypeError(f"an EncodedImage crops with step 1 only, got {k!r}")
            lo, hi = bounds[axis]
            start, stop, _ = k.indices(hi - lo)
            bounds[axis] = (lo + start, lo + max(start, stop))
        (ny0, ny1), (nx0, nx1) = bounds
        return EncodedImage(self.data, self.full_size, (ny0, ny1, nx0, nx1), self.source)

    def fingerprint(self) -> bytes:
        """What identifies the frame's content cheaply: its size, box and a sample of bytes."""
        step = max(1, len(self.data) // 256)
        return repr((len(self.data), self.box)).encode() + self.data[::step]

    def decode(self) -> np.ndarray:
        """(h, w, 3) uint8 RGB of the box, decoded on the CPU with OpenCV (once; kept).
        Raises ValueError naming the frame if OpenCV cannot decode it."""
        if self._pixels is None:
            import cv2  # the replay's decoder; imported only when pixels are asked for

            bgr = cv2.imdecode(np.frombuffer(self.data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None or bgr.shape[:2] != self.full_size:
                got = None if bgr is None else bgr.shape
                raise ValueError(f"undecodable JPEG {self.source or ''} ({len(self.data)} "
                                 f"bytes, header {self.full_size}, decoded {got})")  # fmt: skip
            y0, y1, x0, x1 = self.box
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            self._pixels = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        return self._pixels

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        pixels = self.decode()
        return pixels if dtype is None else pixels.astype(dtype)

    def __repr__(self) -> str:
        h, w, _ = self.shape
        return f"EncodedImage({w}x{h} of {self.full_size[1]}x{self.full_size[0]}, " \
               f"{len(self.data)} bytes{', ' + self.source if self.source else ''})"  # fmt: skip


# A camera frame as buffers, requests and the model take it: (H, W, 3) uint8 RGB, decoded or not.
CameraFrame = np.ndarray | EncodedImage
