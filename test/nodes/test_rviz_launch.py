"""config/alpamayo.rviz in a real rviz2 (launch_testing; skipped without ROS 2, rviz2 or
Xvfb): drive.launch.py rviz:=true on a virtual screen, the planner with a tiny checkpoint
on the CPU and simulated time that this test drives with a fake vehicle. Every display of
the configuration must load its plugin and subscribe, with the right type, to the topic
the nodes publish (the camera through the compressed image transport, which needs
compressed_image_transport installed), RViz must log no error, and every process must
exit 0 on shutdown."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")
for program in ("rviz2", "Xvfb"):
    if shutil.which(program) is None:
        pytest.skip(f"no {program} here", allow_module_level=True)

from launch import LaunchDescription  # noqa: E402
from launch.actions import SetEnvironmentVariable  # noqa: E402
from launch_files import DriveCase, drive_launch, tiny_planner_params  # noqa: E402
from rclpy.node import NodeNameNonExistentError  # noqa: E402

SIM_START = 100.0
DISPLAY = f":{90 + os.getpid() % 9}"  # a virtual screen of this test's own
# What config/alpamayo.rviz shows, as rviz2 must subscribe to it.
SHOWN = {
    "/alpamayo_planner/path": "nav_msgs/msg/Path",
    "/alpamayo_planner/markers": "visualization_msgs/msg/MarkerArray",
    "/camera/camera_front_wide_120fov/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
}  # (its TF display listens through a node of its own, transform_listener_impl_...)
RVIZ_ERRORS = ("[ERROR]", "failed to load", "Could not load", "PluginlibFactory")


@pytest.mark.launch_test
def generate_test_description():
    work = Path(tempfile.mkdtemp(prefix="alpamayo_rviz_"))
    params, _ = tiny_planner_params(
        work, num_samples=2, max_reasoning_tokens=4, num_flow_steps=2, seed=0
    )
    # The screen outlives the launch, as a desktop's does (stopped with it, rviz2 would
    # exit 1 on a broken X connection instead of 0 on SIGINT).
    screen = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1280x800x24"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    atexit.register(screen.terminate)
    time.sleep(1.0)
    return LaunchDescription([
        SetEnvironmentVariable("DISPLAY", DISPLAY),
        SetEnvironmentVariable("LIBGL_ALWAYS_SOFTWARE", "1"),  # Mesa's llvmpipe: no GPU
        drive_launch(params, rviz="true"),
        launch_testing.actions.ReadyToTest(),
    ])  # fmt: skip


class TestRviz(DriveCase):
    sim_start = SIM_START

    def rviz_subscriptions(self) -> dict[str, list[str]]:
        try:
            found = self.drive.node.get_subscriber_names_and_types_by_node("rviz2", "/")
        except NodeNameNonExistentError:  # rviz2 not in the graph yet
            return {}
        return dict(found)

    def test_every_display_subscribes_to_what_the_nodes_publish(self) -> None:
        self.wait_model_ready()
        for k in range(20):  # plans for the path and markers displays
            t = round(SIM_START + 0.1 * k, 6)
            self.drive.publish_inputs(t)
            time.sleep(0.1)
            self.drive.set_clock(t)
        shown = lambda: all(  # noqa: E731
            kind in self.rviz_subscriptions().get(topic, []) for topic, kind in SHOWN.items()
        )
        self.assertTrue(self.graph.wait_for(shown, 60.0), self.rviz_subscriptions())
        self.assertTrue(self.drive.received["path"] and self.drive.received["markers"])


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_rviz_logged_no_error(self, proc_output) -> None:
        for process in proc_output.processes():
            name = getattr(process, "process_details", {}).get("name", "")
            if "rviz2" not in name:
                continue
            text = "".join(o.text.decode(errors="replace") for o in proc_output[process])
            errors = [line for line in text.splitlines() if any(e in line for e in RVIZ_ERRORS)]
            self.assertEqual(errors, [], name)

    def test_processes_exit_0(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
