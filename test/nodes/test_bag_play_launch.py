"""replay.launch.py with a real `ros2 bag play` (launch_testing; skipped without ROS 2 and
rosbag2): the synthetic sample drive written by `alpamayo-ros make-sample-bag` (rosbags,
no ROS) played at real time by rosbag2 with --clock, the planner in two_lane with the tiny
checkpoint on the CPU. It must publish a plan for (nearly) every 10 Hz tick of bag time once
the ego history is full, most of them model plans of the trajectory lane, none a model
error; the bag starts only after model_ready, so its start is planned too.

Like the real-time test, this depends on the machine keeping up: it allows a tenth of the
ticks to be lost and skips, saying so, when the model's own calls were too slow for 10 Hz."""

from __future__ import annotations

import shutil
import tempfile
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")
pytest.importorskip("ros2bag")
if shutil.which("ros2") is None:
    pytest.skip("no ros2 command (ros2cli)", allow_module_level=True)

from launch import LaunchDescription  # noqa: E402
from launch_files import DriveCase, check_ticks_planned, sample_bag_replay  # noqa: E402

from alpamayo_ros.messages.inputs import stamp_seconds  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="alpamayo_bag_play_"))
DURATION = 10.0  # s of the sample drive
BAG_SPAN: list[float] = []  # first and last message time (s), set below


@pytest.mark.launch_test
def generate_test_description():
    replay, BAG_SPAN[:] = sample_bag_replay(WORK, DURATION, seed=0)
    return LaunchDescription([replay, launch_testing.actions.ReadyToTest()])


class TestBagPlay(DriveCase):
    sim_start = 0.0  # only listens: the bag publishes the inputs

    def test_the_played_bag_is_planned_at_10_hz_of_bag_time(self, proc_info) -> None:
        received = self.drive.received
        start, end = BAG_SPAN
        self.wait_model_ready()

        def last_stamp() -> float:
            return max((stamp_seconds(m.header.stamp) for _, m in received["plan"]), default=0.0)

        # the bag plays at real time once the planner is ready; its last tick's plan ends it
        self.assertTrue(
            self.graph.wait_for(lambda: last_stamp() >= end - 0.15, DURATION + 60.0),
            f"plans reached {last_stamp():.2f} s of a bag ending at {end:.2f} s",
        )
        plans = {round(stamp_seconds(m.header.stamp), 2): m for _, m in received["plan"]}
        self.assertTrue(plans, "no plan")
        self.assertLess(min(plans), start + 0.5)  # the bag's start was planned too
        self.assertTrue(all(start - 0.2 <= t <= end + 0.2 for t in plans))  # bag time
        # the player ends by itself at the end of the bag (exit 0, checked after shutdown),
        # also when the check below skips (a skip ended the test and the launch sent the
        # player SIGINT: exit -2)
        proc_info.assertWaitForShutdown(process="ros2", cmd_args=["bag", "play"], timeout=30)
        window = (start + 2.5, end - 0.2)  # the ego history is full from start + 1.5 s
        check_ticks_planned(self, plans, window)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_processes_exit_0(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
