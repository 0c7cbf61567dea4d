"""Discrete trajectory tokens: unicycle controls and ego-history deltas <-> integer token ids.

Two tokenizers, each with a preset matching the released Alpamayo-R1 vocabulary:
  - ControlTokenizer: 64 x (acceleration, curvature) -> 128 tokens, interleaved
    (a_0, kappa_0, a_1, kappa_1, ...). The release uses 3000 uniform levels over
    mean +- 10 std of each control, both channels sharing ids 0..2999.
  - HistoryDeltaTokenizer: 16 past positions -> 48 tokens, the (x, y, z) step deltas,
    1000 levels over +-4 m (x, y) and +-10 m (z), ids offset by 3000 in the release.

Token ids here are local (0-based); the model layer adds the id of the first trajectory
token in the VLM vocabulary.

Bin layout. A BinLayout has `num_levels` representable values spanning [low, high] including
both ends (like the release). With mu > 0 the levels are spaced by mu-law companding around
`centre`: denser near it, which suits curvature (mostly near zero). Worst-case round-trip
error for a value inside [low, high] is half the widest gap between neighbouring levels
(`BinLayout.max_error`); values outside are clipped to the nearest end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class TokenError(ValueError):
    """Token ids or values outside what a tokenizer represents."""


@dataclass(frozen=True)
class BinLayout:
    """Quantisation of one scalar channel.

    low, high: the smallest and largest representable values (channel units).
    num_levels: number of representable values (token ids 0 .. num_levels - 1).
    mu: mu-law companding strength; 0 gives uniform levels.
    centre: where companded levels are densest (channel units), inside (low, high).
    """

    low: float
    high: float
    num_levels: int
    mu: float = 0.0
    centre: float = 0.0

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise TokenError(f"BinLayout needs low < high, got low={self.low}, high={self.high}")
        if self.num_levels < 2:
            raise TokenError(f"BinLayout.num_levels must be >= 2, got {self.num_levels}")
        if self.mu < 0:
            raise TokenError(f"BinLayout.mu must be >= 0, got {self.mu}")
        if self.mu > 0 and not self.low < self.centre < self.high:
            raise TokenError(
                f"BinLayout.centre must lie inside (low, high) = ({self.low}, {self.high}), "
                f"got {self.centre}"
            )

    def _to_unit(self, values: np.ndarray) -> np.ndarray:
        """Channel values -> [0, 1] (companded when mu > 0)."""
        v = np.clip(np.asarray(values, dtype=np.float64), self.low, self.high)
        if self.mu == 0:
            return (v - self.low) / (self.high - self.low)
        # Map each side of the centre to [0, 1] in magnitude, compand, then to [0, 1] overall.
        half = np.where(v >= self.centre, self.high - self.centre, self.centre - self.low)
        m = np.abs(v - self.centre) / half
        c = np.log1p(self.mu * m) / np.log1p(self.mu)
        return 0.5 + 0.5 * np.sign(v - self.centre) * c

    def _from_unit(self, unit: np.ndarray) -> np.ndarray:
        if self.mu == 0:
            return self.low + unit * (self.high - self.low)
        s = 2.0 * unit - 1.0
        m = np.expm1(np.abs(s) * np.log1p(self.mu)) / self.mu
        half = np.where(s >= 0, self.high - self.centre, self.centre - self.low)
        return self.centre + np.sign(s) * m * half

    def encode(self, values: np.ndarray) -> np.ndarray:
        """values (...) -> nearest level's id (...) int64, after clipping to [low, high]."""
        values = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise TokenError("cannot tokenize NaN or infinite values")
        ids = np.rint(self._to_unit(values) * (self.num_levels - 1)).astype(np.int64)
        # Rounding in the companded domain can pick the farther neighbour: fix by comparing.
        ids = np.clip(ids, 0, self.num_levels - 1)
        lo = np.clip(ids - 1, 0, self.num_levels - 1)
        hi = np.clip(ids + 1, 0, self.num_levels - 1)
        cand = np.stack([lo, ids, hi], axis=-1)
        err = np.abs(self.decode(cand) - np.clip(values, self.low, self.high)[..., None])
        return np.take_along_axis(cand, np.argmin(err, axis=-1)[..., None], axis=-1)[..., 0]

    def encode_float32(self, values: np.ndarray) -> np.ndarray:
        """values (...) -> ids (...) int64 with the release's float32 arithmetic (the
        official DeltaTrajectoryTokenizer: round((v - low) / (high - low) * (n - 1)) in the
        input's float32, half to even, then clamped): at bin edges float64 rounds the other
        way. Linear layouts only (mu = 0)."""
        if self.mu != 0:
            raise TokenError("encode_float32 is for linear layouts (mu = 0)")
        v = np.asarray(values, dtype=np.float32)
        if not np.all(np.isfinite(v)):
            raise TokenError("cannot tokenize NaN or infinite values")
        lo, hi = np.float32(self.low), np.float32(self.high)
        unit = (v - lo) / (hi - lo)
        ids = np.rint(unit * np.float32(self.num_levels - 1)).astype(np.int64)
        return np.clip(ids, 0, self.num_levels - 1)

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """ids (...) int -> level values (...) float64."""
        ids = np.asarray(ids)
        if np.any(ids < 0) or np.any(ids >= self.num_levels):
            bad = ids[(ids < 0) | (ids >= self.num_levels)].ravel()[0]
            raise TokenError(f"token id {int(bad)} outside [0, {self.num_levels - 1}]")
        return self._from_unit(ids.astype(np.float64) / (self.num_levels - 1))

    @property
    def levels(self) -> np.ndarray:
        """(num_levels,) all representable values, increasing."""
        return self.decode(np.arange(self.num_levels))

    @property
    def max_error(self) -> float:
        """Worst-case |decode(encode(v)) - v| for v in [low, high]: half the widest gap."""
        return float(0.5 * np.max(np.diff(self.levels)))


# Released action-space normalisation (shared/reference/alpamayo_r1.md).
RELEASED_ACCEL_MEAN, RELEASED_ACCEL_STD = 0.029027, 0.681043
RELEASED_CURVATURE_MEAN, RELEASED_CURVATURE_STD = 0.00026922, 0.026148


@dataclass(frozen=True)
class ControlTokenizer:
    """(T, 2) controls <-> 2T token ids, interleaved per step.

    accel: layout of acceleration (m/s^2); curvature: layout of curvature (1/m).
    accel_offset / curvature_offset: id of each channel's level 0 in the local vocabulary
    (equal offsets share ids between channels, as the release does).
    """

    accel: BinLayout = field(default_factory=lambda: BinLayout(-9.8, 9.8, 2000))
    curvature: BinLayout = field(
        default_factory=lambda: BinLayout(-0.33, 0.33, 2000, mu=50.0, centre=0.0)
    )
    accel_offset: int = 0
    curvature_offset: int = 2000

    @classmethod
    def released(cls) -> ControlTokenizer:
        """The released model's future-trajectory tokens: 3000 levels over mean +- 10 std."""
        return cls(
            accel=BinLayout(
                RELEASED_ACCEL_MEAN - 10 * RELEASED_ACCEL_STD,
                RELEASED_ACCEL_MEAN + 10 * RELEASED_ACCEL_STD,
                3000,
            ),
            curvature=BinLayout(
                RELEASED_CURVATURE_MEAN - 10 * RELEASED_CURVATURE_STD,
                RELEASED_CURVATURE_MEAN + 10 * RELEASED_CURVATURE_STD,
                3000,
            ),
            accel_offset=0,
            curvature_offset=0,
        )

    @property
    def vocab_size(self) -> int:
        """Number of local ids this tokenizer can emit."""
        return max(
            self.accel_offset + self.accel.num_levels,
            self.curvature_offset + self.curvature.num_levels,
        )

    def encode(self, controls: np.ndarray) -> np.ndarray:
        """controls (..., T, 2) [m/s^2, 1/m] -> ids (..., 2T) int64, interleaved."""
        controls = np.asarray(controls, dtype=np.float64)
        if controls.ndim < 2 or controls.shape[-1] != 2:
            raise TokenError(f"controls must have shape (..., T, 2), got {controls.shape}")
        ids = np.stack(
            [
                self.accel.encode(controls[..., 0]) + self.accel_offset,
                self.curvature.encode(controls[..., 1]) + self.curvature_offset,
            ],
            axis=-1,
        )
        return ids.reshape(*controls.shape[:-2], -1)

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """ids (..., 2T) -> controls (..., T, 2)."""
        ids = np.asarray(ids)
        if ids.ndim < 1 or ids.shape[-1] % 2:
            raise TokenError(f"ids must have an even last dimension, got shape {ids.shape}")
        pairs = ids.reshape(*ids.shape[:-1], -1, 2)
        for ch, layout, offset in (
            (0, self.accel, self.accel_offset),
            (1, self.curvature, self.curvature_offset),
        ):
            bad = (pairs[..., ch] < offset) | (pairs[..., ch] >= offset + layout.num_levels)
            if np.any(bad):
                name = ("acceleration", "curvature")[ch]
                raise TokenError(
                    f"token id {int(pairs[..., ch][bad].ravel()[0])} in a {name} position is "
                    f"outside [{offset}, {offset + layout.num_levels - 1}]"
                )
        return np.stack(
            [
                self.accel.decode(pairs[..., 0] - self.accel_offset),
                self.curvature.decode(pairs[..., 1] - self.curvature_offset),
            ],
            axis=-1,
        )

    @property
    def max_error(self) -> tuple[float, float]:
        """Worst-case round-trip error (m/s^2, 1/m) for controls inside the layouts' ranges."""
        return self.accel.max_error, self.curvature.max_error


@dataclass(frozen=True)
class HistoryDeltaTokenizer:
    """Past positions (..., N, 3) <-> 3N ids: per step the (x, y, z) delta from the previous
    position, the first measured from the origin (as the release does, so at t0-1.5 s the
    first x delta saturates at -4 m for speeds above ~2.7 m/s: the model was trained so).

    xy: layout of x and y deltas (metres); z: layout of z deltas (metres).
    """

    xy: BinLayout = field(default_factory=lambda: BinLayout(-4.0, 4.0, 1000))
    z: BinLayout = field(default_factory=lambda: BinLayout(-10.0, 10.0, 1000))

    def encode(self, xyz: np.ndarray) -> np.ndarray:
        """xyz (..., N, 3) metres -> ids (..., 3N) int64, in float32 as the release does (the
        history reaches the official tokenizer as float32; deltas, scaling and rounding
        happen in that dtype)."""
        xyz = np.asarray(xyz, dtype=np.float32)
        if xyz.ndim < 2 or xyz.shape[-1] != 3:
            raise TokenError(f"xyz must have shape (..., N, 3), got {xyz.shape}")
        prev = np.concatenate([np.zeros_like(xyz[..., :1, :]), xyz[..., :-1, :]], axis=-2)
        d = xyz - prev
        ids = np.stack(
            [
                self.xy.encode_float32(d[..., 0]),
                self.xy.encode_float32(d[..., 1]),
                self.z.encode_float32(d[..., 2]),
            ],
            axis=-1,
        )
        return ids.reshape(*xyz.shape[:-2], -1)

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """ids (..., 3N) -> xyz (..., N, 3) metres (cumulative sum of the deltas)."""
        ids = np.asarray(ids)
        if ids.ndim < 1 or ids.shape[-1] % 3:
            raise TokenError(f"ids must have a last dimension divisible by 3, got {ids.shape}")
        t = ids.reshape(*ids.shape[:-1], -1, 3)
        d = np.stack(
            [self.xy.decode(t[..., 0]), self.xy.decode(t[..., 1]), self.z.decode(t[..., 2])],
            axis=-1,
        )
        return np.cumsum(d, axis=-2)
