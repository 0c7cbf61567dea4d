"""Trajectory tokens: bounds, round trips within the documented worst case, released presets."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alpamayo_ros.core.tokens import BinLayout, ControlTokenizer, HistoryDeltaTokenizer, TokenError


@pytest.mark.parametrize("layout", [BinLayout(-1.0, 3.0, 101), BinLayout(-0.3, 0.3, 500, mu=50.0)])
def test_levels_span_the_range_and_increase(layout):
    levels = layout.levels
    assert levels[0] == pytest.approx(layout.low) and levels[-1] == pytest.approx(layout.high)
    assert np.all(np.diff(levels) > 0)


def test_uniform_worst_case_is_half_a_step():
    layout = BinLayout(-10.0, 10.0, 3000)
    assert layout.max_error == pytest.approx(10.0 / 2999)


def test_companded_levels_are_finer_near_the_centre():
    layout = BinLayout(-0.33, 0.33, 2000, mu=50.0, centre=0.0)
    gaps = np.diff(layout.levels)
    assert gaps[len(gaps) // 2] < gaps[0] / 10


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, (64, 2), elements=st.floats(-1.0, 1.0)),
)
def test_control_round_trip_within_documented_bound(unit):
    tok = ControlTokenizer()
    controls = np.stack([unit[:, 0] * 9.8, unit[:, 1] * 0.33], -1)
    ids = tok.encode(controls)
    assert ids.shape == (128,) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < tok.vocab_size
    back = tok.decode(ids)
    a_err, k_err = tok.max_error
    assert np.all(np.abs(back[:, 0] - controls[:, 0]) <= a_err + 1e-12)
    assert np.all(np.abs(back[:, 1] - controls[:, 1]) <= k_err + 1e-12)


def test_encode_picks_the_nearest_level():
    layout = BinLayout(-0.33, 0.33, 64, mu=20.0)
    values = np.linspace(-0.33, 0.33, 997)
    nearest = np.argmin(np.abs(layout.levels[None] - values[:, None]), axis=1)
    np.testing.assert_array_equal(layout.encode(values), nearest)


def test_interleaving_and_channel_offsets():
    tok = ControlTokenizer()
    controls = np.array([[9.8, -0.33], [-9.8, 0.33]])
    ids = tok.encode(controls)
    assert list(ids) == [1999, 2000, 0, 3999]


def test_released_control_tokens_match_the_release_formula():
    tok = ControlTokenizer.released()
    rng = np.random.default_rng(1)
    controls = np.stack([rng.normal(0, 1, 64), rng.normal(0, 0.03, 64)], -1)
    # Release: normalise by mean/std, then round((x + 10) / 20 * 2999), clamp; shared ids.
    mean = np.array([0.029027, 0.00026922])
    std = np.array([0.681043, 0.026148])
    expected = np.clip(np.rint(((controls - mean) / std + 10) / 20 * 2999), 0, 2999)
    np.testing.assert_array_equal(tok.encode(controls), expected.reshape(-1).astype(np.int64))
    assert tok.vocab_size == 3000


def test_out_of_range_values_clip_and_bad_ids_are_refused():
    tok = ControlTokenizer()
    back = tok.decode(tok.encode(np.array([[50.0, 2.0]])))
    np.testing.assert_allclose(back, [[9.8, 0.33]])
    with pytest.raises(TokenError, match="4000"):
        tok.decode(np.array([0, 4000]))
    with pytest.raises(TokenError, match="NaN"):
        tok.encode(np.array([[np.nan, 0.0]]))


def test_history_delta_tokens_reproduce_the_release_quirk_and_round_trip():
    tok = HistoryDeltaTokenizer()
    # 16 poses at 10 m/s ending at the origin: first delta (from the origin) is -15 m.
    x = np.linspace(-15.0, 0.0, 16)
    xyz = np.stack([x, np.zeros(16), np.zeros(16)], -1)
    ids = tok.encode(xyz)
    assert ids.shape == (48,)
    assert ids[0] == 0  # saturated at -4 m, as the released model was trained
    back = tok.decode(ids)
    np.testing.assert_allclose(np.diff(back[:, 0]), 1.0, atol=tok.xy.max_error * 2 + 1e-12)


OFFICIAL_HISTORY = json.loads(
    (Path(__file__).parent / "data" / "official_history_tokens.json").read_text()
)


@pytest.mark.parametrize("case", range(len(OFFICIAL_HISTORY["cases"])))
def test_history_tokens_equal_the_official_tokenizer(case):
    # Reference ids: NVlabs/alpamayo DeltaTrajectoryTokenizer (released defaults), called as
    # tokenize_history_trajectory does, on these float32 histories. Case 0 (standing still:
    # every delta halfway between two bins) and case 5 (deltas on bin edges) fail in float64.
    c = OFFICIAL_HISTORY["cases"][case]
    ids = HistoryDeltaTokenizer().encode(np.array(c["xyz"], dtype=np.float32))
    assert ids.tolist() == c["official_ids"]
