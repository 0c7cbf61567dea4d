"""drive.launch.py autoware:=true without the Autoware message packages (launch_testing;
skipped without ROS 2, and where autoware_planning_msgs is installed): the planner stops at
start-up naming the missing package, with exit code 1."""

from __future__ import annotations

import importlib.util
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")
if importlib.util.find_spec("autoware_planning_msgs") is not None:
    pytest.skip("autoware_planning_msgs is installed here", allow_module_level=True)

from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_testing.asserts import assertExitCodes  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.launch_test
def generate_test_description():
    drive = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "drive.launch.py")),
        launch_arguments={
            "autoware": "true", "enable_controller": "false", "model": "",
        }.items(),
    )  # fmt: skip
    return LaunchDescription([drive, launch_testing.actions.ReadyToTest()])


class TestAutowareWithoutAutoware(unittest.TestCase):
    def test_the_planner_names_the_missing_package(self, proc_output, proc_info) -> None:
        proc_output.assertWaitFor("needs the autoware_planning_msgs package", timeout=60)
        # and ends by itself (before the test's end shuts the launch down)
        proc_info.assertWaitForShutdown(process="alpamayo_planner", timeout=60)


@launch_testing.post_shutdown_test()
class TestExit(unittest.TestCase):
    def test_the_planner_exits_1(self, proc_info) -> None:
        assertExitCodes(proc_info, allowable_exit_codes=[1])
