"""The controller's mode changes as the node logs them (control/mode_log.py)."""

import itertools

import pytest

from alpamayo_ros.control.mode_log import ModeLog

LATE = "plan is 0.51 s old (plan_timeout 0.5 s)"


def run(log: ModeLog, ticks) -> list[tuple[float, str]]:
    """(time, mode, reason) per control tick -> the logged lines with their times."""
    out = []
    for now, mode, reason in ticks:
        line = log.update(now, mode, reason)
        if line is not None:
            out.append((now, line.text))
    return out


def test_every_change_is_logged_when_they_are_far_apart():
    lines = run(ModeLog(1.0), [
        (0.0, "stopped", "no plan received"), (2.0, "tracking", ""), (2.02, "tracking", ""),
        (5.0, "stopping", LATE), (5.5, "stopped", LATE),
    ])  # fmt: skip
    assert [t for t, _ in lines] == [0.0, 2.0, 5.0]  # stopped 0.5 s after stopping: waits
    assert lines[0][1] == "controller stopped: no plan received"
    assert lines[1][1] == "controller tracking"
    assert lines[2][1] == f"controller stopping: {LATE}"


def test_a_flapping_controller_logs_a_line_a_second_and_ends_on_its_mode():
    """Plans arriving about plan_timeout old: stopping and tracking alternate at every plan
    (0.1 s) for 3 s, then tracking holds. One line per second, each counting what it left
    out, and the last line is the mode the controller stays in."""
    ticks = [(0.0, "tracking", "")]
    for k in range(1, 31):  # 50 Hz control, the mode changing every 0.1 s
        ticks += [(round(0.1 * k + 0.02 * j, 2), "stopping" if k % 2 else "tracking",
                   LATE if k % 2 else "") for j in range(5)]  # fmt: skip
    ticks += [(round(3.1 + 0.02 * j, 2), "tracking", "") for j in range(100)]
    lines = run(ModeLog(1.0), ticks)
    assert len(lines) <= 5  # against 31 changes logged one by one
    times = [t for t, _ in lines]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert lines[-1][1].startswith("controller tracking")
    assert any("mode changes in the last" in text for _, text in lines[1:])
    assert lines[0] == (0.0, "controller tracking")
    # the first stop came 0.1 s after that line: it waited for the interval, and was then
    # logged with its reason and the count of the changes in between
    assert lines[1][0] == pytest.approx(1.1) and lines[1][1].startswith(
        f"controller stopping: {LATE} ("
    )


def test_a_skipped_count_is_the_changes_not_logged():
    log = ModeLog(1.0)
    assert log.update(0.0, "tracking", "") is not None
    assert log.update(0.1, "stopping", LATE) is None  # within the interval: waits
    assert log.update(0.2, "tracking", "") is None  # back to the logged mode
    assert log.update(0.3, "stopping", LATE) is None
    line = log.update(1.2, "stopping", LATE)  # still stopping once the interval passed
    assert line is not None
    assert line.text == f"controller stopping: {LATE} (2 mode changes in the last 1.2 s not logged)"


def test_forced_and_after_a_backward_jump_a_change_is_logged_at_once():
    log = ModeLog(1.0)
    log.update(10.0, "tracking", "")
    stalled = "clock stalled for 0.5 s (use_sim_time and /clock stopped?)"
    forced = log.update(10.0, "stopping", stalled, force=True)
    assert forced is not None and forced.text == f"controller stopping: {stalled}"
    assert log.update(2.0, "tracking", "") is not None  # the clock jumped back (looped bag)


def test_a_negative_interval_is_refused():
    with pytest.raises(ValueError, match="min_interval"):
        ModeLog(-1.0)
