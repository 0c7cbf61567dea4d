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


class DamagedJpeg(BadJpeg):
    """JPEG bytes whose header is valid but whose segments or entropy-coded data are not."""


def jpeg_structure_problem(data: bytes, max_trailing: int | None = 14) -> str | None:
    """Why a JPEG's marker structure is broken, or None when it is whole: each segment's
    length inside the file; in each scan's entropy-coded data every 0xff followed by a
    stuffed 0x00, a fill 0xff or a restart marker in its order (RST0..RST7, again and
    again) until the marker that ends the scan; an end-of-image marker at the end (up to
    `max_trailing` bytes after it, as cameras pad; None: any number).

    Decoders do not say so: libjpeg (OpenCV, Pillow) at most warns on stderr, and a frame
    with a page of garbage in its data decodes to smeared blocks (measured; nvJPEG, the
    deferred path's GPU decoder, not tried). A block of random
    bytes holds a misplaced marker with near certainty (each byte is 0xff with chance 1/256
    and 247 of the 256 bytes after it are not allowed there: a 4 KiB page escapes with
    chance e^-15); zeroed data is seen only where the encoder wrote restart markers (unless
    a multiple of 8 of them is lost); a few flipped bits inside the data mostly stay unseen
    (2 of 100 caught, measured): the markers cannot tell."""
    buf = np.frombuffer(data, dtype=np.uint8)
    n = len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return "no start-of-image marker"
    pos = 2
    while True:
        if pos + 1 >= n:
            return f"no end-of-image marker: the data ends at byte {n}"
        if buf[pos] != 0xFF:
            return f"byte {pos}: 0x{buf[pos]:02x} where a marker should be"
        marker = int(buf[pos + 1])
        if marker == 0xFF:  # fill
            pos += 1
            continue
        if marker == 0xD9:
            after = n - (pos + 2)
            if max_trailing is None or after <= max_trailing:
                return None
            return f"{after} bytes after its end-of-image marker"
        if marker < 0xC0 or 0xD0 <= marker <= 0xD8:
            return f"byte {pos}: marker 0xff{marker:02x} out of place"
        if pos + 4 > n:
            return f"segment 0xff{marker:02x} at byte {pos} cut short"
        length = int(buf[pos + 2]) << 8 | int(buf[pos + 3])
        if length < 2 or pos + 2 + length > n:
            return f"segment 0xff{marker:02x} at byte {pos}: length {length} past the end"
        pos += 2 + length
        if marker == 0xDA:  # a scan: entropy-coded data up to the next marker
            pos, problem = _scan_end(buf, pos)
            if problem:
                return problem


def _scan_end(buf: np.ndarray, start: int) -> tuple[int, str | None]:
    """Where the entropy-coded data from `start` ends (the 0xff of the marker after it),
    and what is wrong inside it (None: stuffing, fill and restart markers in order)."""
    ff = np.flatnonzero(buf[start:-1] == 0xFF) + start
    after = buf[ff + 1]
    inside = (after == 0x00) | (after == 0xFF) | ((after >= 0xD0) & (after <= 0xD7))
    ends = np.flatnonzero(~inside)
    if not len(ends):
        return len(buf), f"the data ends inside the scan at byte {start} (cut short?)"
    end = int(ff[ends[0]])
    restarts = after[: ends[0]]
    restarts = restarts[(restarts >= 0xD0) & (restarts <= 0xD7)].astype(np.int64) - 0xD0
    wrong = np.flatnonzero(restarts != np.arange(len(restarts)) % 8)
    if len(wrong):
        k = int(wrong[0])
        return end, f"restart marker {k} of the scan at byte {start} is RST{restarts[k]}"
    return end, None


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
    except DamagedJpeg as err:
        raise DamagedJpeg(f"{source + ': ' if source else ''}damaged JPEG data: {err}") from err
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
        problem = jpeg_structure_problem(data)
        if problem is not None:
            raise DamagedJpeg(problem)
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
