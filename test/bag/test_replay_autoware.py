"""replay --autoware: the plans bag carries Autoware's Trajectory of the published plan and
CandidateTrajectories of every valid sample (the stop plan alone while there is none)."""

import numpy as np

from alpamayo_ros.bag.reader import Bag
from alpamayo_ros.bag.replay import PLANNER_NAMESPACE
from alpamayo_ros.bag.sample_drive import write_sample_bag
from alpamayo_ros.cli import main
from alpamayo_ros.messages.autoware import generator_uuid, states_from_autoware
from alpamayo_ros.messages.plan import plan_from_msg


def test_replay_writes_trajectory_and_candidates(tmp_path, tiny_checkpoint):
    bag = tmp_path / "drive"
    write_sample_bag(bag, seed=2, duration=2.5)
    out = tmp_path / "out"
    argv = ["replay", str(bag), "--model", str(tiny_checkpoint), "--out", str(out),
            "--samples", "3", "--max-reasoning-tokens", "2", "--flow-steps", "1",
            "--autoware", "2.7"]  # fmt: skip
    assert main(argv) == 0
    ns = PLANNER_NAMESPACE
    topics = [f"{ns}/plan", f"{ns}/autoware/trajectory", f"{ns}/autoware/candidate_trajectories"]
    with Bag(out / "plans") as plans:
        by_topic: dict[str, list] = {t: [] for t in topics}
        for topic, _, msg in plans.messages(topics):
            by_topic[topic].append(msg)
    driving = [plan_from_msg(m) for m in by_topic[topics[0]]]
    assert len(driving) == len(by_topic[topics[1]]) == len(by_topic[topics[2]]) > 0
    seen_model = False
    for plan, traj, cands in zip(driving, by_topic[topics[1]], by_topic[topics[2]], strict=True):
        assert np.abs(states_from_autoware(traj)["xyz"] - plan.xyz).max() < 1e-6
        if plan.is_fallback:
            assert len(cands.candidate_trajectories) == 1
            continue
        seen_model = True
        assert 1 <= len(cands.candidate_trajectories) <= 3
        assert bytes(cands.generator_info[0].generator_id.uuid) == generator_uuid(plan.model_id)
        chosen = [states_from_autoware(c)["xyz"] for c in cands.candidate_trajectories]
        assert any(np.abs(xyz - plan.xyz).max() < 1e-6 for xyz in chosen)
    assert seen_model
