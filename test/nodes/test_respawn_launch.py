"""drive.launch.py managed:=true respawn:=true end to end (launch_testing; skipped without
ROS 2): the planner's process is killed (SIGKILL, as a crash); the launch starts it again
after respawn_delay, configures and activates it again (autostart), it loads its model and
plans every simulated tick again, and the controller, engaged, follows its plans again."""

from __future__ import annotations

import os
import signal
import time
import unittest

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")


from launch_files import DriveCase, planner_pids, tiny_drive_test  # noqa: E402

from alpamayo_ros.messages.inputs import stamp_seconds  # noqa: E402

SIM_START = 100.0
CHECKPOINT = [""]  # set by generate_test_description


@pytest.mark.launch_test
def generate_test_description():
    arguments = {"managed": "true", "respawn": "true", "respawn_delay": "1.0", "engage": "true"}
    description, checkpoint = tiny_drive_test(
        "alpamayo_respawn_", arguments, num_samples=1, max_reasoning_tokens=4,
        num_flow_steps=2, seed=0, diagnostics_period=0.5,
    )  # fmt: skip
    CHECKPOINT[0] = str(checkpoint)
    return description


class TestRespawn(DriveCase):
    sim_start = SIM_START

    def planner_pids(self) -> list[int]:
        return planner_pids(os.path.dirname(os.path.dirname(CHECKPOINT[0]) + "/"))

    def plans_ticks(self, start: float, count: int) -> None:
        for t in [round(start + 0.1 * k, 6) for k in range(count)]:
            self.assertTrue(self.tick(t), f"no plan for the tick at {t}")

    def test_a_killed_planner_is_started_configured_and_activated_again(self) -> None:
        received = self.drive.received
        self.wait_model_ready()
        self.assertTrue(self.graph.wait_for(lambda: self.state("alpamayo_planner") == "active",
                                            30.0))  # fmt: skip
        self.plans_ticks(SIM_START, 20)
        first = self.planner_pids()
        self.assertEqual(len(first), 1, first)
        killed_at = time.time()
        os.kill(first[0], signal.SIGKILL)
        self.assertTrue(self.graph.wait_for(
            lambda: any(s.model_ready and stamp_seconds(s.node_started) > killed_at
                        for _, s in received["status"]), 120.0),
            "the restarted planner never reported model_ready")  # fmt: skip
        self.assertTrue(self.graph.wait_for(lambda: self.state("alpamayo_planner") == "active",
                                            30.0))  # fmt: skip
        again = self.planner_pids()
        self.assertEqual(len(again), 1, again)
        self.assertNotEqual(again, first)
        before = len(received["plan"])
        self.plans_ticks(SIM_START + 2.0, 20)  # its history fills again from these ticks
        model = [m for _, m in received["plan"][before:] if not m.is_fallback]
        self.assertGreaterEqual(len(model), 3)
        self.assertEqual(model[-1].model_id, CHECKPOINT[0])


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_nodes_exit_0_but_the_killed_one(self, proc_info) -> None:
        # the killed planner's process ended by SIGKILL (-9); every other process, the
        # restarted planner included, exits 0 at the launch's end
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -9])
