"""drive.launch.py managed:=true end to end (launch_testing; skipped without ROS 2): both
nodes started as lifecycle nodes that configure and activate themselves (autostart): both
report the state active, the planner plans every simulated tick with its tiny checkpoint,
the controller (engage:=true) engages on activation; both nodes exit 0."""

from __future__ import annotations

import unittest

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")


from launch_files import DriveCase, tiny_drive_test  # noqa: E402

SIM_START = 100.0


@pytest.mark.launch_test
def generate_test_description():
    description, _ = tiny_drive_test(
        "alpamayo_managed_", {"managed": "true", "engage": "true"}, num_samples=1,
        max_reasoning_tokens=4, num_flow_steps=2, seed=0, diagnostics_period=0.5,
    )  # fmt: skip
    return description


class TestManagedDrive(DriveCase):
    sim_start = SIM_START

    def test_autostart_activates_both_nodes_which_plan_and_drive(self) -> None:
        received = self.drive.received
        self.wait_model_ready()
        for node in ("alpamayo_planner", "alpamayo_controller"):
            self.assertTrue(
                self.graph.wait_for(lambda node=node: self.state(node) == "active", 30.0),
                f"{node} not active: {self.state(node)}",
            )
        times = [round(SIM_START + 0.1 * k, 6) for k in range(30)]
        for t in times:
            self.assertTrue(self.tick(t), f"no plan for the tick at {t}")
        model = [m for at, m in received["plan"] if at >= SIM_START + 1.6 and not m.is_fallback]
        self.assertGreaterEqual(len(model), 10)  # of 14 (a slow delivery may cost a tick)
        self.assertTrue(self.graph.wait_for(lambda: len(received["cmd"]) > 10, 10.0))
        statuses = [status for _, msg in received["diag"] for status in msg.status]
        items = [{kv.key: kv.value for kv in status.values} for status in statuses
                 if status.name == "alpamayo_controller"]  # fmt: skip
        self.assertTrue(items, [s.name for s in statuses])
        self.assertEqual(items[-1]["engaged"], "yes")  # engaged on activation
        # no lifecycle manager here: each active node's bond waits for one, which is OK;
        # a ROS 2 without the bond package has no bond (the nodes say so once at start-up)
        from diagnostic_msgs.msg import DiagnosticStatus

        from alpamayo_ros.nodes.bond import bond_messages

        ok = DiagnosticStatus.OK
        bonds = {s.name: s.level for s in statuses if s.name.endswith(": bond")}
        expected = {"alpamayo_planner: bond": ok, "alpamayo_controller: bond": ok}
        self.assertEqual(bonds, expected if bond_messages() is not None else {})


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_nodes_exit_0(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
