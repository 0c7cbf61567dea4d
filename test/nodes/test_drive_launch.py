"""drive.launch.py end to end (launch_testing; skipped without ROS 2): both nodes start as
processes with a tiny checkpoint on the CPU; a fake vehicle publishes cameras and odometry;
plans arrive at the rate, the controller commands, and stopping the cameras gives stop
plans and a decelerating controller."""

from __future__ import annotations

import tempfile
import time
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")


import yaml  # noqa: E402
from fake_vehicle import SPEED, Drive, Graph  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

from alpamayo_ros.model.tiny import make_tiny_checkpoint  # noqa: E402
from alpamayo_ros.nodes.parameters import PLANNER_PARAMS, defaults  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.launch_test
def generate_test_description():
    work = Path(tempfile.mkdtemp(prefix="alpamayo_launch_"))
    checkpoint = make_tiny_checkpoint(work / "ckpt")
    params = defaults(PLANNER_PARAMS) | {
        "num_samples": 2, "max_reasoning_tokens": 4, "num_flow_steps": 2, "seed": 0,
        "diagnostics_period": 0.5,
    }  # fmt: skip
    planner_params = work / "planner.yaml"
    planner_params.write_text(yaml.safe_dump({"alpamayo_planner": {"ros__parameters": params}}))
    drive = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "drive.launch.py")),
        launch_arguments={
            "model": str(checkpoint), "device": "cpu", "dtype": "float32", "rate_hz": "10.0",
            "planner_params": str(planner_params),
            "controller_params": str(REPO / "config" / "controller.yaml"),
            "camera_config": str(REPO / "config" / "cameras.yaml"),
        }.items(),
    )  # fmt: skip
    return LaunchDescription([drive, launch_testing.actions.ReadyToTest()])


class TestDriveLaunch(unittest.TestCase):
    def setUp(self) -> None:
        rclpy.init()
        self.drive = Drive()
        self.graph = Graph(self.drive.node)

    def tearDown(self) -> None:
        self.graph.close()
        self.drive.node.destroy_node()
        rclpy.try_shutdown()

    def test_plans_at_the_rate_commands_and_a_stop_when_cameras_stop(self) -> None:
        received = self.drive.received
        model_plans = lambda: [m for _, m in received["plan"] if not m.is_fallback]  # noqa: E731
        self.assertTrue(self.graph.wait_for(lambda: len(model_plans()) >= 5, 60.0))
        before = len(received["plan"])
        time.sleep(3.0)
        rate = (len(received["plan"]) - before) / 3.0
        self.assertGreaterEqual(rate, 7.0)
        self.assertLessEqual(rate, 12.0)

        # The controller follows the plans (the tiny model's are random but valid).
        cmds = [m for _, m in received["cmd"]]
        self.assertGreater(len(cmds), 50)  # 50 Hz
        self.assertTrue(all(0.0 <= m.linear.x <= 30.0 for m in cmds))

        self.drive.cameras_on = False
        stopped_at = time.monotonic()
        stale = lambda: [  # noqa: E731
            m for t, m in received["plan"]
            if t > stopped_at and m.fallback_reason.startswith("stale input")
        ]  # fmt: skip
        self.assertTrue(self.graph.wait_for(lambda: bool(stale()), 3.0))
        stop = stale()[0]
        self.assertIn("camera_", stop.fallback_reason)
        self.assertAlmostEqual(stop.points[-1].speed, 0.0, places=6)
        # The controller follows the stop plan down from the measured speed.
        time.sleep(1.5)
        late = [m.linear.x for t, m in received["cmd"] if t > stopped_at + 1.0]
        self.assertTrue(late)
        self.assertLess(max(late), SPEED)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_nodes_exit_cleanly(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
