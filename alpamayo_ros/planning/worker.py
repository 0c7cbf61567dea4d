"""The planning worker: runs the policy off the caller's thread, newest input wins.

The planner node's timer hands each cycle's input set to `submit` and returns at once; one
worker thread runs `Planner.run` on the newest input it has. An input still waiting when a
newer one arrives is dropped and counted (the model is slower than the rate). With
max_batch > 1 and a policy that takes several requests, inputs that arrive while the
model runs are planned together in one batch instead (each then keeps its own t0).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from alpamayo_ros.planning.planner import PlanInputs, Planner, PlanOutcome

log = logging.getLogger(__name__)

OutcomeSink = Callable[[PlanOutcome], None]


class PlanningWorker:
    """A daemon thread that plans the newest submitted inputs and hands each outcome to
    `on_outcome` (called on the worker thread)."""

    def __init__(self, planner: Planner, on_outcome: OutcomeSink, max_batch: int = 1) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.planner = planner
        self.on_outcome = on_outcome
        self.max_batch = max_batch
        self.dropped = 0
        self.completed = 0
        self._pending: list[PlanInputs] = []
        self._busy = False
        self._busy_since = 0.0  # time.monotonic() when the running inference started
        self._stop = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="alpamayo-planning", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while the policy runs."""
        with self._cond:
            return self._busy

    def running_for(self, wall: float | None = None) -> float:
        """Seconds the current inference has been running (0 when idle); `wall`:
        time.monotonic() now."""
        with self._cond:
            if not self._busy:
                return 0.0
            return (time.monotonic() if wall is None else wall) - self._busy_since

    def submit(self, inputs: PlanInputs) -> bool:
        """Queue `inputs` (never blocks). Returns False when this dropped an older input
        that had not started yet."""
        with self._cond:
            dropped = False
            if len(self._pending) >= self.max_batch:
                self._pending.pop(0)
                self.dropped += 1
                dropped = True
            self._pending.append(inputs)
            self._cond.notify()
        return not dropped

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop: pending inputs are dropped, the running plan is abandoned at its next
        token (Planner.cancel) and its outcome never handed on. Returns True when the
        thread ended within `timeout` seconds."""
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify()
        self.planner.cancel.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or running (tests, shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stop)
                if self._stop:
                    return
                batch, self._pending = self._pending, []
                self._busy = True
                self._busy_since = time.monotonic()
            try:
                for outcome in self.planner.run_batch(batch):
                    if self._stop:  # shutting down: nobody to publish to
                        break
                    self.on_outcome(outcome)
                    self.completed += 1
            except Exception:  # never let the worker die: the node must keep publishing
                log.exception("planning worker: publishing an outcome failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
