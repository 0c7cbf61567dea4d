"""Open-loop trajectory metrics against what the driver did (the logged future)."""

from __future__ import annotations

import numpy as np

HORIZONS: tuple[float, ...] = (1.0, 3.0, 6.4)


def constant_velocity_xy(v0: float, num_steps: int = 64, dt: float = 0.1) -> np.ndarray:
    """(T, 2) m: straight ahead at v0 m/s (the baseline a planner has to beat)."""
    t = dt * np.arange(1, num_steps + 1)
    return np.stack([v0 * t, np.zeros(num_steps)], axis=1)


def recent_controls(
    xyz: np.ndarray, rot: np.ndarray, dt: float = 0.1, window: float = 1.0
) -> tuple[float, float]:
    """(acceleration m/s^2, curvature 1/m) the ego history shows over its last `window` s:
    the change of the chord speed, and the heading change over the distance travelled (0
    below 0.5 m of travel, where heading noise dominates).

    xyz: (N, 3) metres, rot: (N, 3, 3), dt apart, ending at t0 (EgoHistory)."""
    xy = np.asarray(xyz, dtype=np.float64)[:, :2]
    n = min(round(window / dt), len(xy) - 2)
    if n < 1:
        return 0.0, 0.0
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1)  # (N-1,) metres per dt
    v_end, v_start = step[-1] / dt, step[-1 - n] / dt
    accel = (v_end - v_start) / (n * dt)
    r = np.asarray(rot, dtype=np.float64)
    yaw = np.unwrap(np.arctan2(r[:, 1, 0], r[:, 0, 0]))
    travelled = float(step[-n:].sum())
    curvature = (yaw[-1] - yaw[-1 - n]) / travelled if travelled > 0.5 else 0.0
    return float(accel), float(curvature)


def constant_controls_xy(
    v0: float, accel: float, curvature: float, num_steps: int = 64, dt: float = 0.1
) -> np.ndarray:
    """(T, 2) m: the path at constant acceleration and curvature from v0 m/s, the speed
    held at 0 once it reaches it (a car braking stops; it does not reverse)."""
    x = y = heading = 0.0
    v = max(float(v0), 0.0)
    out = np.zeros((num_steps, 2))
    for k in range(num_steps):
        v_next = v + accel * dt
        if v_next >= 0.0:
            mean_v = 0.5 * (v + v_next)
        else:  # stops within the step, after v / -accel s
            mean_v, v_next = 0.5 * v * (v / -accel) / dt, 0.0
        heading_next = heading + curvature * mean_v * dt
        mid = 0.5 * (heading + heading_next)
        x += mean_v * dt * np.cos(mid)
        y += mean_v * dt * np.sin(mid)
        v, heading = v_next, heading_next
        out[k] = (x, y)
    return out


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
