"""GRPO rewards: reasoning quality, reasoning-action consistency, trajectory quality.

Each reward is a function with TRL's reward-function convention: keyword arguments in,
one float per completion out, `reward(completions=[...], **columns) -> list[float]`; the
columns our GRPO loop passes are

    completions:  list[str]              the causal-chain texts
    trajectories: list[UnicycleRollout]  the sampled plans (x, y, heading, speed, accel, ...)
    v0:           list[float]            speed at t0, m/s
    logged_xy:    list[np.ndarray]       (T, 2) m, what the driver did (ego frame at t0)
    agents:       list[np.ndarray]       (T, N, 5) boxes x, y, yaw, length, width (ego frame
                                          at t0) of other agents at each future step

so they can also be handed to TRL's GRPOTrainer. `CombinedReward` weights several.
"""

from __future__ import annotations

import json
import math
import re
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from alpamayo_ros.core.meta_actions import extract_meta_actions, is_consistent, meta_actions_in_text
from alpamayo_ros.core.trajectory import UnicycleRollout

RewardFn = Callable[..., list[float]]

# --- reasoning quality ------------------------------------------------------------------

_CAUSE_LINK = re.compile(
    r"\bbecause\b|\bdue to\b|\bsince\b|\bas\b|:|\bfor\b|\bto (avoid|yield|let)"
)
_SCENE = re.compile(
    r"\b(pedestrian|person|people|cyclist|bicycle|vehicle|car|truck|bus|motorcycle|traffic|"
    r"light|signal|sign|lane|road|intersection|crosswalk|crossing|obstacle|construction|"
    r"curve|turn|junction|merge|clear|speed limit|lead)\w*"
)


def rule_reasoning_score(text: str) -> float:
    """0-5 without a model: 2 for stating an action (a meta-action phrase), 2 for naming a
    cause (a causal link such as ':' or 'because' and something in the scene), 1 for being
    well formed (3 to 40 words, ends a sentence, no word four times in a row).

    >>> rule_reasoning_score("Stop: a pedestrian is crossing the road ahead.")
    5.0
    """
    lowered = text.lower().strip()
    score = 0.0
    if meta_actions_in_text(lowered):
        score += 2.0
    if _CAUSE_LINK.search(lowered) and _SCENE.search(lowered):
        score += 2.0
    words = lowered.split()
    repeated = any(len({*words[i : i + 4]}) == 1 for i in range(max(len(words) - 3, 0)))
    if 3 <= len(words) <= 40 and lowered.endswith((".", "!")) and not repeated:
        score += 1.0
    return score


class Judge(Protocol):
    """Scores causal-chain texts 0-5 (context: optional scene descriptions)."""

    def __call__(
        self, texts: Sequence[str], contexts: Sequence[str] | None = None
    ) -> list[float]: ...


class RuleJudge:
    """The default judge: rule_reasoning_score."""

    def __call__(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[float]:
        return [rule_reasoning_score(t) for t in texts]


class CallableJudge:
    """Any function text -> score (or (text, context) -> score), clamped to 0-5."""

    def __init__(self, fn: Callable[..., float]) -> None:
        self.fn = fn

    def __call__(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[float]:
        ctx = contexts or [""] * len(texts)
        return [min(max(float(self.fn(t, c)), 0.0), 5.0) for t, c in zip(texts, ctx, strict=True)]


JUDGE_RUBRIC = (
    "You grade the reasoning of a self-driving car. Reply with one integer from 0 to 5: "
    "5 = names the action and the specific cause in the scene, concise and plausible; "
    "3 = action or cause vague; 0 = no action, no cause, or nonsense. Reply with the digit only."
)


def judge_request(model: str, text: str, context: str = "") -> dict[str, Any]:
    """The OpenAI-compatible chat-completions body that asks for a 0-5 grade."""
    user = f"Scene: {context}\nReasoning: {text}" if context else f"Reasoning: {text}"
    return {
        "model": model,
        "temperature": 0.0,
        "max_tokens": 4,
        "messages": [
            {"role": "system", "content": JUDGE_RUBRIC},
            {"role": "user", "content": user},
        ],
    }


def parse_judge_score(content: str) -> float:
    """The first digit 0-5 of a judge's reply; 0 when there is none."""
    match = re.search(r"[0-5]", content)
    return float(match.group()) if match else 0.0


class OpenAIJudge:
    """An LLM judge behind an OpenAI-compatible endpoint (vLLM, llama.cpp server, a hosted
    API): POST {base_url}/chat/completions. The user supplies the endpoint; nothing in this
    package calls one by itself."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def _grade(self, text: str, context: str) -> float:
        body = json.dumps(judge_request(self.model, text, context)).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            reply = json.loads(response.read())
        return parse_judge_score(reply["choices"][0]["message"]["content"])

    def __call__(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[float]:
        ctx = contexts or [""] * len(texts)
        return [self._grade(t, c) for t, c in zip(texts, ctx, strict=True)]


def reasoning_reward(
    completions: Sequence[str], judge: Judge | None = None, **kwargs: Any
) -> list[float]:
    """Reasoning quality 0-5 from `judge` (default: RuleJudge)."""
    return (judge or RuleJudge())(list(completions), kwargs.get("scene_descriptions"))


# --- consistency ------------------------------------------------------------------------


def consistency_reward(
    completions: Sequence[str],
    trajectories: Sequence[UnicycleRollout],
    v0: Sequence[float],
    **_: Any,
) -> list[float]:
    """1 when the meta-actions the text states match those of the trajectory, else 0."""
    out = []
    for text, roll, v in zip(completions, trajectories, v0, strict=True):
        extracted = extract_meta_actions(roll.speed, roll.heading, roll.y, float(v), roll.dt)
        out.append(1.0 if is_consistent(meta_actions_in_text(text), extracted) else 0.0)
    return out


# --- trajectory quality -----------------------------------------------------------------


@dataclass(frozen=True)
class TrajectoryRewardSettings:
    """ego_length, ego_width: m; rear_axle_to_centre: m from base_link to the box centre;
    collision_penalty: subtracted once when any step overlaps an agent; jerk_threshold:
    m/s^3; jerk_penalty: per m/s^3 of peak |jerk| above the threshold."""

    ego_length: float = 4.5
    ego_width: float = 1.9
    rear_axle_to_centre: float = 1.4
    collision_penalty: float = 10.0
    jerk_threshold: float = 5.0
    jerk_penalty: float = 0.2


def _corners(x: float, y: float, yaw: float, length: float, width: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    half = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [length / 2, width / 2]
    return half @ np.array([[c, s], [-s, c]]) + [x, y]


def boxes_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two oriented rectangles (4, 2) corners overlap? (separating axis theorem)"""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def collides(roll: UnicycleRollout, agents: np.ndarray, settings: TrajectoryRewardSettings) -> bool:
    """Whether the ego box along the rollout overlaps any agent box at the same step."""
    steps = min(len(roll.x), len(agents))
    for k in range(steps):
        h = float(roll.heading[k])
        cx = roll.x[k] + settings.rear_axle_to_centre * math.cos(h)
        cy = roll.y[k] + settings.rear_axle_to_centre * math.sin(h)
        ego = _corners(cx, cy, h, settings.ego_length, settings.ego_width)
        for box in agents[k]:
            if abs(box[0] - cx) > 50 or abs(box[1] - cy) > 50:  # far away (or padding)
                continue
            if boxes_overlap(ego, _corners(*box)):
                return True
    return False


def trajectory_reward(
    trajectories: Sequence[UnicycleRollout],
    logged_xy: Sequence[np.ndarray],
    agents: Sequence[np.ndarray] | None = None,
    settings: TrajectoryRewardSettings | None = None,
    **_: Any,
) -> list[float]:
    """-(mean distance to the logged path, m) - collision penalty - jerk penalty."""
    s = settings or TrajectoryRewardSettings()
    out = []
    for i, (roll, true_xy) in enumerate(zip(trajectories, logged_xy, strict=True)):
        n = min(len(true_xy), len(roll.x))
        l2 = float(np.linalg.norm(roll.xy[:n] - np.asarray(true_xy)[:n], axis=-1).mean())
        reward = -l2
        if agents is not None and collides(roll, np.asarray(agents[i]), s):
            reward -= s.collision_penalty
        jerk = np.abs(np.diff(roll.accel)) / roll.dt
        peak = float(jerk.max()) if jerk.size else 0.0
        reward -= s.jerk_penalty * max(0.0, peak - s.jerk_threshold)
        out.append(reward)
    return out


class CombinedReward:
    """sum_i weight_i * reward_i(**columns), and each part (for logging)."""

    def __init__(self, parts: dict[str, tuple[float, RewardFn]]) -> None:
        self.parts = parts
        self.last: dict[str, list[float]] = {}

    @classmethod
    def default(cls, judge: Judge | None = None) -> CombinedReward:
        """The three rewards of the paper: reasoning (0-5) scaled to 0-1, consistency 0/1,
        trajectory quality (metres, negative)."""
        return cls(
            {
                "reasoning": (0.2, lambda **kw: reasoning_reward(judge=judge, **kw)),
                "consistency": (1.0, consistency_reward),
                "trajectory": (1.0, trajectory_reward),
            }
        )

    def __call__(self, **columns: Any) -> list[float]:
        self.last = {name: fn(**columns) for name, (_, fn) in self.parts.items()}
        n = len(columns["completions"])
        return [
            sum(w * self.last[name][i] for name, (w, _) in self.parts.items()) for i in range(n)
        ]
