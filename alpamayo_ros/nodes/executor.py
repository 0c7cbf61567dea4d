"""The executor a node spins on when it needs more than one thread (the planner: its `~/ask`
service waits for the model beside the other callbacks).

rclpy's MultiThreadedExecutor (Jazzy's rclpy 7.1.3) hands a ready callback to a thread pool
and goes straight back to waiting for work. Under Fast DDS (rmw_fastrtps, Jazzy's default
middleware) that wait returns at once until a pool thread has taken the callback's message:
rmw_fastrtps skips the wait while any QoS event in the wait set is on a data reader with an
untaken sample, and rclpy puts each subscription's default QoS-event handlers in the wait set
but not the subscription itself (its callback is pending), so the sample that keeps the wait
from blocking is the one the pool has yet to take (rmw_fastrtps issue 833 describes the loop).
Each time round, rclpy also hands the pending task over again, as it is neither executing nor
done (rclpy issue 1452). The spinning thread loops in Python, holding the interpreter lock
that the pool thread needs to take the message.

Measured on this project's 2-core machine: a planner without a model beside a vehicle node
publishing odometry (20 Hz) and four cameras (10 Hz) from its timers, one process, a
MultiThreadedExecutor of 4 threads, 10 s: under Fast DDS 3 to 26 of the 200 odometry
messages reached the planner (gaps up to 5 s), the process using a core; under Cyclone DDS
every message, 6 ms after its stamp. With both pool threads held by callbacks and a third
message waiting, 1 s: 6295 hand-overs of the same task and 1.3 s of CPU in the spinning
thread under Fast DDS, 4 and 0.003 s under Cyclone DDS.

`HandOffExecutor` waits, after handing a callback over, until a pool thread has taken its
message (or has run the callback, for an entity without one), then waits for work again.
Callbacks still run side by side; only the hand-over is waited for, which takes as long as a
free pool thread needs to start it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rclpy.executors import MultiThreadedExecutor

HAND_OFF_POLL = 0.01  # s between checks for the executor's shutdown while a hand-over waits


class _HandOffPool(ThreadPoolExecutor):
    """A thread pool whose submit returns once the submitted callable has handed off: its
    `_handed` event is set (by the take, see HandOffExecutor._make_handler) or, without one,
    once a pool thread has started it. `stopped()` ends a wait early (executor shut down)."""

    def __init__(self, max_workers: int, stopped: Callable[[], bool]) -> None:
        super().__init__(max_workers)
        self._stopped = stopped

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        handed = getattr(fn, "_handed", None)
        started = threading.Event() if handed is None else handed

        def run() -> Any:
            if handed is None:
                started.set()
            try:
                return fn(*args, **kwargs)
            finally:
                started.set()  # a callback that ended without taking (its group was busy)

        future = super().submit(run)
        while not started.wait(HAND_OFF_POLL):
            if self._stopped() or future.done():
                break
        return future


class HandOffExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor that waits for work again only once the callback it handed to
    a pool thread has taken its message (see the module's text)."""

    _executor: ThreadPoolExecutor  # rclpy's pool, replaced by a _HandOffPool

    def __init__(self, num_threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(num_threads=num_threads, **kwargs)
        threads = self._executor._max_workers  # as rclpy chose them (cpu count when None)
        self._executor.shutdown(wait=False)  # no thread started yet: nothing was submitted
        self._executor = _HandOffPool(threads, lambda: self._is_shutdown)

    def _make_handler(self, entity: Any, node: Any, take_from_wait_list: Callable) -> Any:
        handed = threading.Event()

        def take(taken_entity: Any) -> Any:
            try:
                return take_from_wait_list(taken_entity)
            finally:
                handed.set()

        task = super()._make_handler(entity, node, take)
        task._handed = handed
        return task
