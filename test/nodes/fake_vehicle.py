"""Test helpers for the node tests (imported only after rclpy was found): a fake vehicle
node that publishes synthetic cameras and odometry and records the nodes' outputs, and an
executor spinning in a background thread.

Two ways to drive it: on wall time (its own timers), or on simulated time (`sim_start`): the
test then owns /clock and calls `step`, so what is asserted is counted per simulated second
and holds on a loaded machine."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped, Twist
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core.frame_buffer import RELEASED_CAMERAS
from alpamayo_ros.msg import DrivingPlan, PlannerStatus
from alpamayo_ros.nodes.executor import PendingTakeExecutor

SPEED = 5.0  # m/s of the fake vehicle, straight along odom x


def stamp_msg(t: float) -> Time:
    sec = int(t // 1)
    return Time(sec=sec, nanosec=round((t - sec) * 1e9) % 1_000_000_000)


class Drive:
    """A test node: publishes the inputs of a straight drive and records every output,
    each with the time it arrived: time.monotonic(), or with `sim_start` the simulated
    clock (the test advances it with `step`; nothing is published on wall time then).
    `namespace`: the nodes' (drive.launch.py namespace:=...): their own topics are read
    there; the cameras, odometry, /tf, /clock and /diagnostics stay absolute."""

    def __init__(self, sim_start: float | None = None, namespace: str = "") -> None:
        self.node = rclpy.create_node("fake_vehicle")
        self.cameras_on = True
        self.bad_image_next = False
        self.bad_image_data = b"not a jpeg"  # what a bad image holds
        self.odom_child = "base_link"  # child_frame_id of the odometry
        self.speed = SPEED  # m/s of the straight drive
        self.sim_now = sim_start
        self.drive_start = sim_start or 0.0  # where the straight drive has x = 0
        topics = ("plan", "path", "reasoning", "markers", "status", "diag", "cmd")
        self.received: dict[str, list] = {k: [] for k in topics}
        n = self.node
        self.pub_cams = {
            cam: n.create_publisher(CompressedImage, f"/camera/{cam}/image_raw/compressed", 10)
            for cam in RELEASED_CAMERAS
        }
        self.pub_odom = n.create_publisher(Odometry, "/odom", 10)
        self.pub_tf = n.create_publisher(TFMessage, "/tf", 10)
        ns = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
        planner = f"{ns}/alpamayo_planner"
        self.pub_plan = n.create_publisher(DrivingPlan, f"{planner}/plan", 10)
        self.pub_clock = n.create_publisher(Clock, "/clock", 10)
        record = lambda key: lambda msg: self.received[key].append((self._arrival(), msg))  # noqa: E731
        n.create_subscription(DrivingPlan, f"{planner}/plan", record("plan"), 10)
        n.create_subscription(PathMsg, f"{planner}/path", record("path"), 10)
        n.create_subscription(String, f"{planner}/reasoning", record("reasoning"), 10)
        n.create_subscription(MarkerArray, f"{planner}/markers", record("markers"), 10)
        n.create_subscription(PlannerStatus, f"{planner}/status", record("status"), 10)
        n.create_subscription(DiagnosticArray, "/diagnostics", record("diag"), 10)
        n.create_subscription(Twist, f"{ns}/cmd_vel", record("cmd"), 10)
        ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 100, np.uint8))
        assert ok
        self.jpeg = jpeg.tobytes()
        self.t_start = self._now()
        if sim_start is None:
            n.create_timer(0.1, self._publish_cameras)
            n.create_timer(0.05, self._publish_odometry)

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _arrival(self) -> float:
        return time.monotonic() if self.sim_now is None else self.sim_now

    # -- simulated time ---------------------------------------------------------------------
    def publish_inputs(self, t: float) -> None:
        """Odometry at t - 0.05 and t, and (cameras on) a frame per camera, stamped t."""
        self._publish_odometry(t - 0.05)
        self._publish_odometry(t)
        self._publish_cameras(t)

    def set_clock(self, t: float) -> None:
        self.sim_now = t
        self.pub_clock.publish(Clock(clock=stamp_msg(t)))

    # -- messages ---------------------------------------------------------------------------
    def _publish_cameras(self, t: float | None = None) -> None:
        if not self.cameras_on:
            return
        stamp = self.node.get_clock().now().to_msg() if t is None else stamp_msg(t)
        for cam, pub in self.pub_cams.items():
            msg = CompressedImage(format="jpeg")
            msg.header.stamp = stamp
            msg.header.frame_id = cam
            msg.data = self.bad_image_data if self.bad_image_next else self.jpeg
            pub.publish(msg)
        self.bad_image_next = False

    def _publish_odometry(self, t: float | None = None) -> None:
        if t is None:
            t, stamp, start = self._now(), self.node.get_clock().now().to_msg(), self.t_start
        else:
            stamp, start = stamp_msg(t), self.drive_start
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = "odom"
        msg.child_frame_id = self.odom_child
        msg.pose.pose.position.x = self.speed * (t - start)
        msg.pose.pose.orientation.w = 1.0
        msg.twist.twist.linear.x = self.speed
        self.pub_odom.publish(msg)
        tf = TransformStamped()
        tf.header = msg.header
        tf.child_frame_id = "base_link"
        tf.transform.translation.x = msg.pose.pose.position.x
        tf.transform.rotation.w = 1.0
        self.pub_tf.publish(TFMessage(transforms=[tf]))


class Graph:
    """Nodes spinning in a background thread on the executor the planner spins on (a
    PendingTakeExecutor, 4 threads); as a context manager it also destroys them on exit."""

    def __init__(self, *nodes) -> None:
        self.nodes = nodes
        self.executor = PendingTakeExecutor(num_threads=4)
        for node in nodes:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(5.0)

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        for node in reversed(self.nodes):
            node.destroy_node()


def step(
    graph: Graph, drive: Drive, planner, t: float, wait_plan: bool = True, lead: float = 0.0
) -> bool:
    """One simulated planner cycle at t: the inputs stamped t, delivered to the planner, then
    /clock set to t (its timer ticks once per 0.1 s step); with wait_plan, wait (wall time,
    as long as the model needs) for the plan of that tick. False when it did not come.
    Without wait_plan nothing is waited for: the clock runs as fast as the test steps it.
    Only a plan arriving during this call counts (a looped bag meets each time again).
    With `lead` (s) the inputs are stamped t + lead: sensors ahead of the clock."""
    before = len(drive.received["plan"])
    stamp = round(t + lead, 6)
    drive.publish_inputs(stamp)
    if drive.cameras_on and wait_plan:
        graph.wait_for(lambda: planner.planner.poses.latest_stamp == stamp and all(
            s == stamp for s in planner.planner.frames.latest_stamps().values()), 5.0)  # fmt: skip
    drive.set_clock(t)
    if not wait_plan:
        return True
    return graph.wait_for(
        lambda: any(abs(at - t) < 1e-9 for at, _ in drive.received["plan"][before:]), 30.0
    )
