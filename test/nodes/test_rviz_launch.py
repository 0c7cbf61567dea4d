"""config/alpamayo.rviz in a real rviz2 (launch_testing; skipped without ROS 2, rviz2 or
Xvfb): drive.launch.py rviz:=true on a virtual screen, the planner with a tiny checkpoint
on the CPU and simulated time that this test drives with a fake vehicle. Every display of
the configuration must load its plugin and subscribe, with the right type, to the topic
the nodes publish (the camera through the compressed image transport, which needs
compressed_image_transport installed), the screen must show the plan's path in its colour
and the camera's frame in the image panel, RViz must log no error, and every process must
exit 0 on shutdown."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")
for program in ("rviz2", "Xvfb", "import"):  # import: ImageMagick's screenshot
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
PATH_RGB = (25, 255, 0)  # the Path display's colour in config/alpamayo.rviz
CAMERA_GREY = 100  # the fake cameras' uniform frames (fake_vehicle.Drive)
SCREENSHOT = Path(tempfile.gettempdir()) / "alpamayo_rviz_test.png"  # kept for a look
MIN_PATH_PIXELS = 400  # on a 1280x800 screen: measured ~1300 for a 6.4 s path
MIN_CAMERA_PIXELS = 160 * 120 // 2  # the 160x120 frame, scaled up to the panel (~48000)


def screenshot() -> np.ndarray:
    """The virtual screen as an (H, W, 3) uint8 RGB array."""
    png = subprocess.run(["import", "-display", DISPLAY, "-window", "root", "png:-"],
                         capture_output=True, check=True, timeout=30).stdout  # fmt: skip
    SCREENSHOT.write_bytes(png)
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return bgr[..., ::-1]


def pixels_near(rgb: np.ndarray, colour: tuple[int, int, int], tol: int) -> int:
    """How many pixels are within tol of colour in every channel."""
    diff = np.abs(rgb.astype(np.int16) - np.asarray(colour, np.int16))
    return int(np.count_nonzero((diff <= tol).all(axis=-1)))


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

    def test_every_display_subscribes_to_what_the_nodes_publish_and_draws_it(self) -> None:
        """Subscribed with the right types; then drawn: pixels of the path's colour in the
        3D view and a block of the fake camera's grey in the image panel (RViz redraws at
        30 Hz; inputs and plans go on between screenshots until both show)."""
        self.wait_model_ready()
        ticks = (round(SIM_START + 0.1 * k, 6) for k in range(600))
        for t in itertools.islice(ticks, 20):  # plans for the path and markers displays
            self.tick(t)
        shown = lambda: all(  # noqa: E731
            kind in self.rviz_subscriptions().get(topic, []) for topic, kind in SHOWN.items()
        )
        self.assertTrue(self.graph.wait_for(shown, 60.0), self.rviz_subscriptions())
        self.assertTrue(self.drive.received["path"] and self.drive.received["markers"])
        counts = (0, 0)
        for k, t in enumerate(itertools.islice(ticks, 120)):
            self.tick(t)
            if k % 10 == 9:
                rgb = screenshot()
                counts = (pixels_near(rgb, PATH_RGB, 12), pixels_near(rgb, (CAMERA_GREY,) * 3, 3))
                if counts[0] >= MIN_PATH_PIXELS and counts[1] >= MIN_CAMERA_PIXELS:
                    break
        where = f"; screenshot {SCREENSHOT}"
        self.assertGreaterEqual(counts[0], MIN_PATH_PIXELS, "path pixels" + where)
        self.assertGreaterEqual(counts[1], MIN_CAMERA_PIXELS, "camera pixels" + where)

    def tick(self, t: float) -> None:
        """Inputs stamped t, then the sim clock at t."""
        self.drive.publish_inputs(t)
        time.sleep(0.1)
        self.drive.set_clock(t)


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
