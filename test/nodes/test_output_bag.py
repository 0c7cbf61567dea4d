"""The plans bag `alpamayo-ros replay` writes without ROS (rosbags, our message definitions
read from msg/) played by a real `ros2 bag play` (skipped without ROS 2 and rosbag2): every
DrivingPlan and PlannerStatus arrives and decodes into the generated rclpy types with the
values rosbags reads, so the definitions the offline tools write cannot drift from the
package's messages unnoticed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("ros2bag")
if shutil.which("ros2") is None:
    pytest.skip("no ros2 command (ros2cli)", allow_module_level=True)

from fake_vehicle import Graph  # noqa: E402

from alpamayo_ros.bag.sample_drive import write_sample_bag  # noqa: E402
from alpamayo_ros.msg import DrivingPlan, PlannerStatus  # noqa: E402


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def test_the_replays_plans_bag_plays_in_ros_2_as_written(ros, tmp_path: Path):
    from rosbags.highlevel import AnyReader

    write_sample_bag(tmp_path / "drive", seed=1, kind="combined", duration=4.0)
    cli = Path(sys.executable).with_name("alpamayo-ros")
    replay = subprocess.run(
        [str(cli), "replay", str(tmp_path / "drive"), "--out", str(tmp_path / "out"),
         "--samples", "1", "--flow-steps", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr[-2000:]
    bag = tmp_path / "out" / "plans"
    written: dict[str, list] = {"/alpamayo_planner/plan": [], "/alpamayo_planner/status": []}
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic in written]
        for conn, _, raw in reader.messages(connections=conns):
            written[conn.topic].append(reader.deserialize(raw, conn.msgtype))
    assert written["/alpamayo_planner/plan"] and written["/alpamayo_planner/status"]

    node = rclpy.create_node("output_bag_reader")
    got: dict[str, list] = {"/alpamayo_planner/plan": [], "/alpamayo_planner/status": []}
    for topic, kind in (("/alpamayo_planner/plan", DrivingPlan),
                        ("/alpamayo_planner/status", PlannerStatus)):  # fmt: skip
        node.create_subscription(kind, topic, got[topic].append, 200)
    with Graph(node) as graph:
        # The player waits 3 s with its publishers up before it plays, for discovery: under
        # Fast DDS the first 1.7-2.4 s a player publishes can be lost (replay.launch.py's
        # play_delay), and here all the plans (2.5 s of the bag) were, once.
        play = subprocess.run(
            ["ros2", "bag", "play", "--delay", "3.0", str(bag)], env=os.environ.copy(),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert play.returncode == 0, play.stderr[-2000:]
        assert graph.wait_for(lambda: all(len(got[t]) == len(written[t]) for t in got), 10.0), {
            t: (len(got[t]), len(written[t])) for t in got
        }
    for ours, theirs in zip(got["/alpamayo_planner/plan"], written["/alpamayo_planner/plan"],
                            strict=True):  # fmt: skip
        assert ours.reasoning == theirs.reasoning and ours.lane == theirs.lane
        assert ours.is_fallback == theirs.is_fallback
        assert ours.fallback_reason == theirs.fallback_reason
        assert [p.x for p in ours.points] == [p.x for p in theirs.points]
        assert [p.curvature for p in ours.points] == [p.curvature for p in theirs.points]
        assert list(ours.camera_names) == list(theirs.camera_names)
    for ours, theirs in zip(got["/alpamayo_planner/status"], written["/alpamayo_planner/status"],
                            strict=True):  # fmt: skip
        assert (ours.state, ours.detail, ours.model_ready) == (
            theirs.state, theirs.detail, theirs.model_ready,
        )  # fmt: skip
        assert ours.plans_published == theirs.plans_published
        assert ours.node_started.sec == theirs.node_started.sec > 0
