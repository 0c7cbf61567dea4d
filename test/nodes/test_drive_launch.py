"""drive.launch.py end to end (launch_testing; skipped without ROS 2): both nodes start as
processes with a tiny checkpoint on the CPU, on simulated time that this test drives; a fake
vehicle publishes cameras and odometry; one plan per simulated tick; the controller, not
engaged, brakes, and once engaged through its ~/engage service follows the plans; stopping
the cameras gives stop plans, and both nodes exit 0 on shutdown.
Model, device and dtype are given only in the parameter file: the launch file must not
override them with its own defaults."""

from __future__ import annotations

import unittest

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")


from fake_vehicle import SPEED  # noqa: E402
from launch_files import DriveCase, tiny_drive_test  # noqa: E402

CHECKPOINT = [""]  # set by generate_test_description
SIM_START = 100.0


@pytest.mark.launch_test
def generate_test_description():
    description, checkpoint = tiny_drive_test(
        "alpamayo_launch_", num_samples=2, max_reasoning_tokens=4, num_flow_steps=2, seed=0,
        diagnostics_period=0.5,
    )  # fmt: skip
    CHECKPOINT[0] = str(checkpoint)
    return description


class TestDriveLaunch(DriveCase):
    sim_start = SIM_START

    def controller_state(self) -> tuple[str, str] | None:
        """(engaged, mode) of the controller's newest diagnostics, or None before any."""
        items = [{kv.key: kv.value for kv in status.values}
                 for _, msg in self.drive.received["diag"] for status in msg.status
                 if "controller" in status.name]  # fmt: skip
        return (items[-1]["engaged"], items[-1]["mode"]) if items else None

    def test_one_plan_per_tick_commands_and_a_stop_when_cameras_stop(self) -> None:
        received = self.drive.received
        self.wait_model_ready()
        times = [round(SIM_START + 0.1 * k, 6) for k in range(40)]
        for t in times:
            self.assertTrue(self.tick(t), f"no plan for the tick at {t}")
        per_tick = {t: [m for at, m in received["plan"] if abs(at - t) < 1e-9] for t in times}
        self.assertTrue(all(len(v) == 1 for v in per_tick.values()))
        model = [v[0] for t, v in per_tick.items() if t >= SIM_START + 1.6 and not v[0].is_fallback]
        self.assertGreaterEqual(len(model), 20)  # of 24 (a slow delivery may cost a tick)
        self.assertEqual(model[-1].model_id, CHECKPOINT[0])  # the file's model, not a default

        # Not engaged (the default): the controller brakes; the fake car keeps its 5 m/s.
        cmds = [m.linear.x for _, m in received["cmd"]]
        self.assertGreater(len(cmds), 10)
        self.assertEqual(cmds, sorted(cmds, reverse=True))
        self.assertTrue(0.0 <= cmds[-1] < SPEED)
        self.assertTrue(
            self.graph.wait_for(lambda: self.controller_state() == ("no", "stopping"), 10.0),
            self.controller_state(),
        )

        # Engaged through its service, it follows the plans (the tiny model's are random but
        # valid; fresh, since each tick's plan comes before the next tick).
        from std_srvs.srv import SetBool

        client = self.drive.node.create_client(SetBool, "/alpamayo_controller/engage")
        self.assertTrue(client.wait_for_service(timeout_sec=10.0))
        answer = client.call_async(SetBool.Request(data=True))
        self.assertTrue(self.graph.wait_for(answer.done, 10.0))
        self.assertTrue(answer.result().success)
        self.assertTrue(answer.result().message.startswith("engaged"), answer.result().message)
        for t in [round(SIM_START + 4.0 + 0.1 * k, 6) for k in range(10)]:
            self.assertTrue(self.tick(t), f"no plan for the tick at {t}")
        self.assertTrue(
            self.graph.wait_for(lambda: self.controller_state() == ("yes", "tracking"), 10.0),
            self.controller_state(),
        )
        self.assertTrue(all(0.0 <= m.linear.x <= 30.0 for _, m in received["cmd"]))

        self.drive.cameras_on = False
        stopped = SIM_START + 5.0
        for t in [round(stopped + 0.1 * k, 6) for k in range(6)]:
            self.assertTrue(self.tick(t))
        stale = [m for at, m in received["plan"]
                 if at >= stopped and m.fallback_reason.startswith("stale input")]  # fmt: skip
        self.assertTrue(stale)
        self.assertIn("camera_", stale[0].fallback_reason)
        self.assertAlmostEqual(stale[0].points[-1].speed, 0.0, places=6)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_nodes_exit_0(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
