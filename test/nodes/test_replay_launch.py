"""replay.launch.py (launch_testing; skipped without ROS 2): the bag starts playing only once
the planner reports its model loaded, with --clock, the given start_offset and --loop, paused
at its start, and is resumed play_delay seconds later. A stand-in `ros2` first on PATH
records how and when `ros2 bag play` and the resume call were started (time.monotonic is
one clock for all processes on Linux), so rosbag2 need not be installed."""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import time
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")

from fake_vehicle import Drive, Graph  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_files import tiny_planner_params  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORK = Path(tempfile.mkdtemp(prefix="alpamayo_replay_launch_"))
RECORD = WORK / "ros2_calls.jsonl"
STAND_IN = f"""#!{sys.executable}
import json, sys, time
with open({str(RECORD)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "at": time.monotonic()}}) + "\\n")
"""


@pytest.mark.launch_test
def generate_test_description():
    bin_dir = WORK / "bin"
    bin_dir.mkdir()
    ros2 = bin_dir / "ros2"
    ros2.write_text(STAND_IN)
    ros2.chmod(ros2.stat().st_mode | stat.S_IEXEC)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    planner_params, _ = tiny_planner_params(WORK, diagnostics_period=0.2)
    replay = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "replay.launch.py")),
        launch_arguments={
            "bag": str(WORK / "some_bag"), "start_offset": "1.5", "rate": "0.5", "loop": "true",
            "play_delay": "0.25",
            "planner_params": str(planner_params), "enable_controller": "false",
        }.items(),
    )  # fmt: skip
    return LaunchDescription([replay, launch_testing.actions.ReadyToTest()])


class TestReplayLaunch(unittest.TestCase):
    def setUp(self) -> None:
        rclpy.init()
        self.drive = Drive(sim_start=0.0)  # records on its own: arrival times below
        self.graph = Graph(self.drive.node)
        self.statuses: list[tuple[float, bool]] = []
        from alpamayo_ros.msg import PlannerStatus

        self.drive.node.create_subscription(
            PlannerStatus, "/alpamayo_planner/status",
            lambda msg: self.statuses.append((time.monotonic(), msg.model_ready)), 10,
        )  # fmt: skip

    def tearDown(self) -> None:
        self.graph.close()
        self.drive.node.destroy_node()
        rclpy.try_shutdown()

    def test_the_bag_plays_only_once_the_planner_is_ready(self) -> None:
        self.assertTrue(self.graph.wait_for(RECORD.exists, 120.0), "ros2 bag play never ran")
        calls = lambda: [json.loads(line) for line in RECORD.read_text().splitlines()]  # noqa: E731
        self.assertTrue(self.graph.wait_for(lambda: len(calls()) == 2, 10.0), calls())
        call, resume = calls()
        self.assertEqual(resume["argv"][:3], ["service", "call", "/rosbag2_player/resume"])
        # play_delay 0.25 s after the player started (each stand-in records after its own
        # Python start-up, which varies by a few ms)
        self.assertGreaterEqual(resume["at"] - call["at"], 0.2)
        argv = call["argv"]
        self.assertIn("--start-paused", argv)
        self.assertEqual(argv[:3], ["bag", "play", str(WORK / "some_bag")])
        self.assertIn("--clock", argv)
        self.assertIn("--loop", argv)
        self.assertEqual(argv[argv.index("--start-offset") + 1], "1.5")
        self.assertEqual(argv[argv.index("--rate") + 1], "0.5")
        # Every status published after the bag started says the model is ready.
        self.assertTrue(self.graph.wait_for(
            lambda: any(at > call["at"] + 0.3 for at, _ in self.statuses), 10.0))  # fmt: skip
        self.assertTrue(all(ready for at, ready in self.statuses if at > call["at"] + 0.1))
