"""The node's clock as a thing that can fail: time that jumps back (a bag played again, a
simulator reset), time that stops (/clock gone), and input stamps ahead of it.

ROS time with use_sim_time follows /clock; wall time (time.monotonic) always moves. A node
feeds both to a ClockWatch at every callback that reads the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Seconds a plan's t0 may lie ahead of the clock that reads it: /clock from `ros2 bag play`
# comes at 40 Hz (25 ms steps) and sensor clocks drift a little. The planner never stamps a
# model plan further ahead (it plans on an older complete input set instead), and the
# controller never follows one that is (its age would be negative).
PLAN_AHEAD_TOLERANCE = 0.05


@dataclass(frozen=True)
class TimeJump:
    """The clock went back: from `previous` to `now` (seconds of the node's clock)."""

    previous: float
    now: float

    @property
    def back(self) -> float:
        """Seconds the clock went back (> 0)."""
        return self.previous - self.now

    def __str__(self) -> str:
        return (
            f"time jumped back {self.back:.2f} s (from {self.previous:.3f} s to {self.now:.3f} s)"
        )


@dataclass(frozen=True)
class ClockSettings:
    """jump_tolerance: seconds the clock may go back without it counting as a jump (NTP
    slews, out-of-order timer callbacks).
    future_tolerance: seconds an input stamp may lie ahead of the clock (sensor clocks and
    transport); further ahead it is rejected.
    stall_after: wall seconds without the clock advancing before it counts as stalled."""

    jump_tolerance: float = 0.5
    future_tolerance: float = 0.5
    stall_after: float = 1.0

    def __post_init__(self) -> None:
        for name in ("jump_tolerance", "future_tolerance", "stall_after"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"ClockSettings.{name} must be > 0 s, got {value}")


class ClockWatch:
    """Watches one clock against wall time: backward jumps, stalls, stamps from the future."""

    def __init__(self, settings: ClockSettings | None = None) -> None:
        self.settings = settings or ClockSettings()
        self.jumps = 0
        self.last_jump: TimeJump | None = None
        self._now: float | None = None  # newest clock value seen
        self._wall_at_advance: float | None = None  # wall time when it last advanced

    @property
    def now(self) -> float | None:
        """The newest clock value seen (seconds), or None."""
        return self._now

    def observe(self, now: float, wall: float) -> TimeJump | None:
        """Record a reading of the clock (`now`, seconds) at wall time `wall` (seconds,
        monotonic). Returns the jump when the clock went back by more than jump_tolerance
        (the watch then follows the new time)."""
        jump = None
        if self._now is not None and now < self._now - self.settings.jump_tolerance:
            jump = TimeJump(self._now, now)
            self.jumps += 1
            self.last_jump = jump
        if self._now is None or now > self._now or jump is not None:
            self._now = now
            self._wall_at_advance = wall
        return jump

    def stalled_for(self, wall: float) -> float:
        """Wall seconds since the clock last advanced (0 before the first reading)."""
        return 0.0 if self._wall_at_advance is None else max(wall - self._wall_at_advance, 0.0)

    def stalled(self, wall: float) -> bool:
        return self.stalled_for(wall) > self.settings.stall_after

    def extrapolated(self, wall: float) -> float:
        """The clock as it would read now had it kept running at the wall rate (seconds):
        for commands that must go on (a controlled stop) while /clock is silent."""
        if self._now is None:
            raise ValueError("no clock reading yet")
        return self._now + self.stalled_for(wall)

    def ahead(self, stamp: float, now: float) -> float:
        """Seconds `stamp` lies ahead of `now` beyond future_tolerance (0 when it does not)."""
        return max(stamp - now - self.settings.future_tolerance, 0.0)
