"""Rewards with hand-computed values."""

import math

import numpy as np
import pytest

from alpamayo_ros.core.plan import stop_controls
from alpamayo_ros.core.trajectory import integrate
from alpamayo_ros.training.rewards import (
    CallableJudge,
    CombinedReward,
    TrajectoryRewardSettings,
    boxes_overlap,
    consistency_reward,
    judge_request,
    parse_judge_score,
    reasoning_reward,
    rule_reasoning_score,
    trajectory_reward,
)


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("Stop: a pedestrian is crossing the road ahead.", 5.0),  # action 2 + cause 2 + form 1
        ("Slowing down because the lead vehicle brakes.", 5.0),
        ("stop", 2.0),  # an action only; one word is not well formed
        ("The weather is nice today.", 1.0),  # well formed, no action, no cause
        ("slow slow slow slow", 2.0),  # an action, repeated words
        ("Keep speed", 2.0),
        ("Decelerate: the lead vehicle ahead is braking.", 5.0),
    ],
)
def test_rule_reasoning_score(text, score):
    assert rule_reasoning_score(text) == score


def test_judges():
    assert reasoning_reward(["Stop: a pedestrian is crossing the road ahead."]) == [5.0]
    judge = CallableJudge(lambda text, context: len(text))  # clamped to 0..5
    assert reasoning_reward(["ab", "abcdefgh"], judge=judge) == [2.0, 5.0]
    assert parse_judge_score("4") == 4.0 and parse_judge_score("Score: 3/5") == 3.0
    assert parse_judge_score("no idea") == 0.0 and parse_judge_score("9") == 0.0
    body = judge_request("judge-model", "Stop: red light.", "intersection")
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    assert "Reasoning: Stop: red light." in body["messages"][1]["content"]


def constant(speed: float, accel: float = 0.0):
    return integrate(np.tile([accel, 0.0], (64, 1)), speed)


def test_consistency_reward():
    rolls = [constant(8.0), constant(8.0), integrate(stop_controls(8.0, 2.0), 8.0)]
    texts = ["Keep speed: the road ahead is clear.", "Stop: a pedestrian.", "Stop: red light."]
    # 8 m/s at -2 m/s^2 stops after 4 s: "stop" is what the trajectory does.
    assert consistency_reward(texts, rolls, [8.0, 8.0, 8.0]) == [1.0, 0.0, 1.0]


def test_trajectory_reward_hand_computed():
    t = 0.1 * np.arange(1, 65)
    logged = np.stack([9.0 * t, np.zeros(64)], axis=1)
    # 10 m/s against 9 m/s: 1 m/s * t apart, mean over t = 0.1 ... 6.4 s = 3.25 m
    assert trajectory_reward([constant(10.0)], [logged]) == [pytest.approx(-3.25)]
    # a parked car 20 m ahead in our lane: hit at 2 s -> collision penalty 10
    agents = np.zeros((64, 1, 5))
    agents[:, 0] = [20.0, 0.0, 0.0, 4.5, 1.8]
    assert trajectory_reward([constant(10.0)], [logged], [agents]) == [pytest.approx(-13.25)]
    agents[:, 0, 1] = 4.0  # one lane over: no collision
    assert trajectory_reward([constant(10.0)], [logged], [agents]) == [pytest.approx(-3.25)]
    # acceleration jumps 0 -> 2 m/s^2 in 0.1 s: jerk 20 m/s^3, 15 over the threshold
    controls = np.zeros((64, 2))
    controls[32:, 0] = 2.0
    roll = integrate(controls, 9.0)
    (r,) = trajectory_reward([roll], [roll.xy], settings=TrajectoryRewardSettings())
    assert r == pytest.approx(-0.2 * 15.0)


def test_boxes_overlap():
    def square(x, y, yaw=0.0, size=1.0):
        c, s = math.cos(yaw), math.sin(yaw)
        half = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * size / 2
        return half @ np.array([[c, s], [-s, c]]) + [x, y]

    assert boxes_overlap(square(0, 0), square(0.5, 0.5))
    assert not boxes_overlap(square(0, 0), square(1.2, 0))
    # a diamond whose tip reaches to 0.5 + 0.707 = 1.207 m: overlaps a square 1.1 m away
    assert boxes_overlap(square(0, 0, math.pi / 4), square(1.1, 0))
    assert not boxes_overlap(square(0, 0, math.pi / 4), square(1.25, 0))


def test_combined_reward_weights_and_parts():
    t = 0.1 * np.arange(1, 65)
    logged = np.stack([8.0 * t, np.zeros(64)], axis=1)
    combined = CombinedReward.default()
    (total,) = combined(
        completions=["Keep speed: the road ahead is clear."],
        trajectories=[constant(8.0)],
        v0=[8.0],
        logged_xy=[logged],
        agents=[np.zeros((64, 0, 5))],
    )
    assert combined.last["reasoning"] == [5.0] and combined.last["consistency"] == [1.0]
    assert total == pytest.approx(0.2 * 5.0 + 1.0 + combined.last["trajectory"][0])
    assert combined.last["trajectory"][0] == pytest.approx(0.0, abs=1e-9)
