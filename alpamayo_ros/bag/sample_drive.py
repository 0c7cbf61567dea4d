"""A synthetic drive written as a ROS 2 bag: the fresh-machine demo input and training data.

A car follows the middle lane of a straight three-lane road (odom x forward at the start)
with an intelligent-driver-model speed law that reacts to what is ahead: a lead vehicle that
brakes, a pedestrian crossing. Four cameras with the released model's names are rendered
with OpenCV (sky, grass, road, lane markings, boxes for the vehicle and the pedestrian);
odometry, tf, tf_static (camera extrinsics) and camera_info are written beside them, plus
`coc_annotations.jsonl`: a templated causal chain per 0.1 s, for training. Everything is
deterministic from the seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from transforms3d.quaternions import mat2quat

from alpamayo_ros.bag.messages import BagWriter, MessageFactory, yaw_quaternion
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.frame_buffer import RELEASED_CAMERAS
from alpamayo_ros.core.meta_actions import extract_meta_actions

ScenarioKind = Literal["lead_brake", "pedestrian", "clear", "combined"]
LANE_WIDTH = 3.5


@dataclass(frozen=True)
class CameraModel:
    """A pinhole camera on the car: yaw about +z from the car's x axis (rad), horizontal
    field of view (rad), image size (pixels), mounting position in base_link (m)."""

    name: str
    yaw: float
    hfov: float
    width: int = 480
    height: int = 270
    position: tuple[float, float, float] = (1.5, 0.0, 1.4)

    @property
    def fx(self) -> float:
        return 0.5 * self.width / math.tan(0.5 * self.hfov)

    @property
    def optical_frame(self) -> str:
        return f"{self.name}_optical_frame"

    def rotation_base_to_optical(self) -> np.ndarray:
        """R such that p_optical = R (p_base - position); optical: z forward, x right, y down."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        cam_x, cam_y, cam_z = np.array([c, s, 0.0]), np.array([-s, c, 0.0]), np.array([0, 0, 1.0])
        return np.stack([-cam_y, -cam_z, cam_x])  # rows: optical x, y, z in base axes

    def project(self, p_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, 3) in base_link -> pixels (N, 2) and depths (N,)."""
        p = (p_base - np.asarray(self.position)) @ self.rotation_base_to_optical().T
        z = p[:, 2]
        uv = np.stack(
            [self.fx * p[:, 0] / np.maximum(z, 1e-6) + 0.5 * self.width,
             self.fx * p[:, 1] / np.maximum(z, 1e-6) + 0.5 * self.height], axis=1
        )  # fmt: skip
        return uv, z


def released_cameras(width: int = 480, height: int = 270) -> tuple[CameraModel, ...]:
    r = math.radians
    return (
        CameraModel(RELEASED_CAMERAS[0], r(60), r(120), width, height),
        CameraModel(RELEASED_CAMERAS[1], 0.0, r(120), width, height),
        CameraModel(RELEASED_CAMERAS[2], r(-60), r(120), width, height),
        CameraModel(RELEASED_CAMERAS[3], 0.0, r(30), width, height),
    )


# Seconds a synthetic drive may last: the planner's first tick needs 1.6 s of history, and
# an hour of four 480x270 cameras at 10 Hz is a few GB.
DURATION_RANGE = (1.0, 3600.0)


@dataclass(frozen=True)
class Scenario:
    """What happens. Times in s from the start, distances in m along the road (ego starts at
    x=0), speeds in m/s, decelerations in m/s^2 (positive)."""

    kind: ScenarioKind
    duration: float
    ego_speed: float
    lead_gap: float | None = None
    lead_brake_time: float | None = None
    lead_decel: float = 3.0
    lead_min_speed: float = 0.0
    pedestrian_x: float | None = None
    pedestrian_start: float | None = None
    pedestrian_speed: float = 1.4

    def __post_init__(self) -> None:
        lo, hi = DURATION_RANGE
        if not lo <= self.duration <= hi:  # NaN too
            raise ValueError(f"duration must be {lo:g} to {hi:g} s, got {self.duration}")

    @classmethod
    def random(cls, seed: int, kind: ScenarioKind = "combined", duration: float = 8.0) -> Scenario:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
        rng = np.random.default_rng(seed)
        speed = float(rng.uniform(7.0, 12.0))
        lead = kind in ("lead_brake", "combined")
        ped = kind in ("pedestrian", "combined")
        return cls(
            kind=kind,
            duration=duration,
            ego_speed=speed,
            lead_gap=float(rng.uniform(18.0, 28.0)) if lead else None,
            lead_brake_time=float(rng.uniform(1.8, 3.0)) if lead else None,
            lead_decel=float(rng.uniform(2.0, 4.0)),
            lead_min_speed=float(rng.uniform(1.0, 4.0)) if kind == "combined" else 0.0,
            pedestrian_x=float(speed * rng.uniform(3.2, 4.2) + 8.0) if ped else None,
            pedestrian_start=float(rng.uniform(1.5, 2.8)) if ped else None,
            pedestrian_speed=float(rng.uniform(1.1, 1.6)),
        )


@dataclass
class WorldState:
    t: float
    ego_x: float
    ego_v: float
    ego_a: float
    lead_x: float | None
    lead_v: float
    ped_y: float | None  # lateral position; None when off the scene


def _idm_accel(v: float, v0: float, gap: float | None, v_lead: float) -> float:
    """Intelligent driver model: a_max 1.5, b 2.5, s0 4 m, T 1.2 s."""
    a_max, b, s0, headway = 1.5, 2.5, 4.0, 1.2
    free = 1.0 - (v / max(v0, 0.1)) ** 4
    if gap is None:
        return a_max * free
    s_star = s0 + max(0.0, v * headway + v * (v - v_lead) / (2 * math.sqrt(a_max * b)))
    return max(-8.0, a_max * (free - (s_star / max(gap, 0.1)) ** 2))


def simulate(scn: Scenario, dt: float = 0.01, extra: float = 0.0) -> list[WorldState]:
    """World states every dt seconds over the scenario's duration plus `extra` seconds (the
    future after the bag ends, for annotations)."""
    states = []
    x, v = 0.0, scn.ego_speed
    lead_x = scn.lead_gap + 4.5 if scn.lead_gap is not None else None
    lead_v = scn.ego_speed
    for k in range(round((scn.duration + extra) / dt) + 1):
        t = k * dt
        ped_y = None  # waits at the kerb (y = -7 m), crosses, then stays on the far side
        if scn.pedestrian_x is not None and scn.pedestrian_start is not None:
            walked = scn.pedestrian_speed * max(0.0, t - scn.pedestrian_start)
            ped_y = min(-7.0 + walked, 7.0)
        # Obstacles in the ego lane: the lead vehicle, and the pedestrian's crossing line
        # while the pedestrian is on (or about to step onto) the road.
        gap, v_obst = None, 0.0
        if lead_x is not None:
            gap, v_obst = lead_x - 4.5 - x, lead_v
        if (
            ped_y is not None
            and scn.pedestrian_x is not None
            and -LANE_WIDTH * 1.5 - 1.5 < ped_y < LANE_WIDTH * 0.5 + 0.5
        ):
            g = scn.pedestrian_x - x - 1.0
            if g > -1.0 and (gap is None or g < gap):
                gap, v_obst = max(g, 0.1), 0.0
        a = _idm_accel(v, scn.ego_speed, gap, v_obst)
        if v <= 0.0 and a < 0:
            a = 0.0
        states.append(WorldState(t, x, v, a, lead_x, lead_v, ped_y))
        x += v * dt + 0.5 * a * dt * dt
        v = max(0.0, v + a * dt)
        if lead_x is not None:
            braking = scn.lead_brake_time is not None and t >= scn.lead_brake_time
            la = -scn.lead_decel if braking and lead_v > scn.lead_min_speed else 0.0
            lead_x += lead_v * dt
            lead_v = max(scn.lead_min_speed if braking else 0.0, lead_v + la * dt)
    return states


ACTION_WORDS = {
    "accelerate": "Accelerate",
    "keep_speed": "Keep speed",
    "decelerate": "Decelerate",
    "stop": "Stop",
}
FUTURE_STEPS, FUTURE_DT = 64, 0.1


CAUSES = {
    "stop": ("a pedestrian is crossing the road ahead", "the lead vehicle ahead is braking",
             "the road ahead is blocked"),
    "decelerate": ("a pedestrian is crossing the road ahead", "the lead vehicle ahead is braking",
                   "the road ahead is blocked"),
    "accelerate": ("the lead vehicle ahead is pulling away", "the road ahead is clear"),
    "keep_speed": ("following the lead vehicle", "the road ahead is clear"),
}  # fmt: skip


def causal_chain_texts() -> list[str]:
    """Every causal chain the annotations can hold (e.g. a tokenizer's training corpus)."""
    return [f"{ACTION_WORDS[a]}: {c}." for a, causes in CAUSES.items() for c in causes]


def _pedestrian_crossing(state: WorldState, scn: Scenario) -> bool:
    """The pedestrian is on (or stepping onto) the road ahead of the ego vehicle."""
    return (
        state.ped_y is not None
        and scn.pedestrian_x is not None
        and scn.pedestrian_x > state.ego_x
        and -LANE_WIDTH * 1.5 - 1.5 < state.ped_y < LANE_WIDTH * 1.5
    )


def causal_chain(states: list[WorldState], k: int, scn: Scenario, dt: float) -> dict:
    """The annotation at states[k]: a templated causal chain whose action is what the ego
    vehicle then does (the meta-action of its next 6.4 s, so text and trajectory agree)
    and whose cause is what in the scene explains it.

    states: simulated every dt seconds, reaching at least 6.4 s past states[k].
    Returns {"reasoning", "meta_action"}.
    """
    now = states[k]
    stride = round(FUTURE_DT / dt)
    future = [states[k + stride * (i + 1)] for i in range(FUTURE_STEPS)]
    speed = np.array([s.ego_v for s in future])
    zeros = np.zeros(FUTURE_STEPS)
    action, _ = extract_meta_actions(speed, zeros, zeros, now.ego_v, FUTURE_DT)
    lead_gap = now.lead_x - 4.5 - now.ego_x if now.lead_x is not None else math.inf
    if action in ("stop", "decelerate"):
        if any(_pedestrian_crossing(s, scn) for s in future[:30]):
            cause = "a pedestrian is crossing the road ahead"
        elif now.lead_x is not None:
            cause = "the lead vehicle ahead is braking"
        else:
            cause = "the road ahead is blocked"
    elif action == "accelerate":
        cause = (
            "the lead vehicle ahead is pulling away" if lead_gap < 40 else "the road ahead is clear"
        )
    else:
        cause = "following the lead vehicle" if lead_gap < 40 else "the road ahead is clear"
    return {"reasoning": f"{ACTION_WORDS[action]}: {cause}.", "meta_action": action}


def agent_boxes(state: WorldState, scn: Scenario) -> list[list[float]]:
    """Other agents at a moment as [x, y, yaw, length, width] (odom frame, m and rad)."""
    boxes = []
    if state.lead_x is not None:
        boxes.append([state.lead_x - 2.25, 0.0, 0.0, 4.5, 1.8])
    if state.ped_y is not None and scn.pedestrian_x is not None:
        boxes.append([scn.pedestrian_x, state.ped_y, 0.0, 0.5, 0.5])
    return boxes


def _box(center: tuple[float, float, float], size: tuple[float, float, float]) -> list[np.ndarray]:
    cx, cy, cz = center
    lx, ly, lz = (s / 2 for s in size)
    c = np.array([[cx + sx * lx, cy + sy * ly, cz + sz * lz]
                  for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])  # fmt: skip
    faces = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
    return [c[list(f)] for f in faces]


def _clip_near(poly_cam: np.ndarray, near: float = 0.3) -> np.ndarray:
    """Clip a polygon in optical coordinates (N, 3) against z >= near."""
    out = []
    n = len(poly_cam)
    for i in range(n):
        a, b = poly_cam[i], poly_cam[(i + 1) % n]
        ina, inb = a[2] >= near, b[2] >= near
        if ina:
            out.append(a)
        if ina != inb:
            f = (near - a[2]) / (b[2] - a[2])
            out.append(a + f * (b - a))
    return np.array(out)


def render(cam: CameraModel, state: WorldState, scn: Scenario) -> np.ndarray:
    """(H, W, 3) uint8 RGB view of the world from one camera of the car."""
    img = np.zeros((cam.height, cam.width, 3), np.uint8)
    img[:] = (150, 190, 235)  # sky
    polys: list[tuple[float, np.ndarray, tuple[int, int, int]]] = []
    ex = state.ego_x

    def add(poly_world: np.ndarray, color: tuple[int, int, int]) -> None:
        base = poly_world - np.array([ex, 0.0, 0.0])  # straight road: base_link = odom - x
        p = (base - np.asarray(cam.position)) @ cam.rotation_base_to_optical().T
        p = _clip_near(p)
        if len(p) < 3:
            return
        uv = np.stack([cam.fx * p[:, 0] / p[:, 2] + 0.5 * cam.width,
                       cam.fx * p[:, 1] / p[:, 2] + 0.5 * cam.height], 1)  # fmt: skip
        polys.append((float(p[:, 2].mean()), uv, color))

    far = 300.0
    add(np.array([[ex - 20, -far, 0], [ex + far, -far, 0], [ex + far, far, 0], [ex - 20, far, 0]]),
        (90, 140, 70))  # fmt: skip
    for x0 in np.arange(math.floor(ex / 10) * 10 - 10, ex + 160, 10.0):
        add(np.array([[x0, -5.25, 0.01], [x0 + 10, -5.25, 0.01], [x0 + 10, 5.25, 0.01],
                      [x0, 5.25, 0.01]]), (85, 85, 90))  # fmt: skip
        for y in (-1.75, 1.75):  # dashed lane lines
            add(np.array([[x0, y - 0.08, 0.02], [x0 + 4, y - 0.08, 0.02], [x0 + 4, y + 0.08, 0.02],
                          [x0, y + 0.08, 0.02]]), (240, 240, 240))  # fmt: skip
        for y in (-5.1, 5.1):  # solid edges
            add(np.array([[x0, y - 0.1, 0.02], [x0 + 10, y - 0.1, 0.02], [x0 + 10, y + 0.1, 0.02],
                          [x0, y + 0.1, 0.02]]), (240, 230, 120))  # fmt: skip
    if scn.pedestrian_x is not None:  # zebra crossing
        for y in np.arange(-5.0, 5.0, 1.0):
            px = scn.pedestrian_x
            add(np.array([[px - 1.5, y, 0.03], [px + 1.5, y, 0.03], [px + 1.5, y + 0.5, 0.03],
                          [px - 1.5, y + 0.5, 0.03]]), (245, 245, 245))  # fmt: skip
    if state.lead_x is not None:
        for face in _box((state.lead_x - 2.25, 0.0, 0.75), (4.5, 1.8, 1.5)):
            add(face, (200, 40, 40))
    if state.ped_y is not None and scn.pedestrian_x is not None:
        for face in _box((scn.pedestrian_x, state.ped_y, 0.875), (0.5, 0.5, 1.75)):
            add(face, (40, 60, 200))
    for _, uv, color in sorted(polys, key=lambda p: -p[0]):
        pts = np.clip(uv, -1e5, 1e5).round().astype(np.int32)
        cv2.fillPoly(img, [pts], color, lineType=cv2.LINE_AA)
    return img


NAVIGATION_TOPIC = "/planning/navigation"


MAX_SEED = 2**32 - 1  # numpy's seeds
EPOCH_SPREAD = 100_000_000  # s: the drives' start times spread over about three years


def write_sample_bag(
    directory: str | Path,
    seed: int = 0,
    kind: ScenarioKind = "combined",
    duration: float = 8.0,
    width: int = 480,
    height: int = 270,
    storage: str = "mcap",
    navigation: Sequence[tuple[float, str]] = (),
) -> Scenario:
    """Write the drive to `directory` (a new bag folder) and return its scenario.

    navigation: (seconds after the start, route text) messages on NAVIGATION_TOPIC
    (std_msgs/String), e.g. [(0.5, "Turn left in 30m")], for Alpamayo 1.5 replays."""
    directory = Path(directory)
    scn = Scenario.random(seed, kind, duration)
    states = simulate(scn, extra=FUTURE_STEPS * FUTURE_DT + 0.5)
    by_time = {round(s.t * 100): s for s in states}
    cams = released_cameras(width, height)
    f = MessageFactory()
    # a fixed, plausible epoch, per seed; its seconds fit the stamps' int32 until 2038
    t_start = 1_700_000_000.0 + seed % EPOCH_SPREAD
    annotations = []
    with BagWriter(directory, store=f.store, storage=storage) as bag:
        statics = []
        for cam in cams:
            r = cam.rotation_base_to_optical().T  # optical axes in base
            q = mat2quat(r)
            statics.append(
                f.transform(
                    StampedPose(t_start, cam.position, tuple(q)), "base_link", cam.optical_frame
                )
            )
        bag.write("/tf_static", t_start, f.tf(statics))
        for at, text in navigation:
            bag.write(NAVIGATION_TOPIC, t_start + at, f.t["std_msgs/msg/String"](data=text))
        for k in range(round(duration * 20) + 1):  # odometry at 20 Hz
            s = by_time[min(k * 5, len(states) - 1)]
            t = t_start + s.t
            pose = StampedPose(t, (s.ego_x, 0.0, 0.0), yaw_quaternion(0.0))
            bag.write("/odom", t, f.odometry(pose, speed=s.ego_v))
            bag.write("/tf", t, f.tf([f.transform(pose, "odom", "base_link")]))
        for k in range(round(duration * 10) + 1):  # cameras at 10 Hz
            for c, cam in enumerate(cams):
                lag = 0.02 + 0.01 * c  # each camera on its own clock, a little after odometry
                tk = round((0.1 * k + lag) * 100)
                if tk not in by_time:
                    continue
                s = by_time[tk]
                t = t_start + s.t
                topic = f"/camera/{cam.name}"
                image = f.compressed_image(t, cam.optical_frame, render(cam, s, scn))
                bag.write(f"{topic}/image_raw/compressed", t, image)
                info = f.camera_info(
                    t,
                    cam.optical_frame,
                    cam.width,
                    cam.height,
                    cam.fx,
                    cam.fx,
                    0.5 * cam.width,
                    0.5 * cam.height,
                )
                bag.write(f"{topic}/camera_info", t, info)
            s = by_time[round(0.1 * k * 100)]
            annotations.append(
                {
                    "bag": directory.name,
                    "t": round(t_start + s.t, 6),
                    **causal_chain(states, round(0.1 * k * 100), scn, 0.01),
                    "agents": agent_boxes(s, scn),
                }
            )
    with open(directory / "coc_annotations.jsonl", "w") as fh:
        for a in annotations:
            fh.write(json.dumps(a) + "\n")
    (directory / "scenario.json").write_text(json.dumps(asdict(scn), indent=2) + "\n")
    return scn
