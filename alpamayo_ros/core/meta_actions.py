"""Meta-actions: what a trajectory does, in words from a fixed set (and the same words in text).

A plan carries one longitudinal and one lateral meta-action extracted by rules from its
trajectory. The same vocabulary, found in a reasoning text by `meta_actions_in_text`, gives
the reasoning-action consistency reward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ACCELERATE = "accelerate"
KEEP_SPEED = "keep_speed"
DECELERATE = "decelerate"
STOP = "stop"
GO_STRAIGHT = "go_straight"
TURN_LEFT = "turn_left"
TURN_RIGHT = "turn_right"
LANE_CHANGE_LEFT = "lane_change_left"
LANE_CHANGE_RIGHT = "lane_change_right"

LONGITUDINAL: tuple[str, ...] = (ACCELERATE, KEEP_SPEED, DECELERATE, STOP)
LATERAL: tuple[str, ...] = (GO_STRAIGHT, TURN_LEFT, TURN_RIGHT, LANE_CHANGE_LEFT, LANE_CHANGE_RIGHT)
META_ACTIONS: tuple[str, ...] = LONGITUDINAL + LATERAL


@dataclass(frozen=True)
class MetaActionThresholds:
    """Rule thresholds.

    longitudinal_horizon: seconds of the plan judged for speed changes (near-term intent);
        a plan whose last speed is under stop_speed is a stop, whatever its horizon.
    accel_threshold: mean |acceleration| over that horizon above which the plan accelerates
        or decelerates, m/s^2.
    stop_speed: speed under which the vehicle counts as stopped, m/s.
    turn_angle: net heading change over the whole plan that makes a turn, rad.
    lane_change_offset: lateral offset at the end that makes a lane change, m, when the
        final heading is back within lane_change_heading rad of the initial one.
    """

    longitudinal_horizon: float = 3.0
    accel_threshold: float = 0.3
    stop_speed: float = 0.5
    turn_angle: float = 0.35
    lane_change_offset: float = 2.0
    lane_change_heading: float = 0.1

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not value > 0:
                raise ValueError(f"MetaActionThresholds.{name} must be > 0, got {value}")


def extract_meta_actions(
    speed: np.ndarray,
    heading: np.ndarray,
    y: np.ndarray,
    v0: float,
    dt: float,
    thresholds: MetaActionThresholds | None = None,
) -> tuple[str, str]:
    """(longitudinal, lateral) meta-actions of one trajectory.

    speed: (T,) m/s, heading: (T,) rad, y: (T,) metres left of the start, at t = dt..T dt,
    in the ego frame at t0; v0: speed at t0, m/s; dt: seconds per step.
    """
    th = thresholds or MetaActionThresholds()
    speed = np.asarray(speed, dtype=np.float64)
    n = max(1, min(len(speed), round(th.longitudinal_horizon / dt)))
    v_end = speed[n - 1]
    mean_accel = (v_end - v0) / (n * dt)
    if abs(speed[-1]) < th.stop_speed:  # comes to (or stays at) a stop within the plan
        longitudinal = STOP
    elif mean_accel > th.accel_threshold:
        longitudinal = ACCELERATE
    elif mean_accel < -th.accel_threshold:
        longitudinal = DECELERATE
    else:
        longitudinal = KEEP_SPEED

    dh = float(np.asarray(heading)[-1])
    y_end = float(np.asarray(y)[-1])
    if abs(dh) >= th.turn_angle:
        lateral = TURN_LEFT if dh > 0 else TURN_RIGHT
    elif abs(y_end) >= th.lane_change_offset and abs(dh) <= th.lane_change_heading:
        lateral = LANE_CHANGE_LEFT if y_end > 0 else LANE_CHANGE_RIGHT
    else:
        lateral = GO_STRAIGHT
    return longitudinal, lateral


# Phrases of reasoning text that state a meta-action. Order matters: the first pattern of a
# group that matches wins, so "lane change left" is not read as "turn left".
_TEXT_PATTERNS: tuple[tuple[str, str], ...] = (
    (LANE_CHANGE_LEFT, r"(lane[ -]?change|change lanes?|merge|move over)\w*\s+(to\s+the\s+)?left"),
    (
        LANE_CHANGE_RIGHT,
        r"(lane[ -]?change|change lanes?|merge|move over)\w*\s+(to\s+the\s+)?right",
    ),
    (TURN_LEFT, r"\bturn(s|ing)?\s+(to\s+the\s+)?left|\bleft\s+turn"),
    (TURN_RIGHT, r"\bturn(s|ing)?\s+(to\s+the\s+)?right|\bright\s+turn"),
    (
        GO_STRAIGHT,
        r"\b(go(ing)?|continu\w*|proceed\w*|driv\w*)\s+straight|\bstay\w* in (the|my) lane",
    ),
    (STOP, r"\bstop(s|ping)?\b|\bcome to a (full )?stop|\bhalt|\bwait(s|ing)?\b|\byield"),
    (DECELERATE, r"\bslow(s|ing)?( down)?\b|\bdecelerat\w*|\bbrak\w*|\breduc\w* speed"),
    (ACCELERATE, r"\baccelerat\w*|\bspeed(s|ing)? up|\bpull(s|ing)? away|\bpick\w* up speed"),
    (
        KEEP_SPEED,
        r"\bkeep\w* (the |my |a )?(current |steady )?speed|\bmaintain\w*|\bcruis\w*"
        r"|\bconstant speed",
    ),
)


def meta_actions_in_text(text: str) -> set[str]:
    """Meta-actions a reasoning text states, by keyword rules (lower-case matching).

    >>> sorted(meta_actions_in_text("Slowing: pedestrian stepping into the crosswalk ahead"))
    ['decelerate']
    """
    lowered = text.lower()
    found = {action for action, pattern in _TEXT_PATTERNS if re.search(pattern, lowered)}
    if found & {LANE_CHANGE_LEFT, LANE_CHANGE_RIGHT}:
        found -= {TURN_LEFT, TURN_RIGHT}
    return found


def is_consistent(stated: set[str], extracted: tuple[str, str]) -> bool:
    """Reasoning-action consistency: every stated meta-action of a kind (longitudinal,
    lateral) equals the extracted one of that kind, and the text states at least one.

    `decelerate` stated with `stop` extracted is consistent (slowing to a stop); so is an
    unstated lateral action when the trajectory goes straight.
    """
    if not stated:
        return False
    longitudinal, lateral = extracted
    stated_long = stated & set(LONGITUDINAL)
    stated_lat = stated & set(LATERAL)
    long_ok = (
        not stated_long
        or stated_long <= {longitudinal}
        or (longitudinal == STOP and stated_long <= {STOP, DECELERATE})
    )
    lat_ok = stated_lat <= {lateral} if stated_lat else True
    return bool(long_ok and lat_ok)
