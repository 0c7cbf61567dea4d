"""drive.launch.py namespace:=vehicle1 end to end (launch_testing; skipped without ROS 2):
both nodes and their topics and services under /vehicle1, the inputs absolute as the rig
names them; the planner parameter file keyed `/**/alpamayo_planner` (as the shipped one)
reaches the namespaced node: its tiny checkpoint plans every simulated tick; the
controller engaged through /vehicle1/alpamayo_controller/engage commands
/vehicle1/cmd_vel; both nodes exit 0."""

from __future__ import annotations

import unittest

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")


from launch_files import DriveCase, tiny_drive_test  # noqa: E402

CHECKPOINT = [""]  # set by generate_test_description
SIM_START = 100.0
NAMESPACE = "vehicle1"


@pytest.mark.launch_test
def generate_test_description():
    description, checkpoint = tiny_drive_test(
        "alpamayo_launch_", {"namespace": NAMESPACE, "engage": "true"}, num_samples=1,
        max_reasoning_tokens=4, num_flow_steps=2, seed=0, diagnostics_period=0.5,
    )  # fmt: skip
    CHECKPOINT[0] = str(checkpoint)
    return description


class TestNamespacedDrive(DriveCase):
    sim_start = SIM_START
    namespace = NAMESPACE

    def test_the_nodes_plan_and_drive_under_the_namespace(self) -> None:
        received = self.drive.received
        self.wait_model_ready()
        names = self.drive.node.get_node_names_and_namespaces()
        self.assertIn(("alpamayo_planner", f"/{NAMESPACE}"), names)
        self.assertIn(("alpamayo_controller", f"/{NAMESPACE}"), names)
        times = [round(SIM_START + 0.1 * k, 6) for k in range(30)]
        for t in times:
            self.assertTrue(self.tick(t), f"no plan for the tick at {t}")
        model = [m for at, m in received["plan"] if at >= SIM_START + 1.6 and not m.is_fallback]
        self.assertGreaterEqual(len(model), 10)  # of 14 (a slow delivery may cost a tick)
        self.assertEqual(model[-1].model_id, CHECKPOINT[0])  # the file reached the node
        self.assertEqual(model[-1].num_samples, 1)  # the file's, not the default 6

        from std_srvs.srv import SetBool

        client = self.drive.node.create_client(SetBool, f"/{NAMESPACE}/alpamayo_controller/engage")
        self.assertTrue(client.wait_for_service(timeout_sec=10.0))
        self.assertTrue(self.graph.wait_for(lambda: len(received["cmd"]) > 10, 10.0))
        # engage:=true: the controller follows the namespaced plans (it is tracking)
        items = [{kv.key: kv.value for kv in status.values}
                 for _, msg in received["diag"] for status in msg.status
                 if status.name.startswith(f"{NAMESPACE}/alpamayo_controller")]  # fmt: skip
        self.assertTrue(items, [s.name for _, m in received["diag"] for s in m.status])
        self.assertEqual(items[-1]["engaged"], "yes")


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_nodes_exit_0(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
