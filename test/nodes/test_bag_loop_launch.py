"""replay.launch.py loop:=true with a real `ros2 bag play --loop` (launch_testing; skipped
without ROS 2 and rosbag2): the synthetic sample drive (6 s) played again and again at real
time with --clock, the planner in two_lane with the tiny checkpoint on the CPU.

At each new pass the player's clock jumps back to the start of the bag. The planner must
count each jump, and it must plan every pass on that pass's own inputs and causal chains.
So the plans fall into whole passes, with no stray plan of an earlier pass published after
a jump. The second pass is planned at 10 Hz once the ego history is full again, and no
trajectory-lane plan reuses a chain written after its own inputs (a chain of the previous
pass). The controller counts the jumps too, tracks plans again on the second pass, and never
tracks a plan stamped ahead of its clock.

Like the other real-time tests, this depends on the machine keeping up: it skips, saying
so, when the model's own calls were too slow for 10 Hz."""

from __future__ import annotations

import shutil
import tempfile
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")
pytest.importorskip("ros2bag")
if shutil.which("ros2") is None:
    pytest.skip("no ros2 command (ros2cli)", allow_module_level=True)

from launch import LaunchDescription  # noqa: E402
from launch_files import DriveCase, check_ticks_planned, sample_bag_replay  # noqa: E402

from alpamayo_ros.messages.inputs import stamp_seconds  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="alpamayo_bag_loop_"))
DURATION = 6.0  # s of the sample drive
BAG_SPAN: list[float] = []  # first and last message time (s), set below


@pytest.mark.launch_test
def generate_test_description():
    replay, BAG_SPAN[:] = sample_bag_replay(
        WORK, DURATION, seed=1, loop="true", enable_controller="true"
    )
    return LaunchDescription([replay, launch_testing.actions.ReadyToTest()])


def passes(plans: list) -> list[list]:
    """The plans (in arrival order) cut where the stamp goes back by more than 0.5 s."""
    out: list[list] = []
    for msg in plans:
        t0 = stamp_seconds(msg.header.stamp)
        if not out or t0 < stamp_seconds(out[-1][-1].header.stamp) - 0.5:
            out.append([])
        out[-1].append(msg)
    return out


class TestBagLoop(DriveCase):
    sim_start = 0.0  # only listens: the bag publishes the inputs

    def test_each_pass_of_a_looped_bag_is_planned_on_its_own(self) -> None:
        received = self.drive.received
        start, end = BAG_SPAN
        self.wait_model_ready()
        # Two jumps: the second pass is over and the third has begun.
        self.assertTrue(
            self.graph.wait_for(
                lambda: any(s.time_jumps >= 2 for _, s in received["status"]),
                3 * DURATION + 60.0,
            ),
            f"time jumps seen: {max((s.time_jumps for _, s in received['status']), default=0)}",
        )
        plans = [m for _, m in received["plan"]]
        cut = passes(plans)
        self.assertGreaterEqual(len(cut), 3, [len(p) for p in cut])
        for k, one in enumerate(cut[:-1]):  # whole passes: no stray plan of another pass
            first, last = stamp_seconds(one[0].header.stamp), stamp_seconds(one[-1].header.stamp)
            self.assertGreater(last - first, end - start - 1.0, f"pass {k}: {first}..{last}")
        second = {round(stamp_seconds(m.header.stamp), 2): m for m in cut[1]}
        self.assertLess(min(second), start + 0.5)  # the new pass planned from its start
        model = check_ticks_planned(self, second, (start + 2.5, end - 0.2))
        for m in model:  # chains written for this pass's inputs, at or before them
            if m.lane == "trajectory":
                chain, t0 = stamp_seconds(m.chain_stamp), stamp_seconds(m.header.stamp)
                self.assertLessEqual(chain, t0 + 1e-6)
                self.assertGreaterEqual(chain, start - 1e-6)

        def controller() -> list[dict[str, str]]:  # its diagnostics' values, in order
            return [{v.key: v.value for v in s.values} for _, a in received["diag"]
                    for s in a.status if "controller" in s.name]  # fmt: skip

        self.assertTrue(self.graph.wait_for(
            lambda: any(int(v["time jumps"]) >= 2 for v in controller()), 10.0))  # fmt: skip
        values = controller()
        self.assertTrue(any(v["mode"] == "tracking" and v["time jumps"] == "1" for v in values))
        ages = [float(v["plan age [s]"]) for v in values if v["mode"] == "tracking"]
        self.assertGreaterEqual(min(ages), -0.05)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_the_nodes_and_the_player_exit_0(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
