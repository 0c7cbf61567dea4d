"""drive.launch.py managed:=true autostart:=false brought up by nav2's own lifecycle manager
(nav2_lifecycle_manager, its default bond_timeout of 4 s; launch_testing; skipped without
ROS 2 or without nav2): the manager configures and activates both nodes and forms its bond
with each, as with nav2's servers; the planner plans, the controller engages. The planner's
process then killed (SIGKILL, as a crash), the manager sees its bond broken and takes the
controller down (deactivated: the controlled stop)."""

from __future__ import annotations

import os
import signal
import subprocess
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
from launch_files import DriveCase, drive_launch, tiny_planner_params  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

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
    drive = drive_launch(planner_params, managed="true", autostart="false", engage="true")
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

    def state(self, node: str) -> str:
        from lifecycle_msgs.srv import GetState

        client = self.drive.node.create_client(GetState, f"/{node}/get_state")
        try:
            if not client.wait_for_service(timeout_sec=2.0):
                return "unreachable"
            future = client.call_async(GetState.Request())
            if not self.graph.wait_for(future.done, 5.0):
                return "no answer"
            return future.result().current_state.label
        finally:
            self.drive.node.destroy_client(client)

    def planner_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-f", f"alpamayo_planner.*{WORK[0]}"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        return [int(p) for p in out.stdout.split()]

    def test_the_manager_bonds_with_both_and_takes_them_down_when_one_dies(
        self, proc_output, manager
    ) -> None:
        received = self.drive.received
        for name in NODES:
            proc_output.assertWaitFor(f"Server {name} connected with bond.", process=manager,
                                      timeout=60.0)  # fmt: skip
        proc_output.assertWaitFor("Managed nodes are active", process=manager, timeout=30.0)
        for name in NODES:
            self.assertEqual(self.state(name), "active", name)
        self.wait_model_ready()
        for t in [round(SIM_START + 0.1 * k, 6) for k in range(25)]:
            self.assertTrue(self.tick(t), f"no plan for the tick at {t}")
        model = [m for at, m in received["plan"] if at >= SIM_START + 1.6 and not m.is_fallback]
        self.assertGreaterEqual(len(model), 5)
        self.assertTrue(self.graph.wait_for(lambda: len(received["cmd"]) > 10, 10.0))
        self.assertIn("yes", [kv.value for _, msg in received["diag"] for status in msg.status
                              for kv in status.values if kv.key == "engaged"])  # fmt: skip

        pids = self.planner_pids()
        self.assertEqual(len(pids), 1, pids)
        killed_at = time.monotonic()
        os.kill(pids[0], signal.SIGKILL)
        proc_output.assertWaitFor("CRITICAL FAILURE: SERVER alpamayo_planner IS DOWN",
                                  process=manager, timeout=15.0)  # fmt: skip
        noticed = time.monotonic() - killed_at
        self.assertGreater(noticed, 3.5)  # the heartbeat timeout (4 s), not an earlier guess
        self.assertTrue(
            self.graph.wait_for(lambda: self.state("alpamayo_controller") == "inactive", 20.0),
            self.state("alpamayo_controller"),
        )
        deactivated = len(received["diag"])

        def engaged() -> list[str]:
            return [kv.value for _, msg in received["diag"][deactivated:] for status in msg.status
                    if status.name.startswith("alpamayo_controller")
                    for kv in status.values if kv.key == "engaged"]  # fmt: skip

        self.assertTrue(self.graph.wait_for(lambda: len(engaged()) >= 2, 10.0))
        self.assertEqual(set(engaged()), {"no"})  # disengaged: the controlled stop


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_processes_exit_0_but_the_killed_one(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -9])
