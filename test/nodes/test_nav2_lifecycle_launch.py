"""drive.launch.py managed:=true autostart:=false respawn:=true brought up by nav2's own
lifecycle manager (nav2_lifecycle_manager with its defaults: bond_timeout 4 s, respawn
reconnection on; launch_testing; skipped without ROS 2 or without nav2): the manager
configures and activates both nodes and forms its bond with each, as with nav2's servers;
the planner plans, the controller engages. The planner's process then killed (SIGKILL, as a
crash): the manager sees its bond broken after 4 s and takes the controller down
(deactivated: the controlled stop); the launch has meanwhile started the planner again
(unconfigured), which the manager finds and brings up with the controller again: both
active, bonds formed again, the new planner plans and the controller follows it."""

from __future__ import annotations

import os
import signal
import time
import unittest

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")

from ament_index_python.packages import PackageNotFoundError, get_package_prefix  # noqa: E402

try:
    get_package_prefix("nav2_lifecycle_manager")
except PackageNotFoundError:
    pytest.skip("nav2_lifecycle_manager is not installed", allow_module_level=True)

from launch import LaunchDescription  # noqa: E402
from launch_files import DriveCase, drive_launch, planner_pids, tiny_planner_params  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

from alpamayo_ros.messages.inputs import stamp_seconds  # noqa: E402

SIM_START = 100.0
NODES = ["alpamayo_planner", "alpamayo_controller"]
WORK = [""]  # set by generate_test_description


@pytest.mark.launch_test
def generate_test_description():
    import tempfile
    from pathlib import Path

    work = Path(tempfile.mkdtemp(prefix="alpamayo_nav2_"))
    WORK[0] = str(work)
    planner_params, _ = tiny_planner_params(
        work, num_samples=1, max_reasoning_tokens=4, num_flow_steps=2, seed=0,
        diagnostics_period=0.5,
    )  # fmt: skip
    drive = drive_launch(planner_params, managed="true", autostart="false", engage="true",
                         respawn="true", respawn_delay="1.0")  # fmt: skip
    manager = Node(
        package="nav2_lifecycle_manager",
        executable="lifecycle_manager",
        name="lifecycle_manager_alpamayo",
        output="screen",
        parameters=[{"node_names": NODES, "autostart": True, "use_sim_time": True}],
    )  # bond_timeout: nav2's default (4 s)
    description = LaunchDescription([drive, manager, launch_testing.actions.ReadyToTest()])
    return description, {"manager": manager}


class TestNav2LifecycleManager(DriveCase):
    sim_start = SIM_START

    def planner_pids(self) -> list[int]:
        return planner_pids(WORK[0])

    def engaged_since(self, start: int) -> list[str]:
        """The controller's `engaged` diagnostics values from the start-th message on."""
        return [kv.value for _, msg in self.drive.received["diag"][start:] for status in msg.status
                if status.name.startswith("alpamayo_controller")
                for kv in status.values if kv.key == "engaged"]  # fmt: skip

    def plans_ticks(self, start: float, count: int) -> list:
        """The model plans of `count` ticks from `start` (each tick's plan awaited)."""
        before = len(self.drive.received["plan"])
        for t in [round(start + 0.1 * k, 6) for k in range(count)]:
            self.assertTrue(self.tick(t), f"no plan for the tick at {t}")
        return [m for _, m in self.drive.received["plan"][before:] if not m.is_fallback]

    def test_the_manager_bonds_takes_all_down_when_one_dies_and_brings_them_back(
        self, proc_output, manager
    ) -> None:
        received = self.drive.received
        for name in NODES:
            proc_output.assertWaitFor(f"Server {name} connected with bond.", process=manager,
                                      timeout=60.0)  # fmt: skip
        proc_output.assertWaitFor("Managed nodes are active", process=manager, timeout=30.0)
        for name in NODES:  # (the test's node may discover their services later)
            self.assertTrue(self.graph.wait_for(lambda n=name: self.state(n) == "active", 30.0),
                            f"{name}: {self.state(name)}")  # fmt: skip
        self.wait_model_ready()
        self.assertGreaterEqual(len(self.plans_ticks(SIM_START, 25)), 5)
        self.assertTrue(self.graph.wait_for(lambda: "yes" in self.engaged_since(0), 10.0))

        first = self.planner_pids()
        self.assertEqual(len(first), 1, first)
        killed_at, killed_wall = time.monotonic(), time.time()
        diag_at_kill = len(received["diag"])
        os.kill(first[0], signal.SIGKILL)
        proc_output.assertWaitFor("CRITICAL FAILURE: SERVER alpamayo_planner IS DOWN",
                                  process=manager, timeout=15.0)  # fmt: skip
        self.assertGreater(time.monotonic() - killed_at, 3.5)  # its heartbeat timeout (4 s)
        # the controller taken down meanwhile: disengaged (the controlled stop)
        self.assertTrue(self.graph.wait_for(lambda: "no" in self.engaged_since(diag_at_kill),
                                            10.0))  # fmt: skip
        proc_output.assertWaitFor("re-established connections from server respawns",
                                  process=manager, timeout=30.0)  # fmt: skip
        for name in NODES:
            self.assertTrue(self.graph.wait_for(lambda n=name: self.state(n) == "active", 30.0),
                            f"{name}: {self.state(name)}")  # fmt: skip
        again = self.planner_pids()
        self.assertEqual(len(again), 1, again)
        self.assertNotEqual(again, first)
        self.assertTrue(self.graph.wait_for(
            lambda: any(s.model_ready and stamp_seconds(s.node_started) > killed_wall
                        for _, s in received["status"]), 120.0),
            "the restarted planner never reported model_ready")  # fmt: skip
        diag_back = len(received["diag"])
        self.assertGreaterEqual(len(self.plans_ticks(SIM_START + 3.0, 25)), 3)
        self.assertTrue(self.graph.wait_for(lambda: "yes" in self.engaged_since(diag_back),
                                            10.0))  # fmt: skip


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_processes_exit_0_but_the_killed_one(self, proc_info) -> None:
        # the killed planner -9; every other process, the restarted planner included, 0
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -9])
