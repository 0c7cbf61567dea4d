"""drive.launch.py at the speed of a bag played at real time (launch_testing; skipped
without ROS 2): planning_mode two_lane, the tiny checkpoint on the CPU; the test publishes
/clock at wall-clock pace, as `ros2 bag play --clock` does, and the inputs every 0.1 s of it.
The planner must publish a plan for (nearly) every tick of the 10 Hz timer, most of them
model plans of the trajectory lane with a chain no older than max_chain_age (1 s, past
which stale chains get reasoning steps after each plan) + 0.5 s for those steps to finish
it, and no plan may be a model error (this test found chains holding <|image_pad|>,
which the lane could not read back).

This is the one test that depends on the machine keeping up (a trajectory-lane plan of the
tiny model takes ~40 ms on 2 idle CPU cores): it counts per simulated second, allows a
tenth of the ticks to be lost, and skips (saying so) when the model's own calls were too
slow for 10 Hz, which is the machine's load and not the node's doing."""

from __future__ import annotations

import time
import unittest

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")


from launch_files import (  # noqa: E402
    DriveCase,
    check_ticks_planned,
    tiny_drive_test,
)

from alpamayo_ros.messages.inputs import stamp_seconds  # noqa: E402

SIM_START = 100.0
SECONDS = 8.0  # of simulated (= wall) time; the first 2 s fill the ego history
MAX_CHAIN_AGE = 1.0  # s: past it, reasoning steps also run while an input waits
# A chain older than MAX_CHAIN_AGE gets stale_chain_slice of reasoning after each plan until
# it is done, so trajectory-lane plans may use it for a few more cycles.
CHAIN_AGE_LIMIT = MAX_CHAIN_AGE + 0.5


@pytest.mark.launch_test
def generate_test_description():
    description, _ = tiny_drive_test(
        "alpamayo_realtime_", planning_mode="two_lane", num_samples=2, max_reasoning_tokens=8,
        num_flow_steps=2, seed=0, max_chain_age=MAX_CHAIN_AGE,
    )  # fmt: skip
    return description


class TestRealtimeTwoLanes(DriveCase):
    sim_start = SIM_START

    def test_two_lanes_plan_every_tick_at_real_time(self) -> None:
        received = self.drive.received
        self.wait_model_ready()
        # /clock every 10 ms of wall time; inputs stamped every 0.1 s just before the clock
        # reaches them (a bag holds them in stamp order).
        start = time.monotonic()
        for k in range(int(SECONDS * 100) + 1):
            t = round(SIM_START + 0.01 * k, 6)
            if k % 10 == 0:
                self.drive.publish_inputs(t)
            time.sleep(max(0.0, start + 0.01 * k - time.monotonic()))
            self.drive.set_clock(t)
        time.sleep(0.5)  # the last plans on their way
        window = (SIM_START + 2.0, SIM_START + SECONDS)
        stamps = {round(stamp_seconds(m.header.stamp), 1): m for _, m in received["plan"]}
        model = check_ticks_planned(self, stamps, window)
        ages = [stamp_seconds(m.header.stamp) - stamp_seconds(m.chain_stamp)
                for m in model if m.lane == "trajectory"]  # fmt: skip
        self.assertTrue(ages)
        self.assertLessEqual(max(ages), CHAIN_AGE_LIMIT, f"chain ages {sorted(ages)[-5:]}")


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_nodes_exit_0(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
