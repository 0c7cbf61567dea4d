"""alpamayo_wait_ready: exits 0 once the planner reports its model loaded (PlannerStatus
model_ready), 1 when it reports an error or the timeout passes. replay.launch.py starts
`ros2 bag play` on its exit, so no part of the bag is played before the planner can plan.
With --started-after (replay.launch.py passes the time it was launched) the status of a
planner started earlier, e.g. of another launch still running or shutting down on the same
topic, is ignored: it would start the bag before this launch's planner has loaded.

    ros2 run alpamayo_ros alpamayo_wait_ready [--timeout 300] [--status alpamayo_planner/status]
        [--started-after EPOCH_SECONDS]
"""

from __future__ import annotations

import argparse
import time

import rclpy
from rclpy.node import Node

from alpamayo_ros.core.diagnostics import ready_outcome
from alpamayo_ros.messages.inputs import stamp_seconds
from alpamayo_ros.msg import PlannerStatus
from alpamayo_ros.nodes.parameters import rcl_error_text


class WaitReady(Node):
    def __init__(self, status_topic: str, started_after: float = 0.0) -> None:
        super().__init__("alpamayo_wait_ready")
        self.outcome: tuple[int, str] | None = None
        self.started_after = started_after
        self.older_planner_seen = False
        self.create_subscription(PlannerStatus, status_topic, self._on_status, 10)

    def _on_status(self, msg: PlannerStatus) -> None:
        started = stamp_seconds(msg.node_started)
        self.outcome = ready_outcome(
            msg.model_ready, msg.state, msg.detail, started, self.started_after
        )
        if started < self.started_after and not self.older_planner_seen:
            self.older_planner_seen = True
            self.get_logger().warning(
                f"ignoring the status of a planner started {self.started_after - started:.1f} s "
                "before this launch on the same topic (another launch still running?)"
            )


def main(args: list[str] | None = None) -> int:
    try:
        rclpy.init(args=args)
    except RuntimeError as err:  # rcl's: a bad --ros-args rule or params file
        rclpy.logging.get_logger("alpamayo_wait_ready").fatal(
            f"bad arguments: {rcl_error_text(str(err))}"
        )
        return 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--status", default="alpamayo_planner/status", help="PlannerStatus topic")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (wall clock)")
    parser.add_argument(
        "--started-after", type=float, default=0.0,
        help="system time (s since the epoch): statuses of planners started earlier are ignored",
    )  # fmt: skip
    opts = parser.parse_args(rclpy.utilities.remove_ros_args(args)[1:])
    node = WaitReady(opts.status, opts.started_after)
    end = time.monotonic() + opts.timeout
    code, why = 1, f"planner not ready after {opts.timeout:g} s"
    try:
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.2)
            if node.outcome is not None:
                code, why = node.outcome
                break
    except KeyboardInterrupt:
        code, why = 1, "interrupted"
    if code == 0:  # rclpy: one severity per logging call site
        node.get_logger().info(why)
    else:
        node.get_logger().error(why)
    node.destroy_node()
    rclpy.try_shutdown()
    return code
