"""Open-loop trajectory metrics against what the driver did (the logged future)."""

from __future__ import annotations

import numpy as np

HORIZONS: tuple[float, ...] = (1.0, 3.0, 6.4)


def constant_velocity_xy(v0: float, num_steps: int = 64, dt: float = 0.1) -> np.ndarray:
    """(T, 2) m: straight ahead at v0 m/s (the baseline a planner has to beat)."""
    t = dt * np.arange(1, num_steps + 1)
    return np.stack([v0 * t, np.zeros(num_steps)], axis=1)


def displacement_metrics(
    pred_xy: np.ndarray,
    true_xy: np.ndarray,
    dt: float = 0.1,
    horizons: tuple[float, ...] = HORIZONS,
    chosen: int = 0,
) -> dict[str, float]:
    """ADE, FDE and minADE at each horizon the logged future covers.

    pred_xy: (S, T, 2) metres, S samples (or (T, 2) for one), states at dt, 2 dt, ...;
    true_xy: (K, 2) metres, the logged future at the same times, K <= T (a bag may end
    before the horizon: horizons beyond K dt are left out).
    chosen: the published sample (ADE/FDE); minADE is over all samples.
    Returns e.g. {"ade_1.0s": ..., "fde_1.0s": ..., "min_ade_1.0s": ...}, metres.
    """
    pred = np.asarray(pred_xy, dtype=np.float64)
    if pred.ndim == 2:
        pred = pred[None]
    true = np.asarray(true_xy, dtype=np.float64)
    if pred.shape[-1] != 2 or true.ndim != 2 or true.shape[-1] != 2:
        raise ValueError(
            f"pred_xy must be (S, T, 2) and true_xy (K, 2), got {pred.shape}, {true.shape}"
        )
    out: dict[str, float] = {}
    for h in horizons:
        n = round(h / dt)
        if n < 1 or n > min(true.shape[0], pred.shape[1]):
            continue
        err = np.linalg.norm(pred[:, :n] - true[None, :n], axis=-1)  # (S, n)
        out[f"ade_{h:.1f}s"] = float(err[chosen].mean())
        out[f"fde_{h:.1f}s"] = float(err[chosen, -1])
        out[f"min_ade_{h:.1f}s"] = float(err.mean(axis=1).min())
    return out
