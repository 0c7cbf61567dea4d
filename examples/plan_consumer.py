"""A minimal consumer of alpamayo_ros/DrivingPlan: what another node of your stack needs to
use our plans correctly.

    ros2 run alpamayo_ros ... (the planner), then: python3 examples/plan_consumer.py

- header.stamp is the plan's input time t0, not when it was published: its age is
  now - t0. Never follow a plan of negative age (the clock jumped back) or one older than
  your controller tolerates.
- is_fallback plans are controlled stops (stale inputs, a model error, a late plan): follow
  them as given, never mix them with model plans.
- The points are in header.frame_id (the ego frame base_link at t0: x forward, y left),
  0.1 s apart from t0 + dt; move them into your frame with the odometry between t0 and now.
"""

from __future__ import annotations

import sys

import rclpy
from rclpy.node import Node

from alpamayo_ros.msg import DrivingPlan

MAX_AGE_S = 0.5


def plan_age(node: Node, msg: DrivingPlan) -> float:
    """Seconds since the plan's input time t0, on the node's clock (sim time too)."""
    now = node.get_clock().now().nanoseconds * 1e-9
    return now - (msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec)


class PlanConsumer(Node):
    """Keeps the newest usable plan; `usable` says why a plan was not taken."""

    def __init__(self) -> None:
        super().__init__("plan_consumer")
        self.latest: DrivingPlan | None = None
        self.rejected: list[str] = []
        self.create_subscription(DrivingPlan, "/alpamayo_planner/plan", self.on_plan, 10)

    def usable(self, msg: DrivingPlan) -> str:
        """Why the plan cannot be followed ("" when it can)."""
        age = plan_age(self, msg)
        if age < 0:
            return f"plan stamped {-age:.2f} s in the future (the clock jumped back)"
        if age > MAX_AGE_S:
            return f"plan {age:.2f} s old"
        if not msg.points:
            return "plan without points"
        return ""

    def on_plan(self, msg: DrivingPlan) -> None:
        why = self.usable(msg)
        if why:
            self.rejected.append(why)
            self.get_logger().warning(f"not following: {why}", throttle_duration_sec=2.0)
            return
        self.latest = msg
        first = msg.points[0]
        kind = f"STOP ({msg.fallback_reason})" if msg.is_fallback else "model"
        self.get_logger().info(
            f"{kind} plan in {msg.header.frame_id}: first point x {first.x:.2f} m, "
            f"y {first.y:.2f} m at {first.speed:.1f} m/s; why: {msg.reasoning!r}; "
            f"meta-actions {list(msg.meta_actions)}"
        )


def main() -> int:
    rclpy.init(args=sys.argv)
    node = PlanConsumer()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
