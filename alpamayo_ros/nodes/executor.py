"""The executor a node spins on when it needs more than one thread (the planner: its `~/ask`
service waits for the model beside the other callbacks).

rclpy's MultiThreadedExecutor (Jazzy's rclpy 7.1.3) hands a ready callback to a thread pool
and goes straight back to waiting for work, leaving the callback's subscription out of the
wait until a pool thread has taken its message, but not the subscription's QoS events
(rclpy's default incompatible-QoS handlers, one set per subscription). Under Fast DDS
(rmw_fastrtps, Jazzy's default middleware) an event shares its data reader's status
condition, which says "data available" while the sample is untaken, and rmw_fastrtps then
skips the wait without reporting anything ready (rmw_fastrtps issue 833 describes the loop).
So the wait returns at once until the message is taken; each time round rclpy also hands the
pending task over again (rclpy issue 1452), and the spinning thread loops in Python, holding
the interpreter lock that the pool thread needs to take the message.

Measured on this project's 2-core machine: a planner without a model beside a vehicle node
publishing odometry (20 Hz) and four cameras (10 Hz) from its timers, one process, a
MultiThreadedExecutor of 4 threads, 10 s: under Fast DDS 3 to 26 of the 200 odometry
messages reached the planner (gaps up to 5 s), the process using a core; under Cyclone DDS
every message, 6 ms after its stamp. With both pool threads held by callbacks and a third
message waiting, 1 s: 6295 hand-overs of the same task and 1.3 s of CPU in the spinning
thread under Fast DDS, 4 and 0.003 s under Cyclone DDS.

`PendingTakeExecutor` also leaves the subscription's QoS events out of the wait until its
message is taken; everything else is rclpy's executor. Measured as above: under Fast DDS all
200 odometry messages, 6 ms after their stamp (max 17 ms), and 4 hand-overs and 0.003 s of
CPU in the second case. A first fix, waiting in the spinning thread after each hand-over
until the message was taken, cured the loop too but planned too few ticks in the real-time
launch test 5 times in 18 runs (rclpy's executor and this one: 1 in 14 each), likely from
the waits for the interpreter lock it adds to each hand-over while the model's thread runs.
"""

from __future__ import annotations

from typing import Any

from rclpy.executors import MultiThreadedExecutor


class PendingTakeExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor that leaves a subscription's QoS events out of its wait while a
    pool thread has yet to take the subscription's message (see the module's text)."""

    def can_execute(self, entity: Any) -> bool:
        for handler in getattr(entity, "event_handlers", ()):  # a subscription's QoS events
            handler._events_of = entity  # subscriptions are filtered before the waitables
        owner = getattr(entity, "_events_of", None)
        if owner is not None and owner._executor_event:  # its message not taken yet
            return False
        return bool(super().can_execute(entity))
