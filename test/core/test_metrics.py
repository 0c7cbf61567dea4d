"""Open-loop metrics: hand-computed values and horizons beyond the log."""

import numpy as np
import pytest

from alpamayo_ros.core.metrics import displacement_metrics


def test_hand_computed_values():
    true = np.zeros((64, 2))
    pred = np.zeros((2, 64, 2))
    pred[0, :, 1] = 1.0  # 1 m to the side everywhere
    pred[1, :, 0] = np.arange(1, 65) * 0.1  # drifts 0.1 m per step
    m = displacement_metrics(pred, true, dt=0.1, chosen=0)
    assert m["ade_1.0s"] == pytest.approx(1.0) and m["fde_6.4s"] == pytest.approx(1.0)
    # sample 1 over 1 s: mean of 0.1..1.0 = 0.55 < 1.0
    assert m["min_ade_1.0s"] == pytest.approx(0.55)
    assert m["min_ade_6.4s"] == pytest.approx(1.0)  # mean of 0.1..6.4 = 3.25 > 1


def test_zero_for_a_perfect_prediction_and_horizons_beyond_the_log_left_out():
    true = np.cumsum(np.ones((40, 2)), axis=0)
    m = displacement_metrics(np.concatenate([true, np.zeros((24, 2))])[None], true)
    assert set(m) == {
        "ade_1.0s",
        "fde_1.0s",
        "min_ade_1.0s",
        "ade_3.0s",
        "fde_3.0s",
        "min_ade_3.0s",
    }
    assert all(v == 0.0 for v in m.values())
