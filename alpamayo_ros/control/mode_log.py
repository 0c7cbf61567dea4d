"""Which changes of the controller's mode (tracking, stopping, stopped) the node logs.

Plans that reach the controller about plan_timeout old (a model slower than the controller
expects) make it switch between stopping and tracking at every plan: logged one by one,
that is two lines per plan. Every change is logged, except that within `min_interval`
seconds of the last logged line a change waits: the mode it leads to is logged once the
interval has passed (if the controller is still in it), saying how many changes were not
logged. So the log always ends on the mode the controller is in, and a flapping controller
writes about one line per interval. Its diagnostics count the late plans in any case.
Times are the node's clock (seconds); a clock that jumps back lets the next change through.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModeLine:
    """A line to log: the mode (its level: tracking is INFO, the others WARN) and the text."""

    mode: str
    text: str


class ModeLog:
    def __init__(self, min_interval: float = 1.0) -> None:
        if not min_interval >= 0.0:
            raise ValueError(f"ModeLog.min_interval must be >= 0 s, got {min_interval}")
        self.min_interval = min_interval
        self.logged_mode: str | None = None  # the mode of the last logged line
        self._logged_at = 0.0
        self._mode: str | None = None  # the mode at the last update
        self._unlogged = 0  # changes since the last logged line, not logged

    def update(self, now: float, mode: str, reason: str, force: bool = False) -> ModeLine | None:
        """The controller is in `mode` at `now` for `reason` ("" while tracking): the line to
        log, or None. `force` logs a change at once (a stop commanded from wall time while
        the clock stands still)."""
        if self._mode is not None and mode != self._mode:
            self._unlogged += 1
        self._mode = mode
        if mode == self.logged_mode:
            return None
        waited = now - self._logged_at
        if self.logged_mode is not None and not force and 0.0 <= waited < self.min_interval:
            return None
        skipped = self._unlogged - 1 if self.logged_mode is not None else 0
        self.logged_mode, self._logged_at, self._unlogged = mode, now, 0
        text = f"controller {mode}" + (f": {reason}" if reason else "")
        if skipped > 0:
            changes = "mode change" if skipped == 1 else "mode changes"
            text += f" ({skipped} {changes} in the last {waited:.1f} s not logged)"
        return ModeLine(mode, text)
