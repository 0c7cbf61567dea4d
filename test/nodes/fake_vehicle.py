"""Test helpers for the node tests (imported only after rclpy was found): a fake vehicle
node that publishes synthetic cameras and odometry and records the nodes' outputs, and an
executor spinning in a background thread."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped, Twist
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.executors import MultiThreadedExecutor
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core.frame_buffer import RELEASED_CAMERAS
from alpamayo_ros.msg import DrivingPlan, PlannerStatus

SPEED = 5.0  # m/s of the fake vehicle, straight along odom x


class Drive:
    """A test node: publishes the inputs of a straight drive and records every output."""

    def __init__(self) -> None:
        self.node = rclpy.create_node("fake_vehicle")
        self.cameras_on = True
        self.bad_image_next = False
        topics = ("plan", "path", "reasoning", "markers", "status", "diag", "cmd")
        self.received: dict[str, list] = {k: [] for k in topics}
        n = self.node
        self.pub_cams = {
            cam: n.create_publisher(CompressedImage, f"/camera/{cam}/image_raw/compressed", 10)
            for cam in RELEASED_CAMERAS
        }
        self.pub_odom = n.create_publisher(Odometry, "/odom", 10)
        self.pub_tf = n.create_publisher(TFMessage, "/tf", 10)
        self.pub_plan = n.create_publisher(DrivingPlan, "/alpamayo_planner/plan", 10)
        record = lambda key: lambda msg: self.received[key].append((time.monotonic(), msg))  # noqa: E731
        n.create_subscription(DrivingPlan, "/alpamayo_planner/plan", record("plan"), 10)
        n.create_subscription(PathMsg, "/alpamayo_planner/path", record("path"), 10)
        n.create_subscription(String, "/alpamayo_planner/reasoning", record("reasoning"), 10)
        n.create_subscription(MarkerArray, "/alpamayo_planner/markers", record("markers"), 10)
        n.create_subscription(PlannerStatus, "/alpamayo_planner/status", record("status"), 10)
        n.create_subscription(DiagnosticArray, "/diagnostics", record("diag"), 10)
        n.create_subscription(Twist, "/cmd_vel", record("cmd"), 10)
        ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 100, np.uint8))
        assert ok
        self.jpeg = jpeg.tobytes()
        self.t_start = self._now()
        n.create_timer(0.1, self._publish_cameras)
        n.create_timer(0.05, self._publish_odometry)

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _publish_cameras(self) -> None:
        if not self.cameras_on:
            return
        stamp = self.node.get_clock().now().to_msg()
        for cam, pub in self.pub_cams.items():
            msg = CompressedImage(format="jpeg")
            msg.header.stamp = stamp
            msg.header.frame_id = cam
            msg.data = b"not a jpeg" if self.bad_image_next else self.jpeg
            pub.publish(msg)
        self.bad_image_next = False

    def _publish_odometry(self) -> None:
        t = self._now()
        msg = Odometry()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = "odom"
        msg.child_frame_id = "base_link"
        msg.pose.pose.position.x = SPEED * (t - self.t_start)
        msg.pose.pose.orientation.w = 1.0
        msg.twist.twist.linear.x = SPEED
        self.pub_odom.publish(msg)
        tf = TransformStamped()
        tf.header = msg.header
        tf.child_frame_id = "base_link"
        tf.transform.translation.x = msg.pose.pose.position.x
        tf.transform.rotation.w = 1.0
        self.pub_tf.publish(TFMessage(transforms=[tf]))


class Graph:
    """Nodes spinning on a MultiThreadedExecutor in a background thread."""

    def __init__(self, *nodes) -> None:
        self.executor = MultiThreadedExecutor(num_threads=4)
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
