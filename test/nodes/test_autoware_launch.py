"""drive.launch.py autoware:=true without the Autoware message packages (skipped without
ROS 2, and where autoware_planning_msgs is installed): the planner stops at start-up naming
the missing package, with exit code 1.

Run with launch's own LaunchService rather than launch_testing: the planner is meant to
exit within a second or two, and launch_testing fails a test whose processes all ended
before its checks started ("Processes under test stopped before tests completed"), which
made this check flaky (1 run in about 6)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("launch")
if importlib.util.find_spec("autoware_planning_msgs") is not None:
    pytest.skip("autoware_planning_msgs is installed here", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]


def test_the_planner_names_the_missing_package_and_exits_1() -> None:
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler
    from launch.event_handlers import OnProcessExit, OnProcessIO
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    output: list[str] = []
    exits: dict[str, int] = {}

    def on_io(event) -> None:
        output.append(event.text.decode(errors="replace"))

    def on_exit(event, _context) -> None:
        exits[event.action.name] = event.returncode

    drive = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "drive.launch.py")),
        launch_arguments={
            "autoware": "true", "enable_controller": "false", "model": "",
        }.items(),
    )  # fmt: skip
    service = LaunchService()
    service.include_launch_description(
        LaunchDescription([
            RegisterEventHandler(OnProcessIO(on_stdout=on_io, on_stderr=on_io)),
            RegisterEventHandler(OnProcessExit(on_exit=on_exit)),
            drive,
        ])
    )  # fmt: skip
    # The launch ends by itself once its only process has exited; a hang is a failure.
    timer = threading.Timer(60.0, service.shutdown)
    timer.start()
    try:
        service.run(shutdown_when_idle=True)
    finally:
        timer.cancel()
    planner = {name: code for name, code in exits.items() if name.startswith("alpamayo_planner")}
    assert list(planner.values()) == [1], (exits, "".join(output)[-2000:])
    assert "needs the autoware_planning_msgs package" in "".join(output)
