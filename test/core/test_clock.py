"""The clock watch: backward jumps, stalls measured in wall time, stamps ahead of the clock."""

import pytest

from alpamayo_ros.core.clock import ClockSettings, ClockWatch


def test_a_backward_jump_is_reported_once_and_followed():
    watch = ClockWatch(ClockSettings(jump_tolerance=0.5))
    for k in range(30):
        assert watch.observe(0.1 * k, wall=100 + 0.1 * k) is None
    jump = watch.observe(0.0, wall=103.0)  # the bag starts again
    assert jump is not None and jump.back == pytest.approx(2.9)
    assert "jumped back 2.90 s" in str(jump)
    assert watch.observe(0.1, wall=103.1) is None and watch.jumps == 1 and watch.now == 0.1


def test_small_backward_steps_are_not_jumps():
    watch = ClockWatch(ClockSettings(jump_tolerance=0.5))
    watch.observe(10.0, wall=0.0)
    assert watch.observe(9.8, wall=0.1) is None and watch.now == 10.0


def test_a_stalled_clock_is_measured_in_wall_time_and_extrapolated():
    watch = ClockWatch(ClockSettings(stall_after=1.0))
    assert watch.stalled_for(5.0) == 0.0  # nothing seen yet
    watch.observe(42.0, wall=10.0)
    watch.observe(42.0, wall=10.5)  # /clock stopped: the same time again
    assert watch.stalled_for(11.5) == pytest.approx(1.5) and watch.stalled(11.5)
    assert watch.extrapolated(11.5) == pytest.approx(43.5)
    watch.observe(42.1, wall=11.6)
    assert not watch.stalled(11.7)


def test_stamps_ahead_of_the_clock_beyond_the_tolerance():
    watch = ClockWatch(ClockSettings(future_tolerance=0.5))
    assert watch.ahead(10.4, now=10.0) == 0.0
    assert watch.ahead(16.0, now=10.0) == pytest.approx(5.5)


def test_settings_name_the_field():
    with pytest.raises(ValueError, match="stall_after must be > 0 s, got 0"):
        ClockSettings(stall_after=0)
