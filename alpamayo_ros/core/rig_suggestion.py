"""A camera rig YAML suggested from a vehicle's cameras: each image topic's heading and
field of view (from camera_info and /tf_static) matched to the model's seven cameras
(alpamayo_ros.core.cameras), for `alpamayo-ros inspect-bag BAG --suggest-rig`.

Matching: the non-telephoto model cameras take the topic whose optical axis is closest in
yaw (within MAX_YAW_ERROR_DEG), each topic once; a telephoto camera takes a narrow topic
pointing its way, or else the centre crop of the wide topic already feeding that direction
(cropped to the telephoto's field of view, as config/pandaset_cameras.yaml does). Fields
of view that differ by more than 25 % are written down as notes: the model never saw such
a camera, and its plans degrade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import yaml

from alpamayo_ros.core.cameras import (
    ALPAMAYO1,
    ALPAMAYO1_5,
    ALPAMAYO1_CAMERAS,
    FAMILIES,
    MODEL_CAMERAS,
    ModelCamera,
)

MAX_YAW_ERROR_DEG = 35.0
TELE_YAW_ERROR_DEG = 10.0
FOV_TOLERANCE = 0.25
FOV_WEIGHT_DEG = 40.0


@dataclass(frozen=True)
class CameraView:
    """One image topic of the vehicle: yaw_deg of its optical axis in the ego frame
    (x forward, y left; counter-clockwise, degrees), horizontal field of view hfov_deg,
    its message kind ("compressed" or "raw") and, where its camera_info gives them, its
    images' width and height in pixels (0: not known)."""

    topic: str
    yaw_deg: float
    hfov_deg: float
    encoding: str = "compressed"
    width: int = 0
    height: int = 0


def yaw_and_fov(
    rotation_base_to_optical: list[list[float]], fx: float, width: int
) -> tuple[float, float]:
    """(yaw, horizontal FOV) in degrees of a pinhole camera: R maps ego-frame vectors to its
    optical frame (z forward), fx and width in pixels."""
    z = rotation_base_to_optical[2]  # the optical axis, in the ego frame
    return math.degrees(math.atan2(z[1], z[0])), math.degrees(2 * math.atan(width / (2 * fx)))


def _yaw_error(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _cost(view: CameraView, cam: ModelCamera) -> float:
    return _yaw_error(view.yaw_deg, cam.yaw_deg) + FOV_WEIGHT_DEG * abs(
        math.log(view.hfov_deg / cam.fov_deg)
    )


def _centre_crop(hfov_deg: float, target_deg: float) -> tuple[float, float, float, float]:
    """The centre crop (x0, y0, x1, y1 fractions) of a pinhole image narrowing its
    horizontal field of view from hfov_deg to target_deg (the same share vertically)."""
    share = math.tan(math.radians(target_deg / 2)) / math.tan(math.radians(hfov_deg / 2))
    lo = round((1 - share) / 2, 3)
    return (lo, lo, round(1 - lo, 3), round(1 - lo, 3))


@dataclass(frozen=True)
class Suggestion:
    """entries: the rig YAML's camera entries (name, topic, encoding, crop, note,
    image_size) in model index order; notes: what could not be matched or matches badly;
    complete: whether the family's required cameras are all there (Alpamayo 1: its four)."""

    entries: tuple[dict, ...]
    notes: tuple[str, ...]
    complete: bool

    def to_yaml(self, source: str = "") -> str:
        head = [f"# Camera rig suggested by alpamayo-ros inspect-bag --suggest-rig {source}"]
        head += ["# Check every entry: matching is by heading and field of view only."]
        head += [f"# NOTE: {n}" for n in self.notes]
        body = yaml.safe_dump(
            {"cameras": list(self.entries)}, sort_keys=False, width=100, default_flow_style=None
        )
        return "\n".join(head) + "\n" + body


def suggest_rig(views: list[CameraView], family: str = ALPAMAYO1) -> Suggestion:
    """The rig for a checkpoint family from the vehicle's camera views."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    wanted = [c for c in MODEL_CAMERAS if family == ALPAMAYO1_5 or c.name in ALPAMAYO1_CAMERAS]
    assigned: dict[str, tuple[CameraView, tuple[float, float, float, float] | None]] = {}
    used: set[str] = set()
    # 1. Wide cameras: best match first (yaw error plus FOV_WEIGHT_DEG per e-fold of field
    # of view), each topic once.
    pairs = sorted(
        (_cost(v, c), i, c.index, v, c)
        for i, v in enumerate(views)
        for c in wanted
        if c.fov_deg > 45
    )
    for _, _, _, view, cam in pairs:
        if _yaw_error(view.yaw_deg, cam.yaw_deg) > MAX_YAW_ERROR_DEG:
            continue
        if cam.name in assigned or view.topic in used:
            continue
        assigned[cam.name] = (view, None)
        used.add(view.topic)
    # 2. Telephoto cameras: a narrow free topic pointing that way, else a centre crop.
    for cam in (c for c in wanted if c.fov_deg <= 45):
        narrow = [
            v for v in views
            if v.topic not in used and _yaw_error(v.yaw_deg, cam.yaw_deg) <= TELE_YAW_ERROR_DEG
            and v.hfov_deg <= cam.fov_deg * (1 + FOV_TOLERANCE)
        ]  # fmt: skip
        if narrow:
            view = min(narrow, key=lambda v: _yaw_error(v.yaw_deg, cam.yaw_deg))
            assigned[cam.name] = (view, None)
            used.add(view.topic)
            continue
        wide = [
            v for v in views
            if _yaw_error(v.yaw_deg, cam.yaw_deg) <= TELE_YAW_ERROR_DEG and v.hfov_deg > cam.fov_deg
        ]  # fmt: skip
        if wide:
            view = min(wide, key=lambda v: _yaw_error(v.yaw_deg, cam.yaw_deg))
            assigned[cam.name] = (view, _centre_crop(view.hfov_deg, cam.fov_deg))
    entries, notes = [], []
    for cam in wanted:
        if cam.name not in assigned:
            continue
        view, crop = assigned[cam.name]
        entry: dict = {"name": cam.name, "topic": view.topic, "encoding": view.encoding}
        note = _note(cam, view, crop)
        if crop is not None:
            entry["crop"] = list(crop)
        if note:
            entry["note"] = note
        if view.width > 0 and view.height > 0:  # what the engine is warmed up on
            entry["image_size"] = [view.width, view.height]
        entries.append(entry)
    missing = [c.name for c in wanted if c.name not in assigned]
    complete = True
    if family == ALPAMAYO1 and missing:
        complete = False
        notes.append(
            f"no camera of this vehicle points like {missing}: Alpamayo 1 checkpoints need "
            "all four of their cameras; an Alpamayo 1.5 checkpoint reads the cameras found "
            "(--family alpamayo1_5)"
        )
    elif family == ALPAMAYO1_5 and missing:
        notes.append(f"not matched (left out, which 1.5 allows): {missing}")
    unused = [v.topic for v in views if v.topic not in used and not _fed_by_crop(v, assigned)]
    if unused:
        notes.append(f"topics not used: {unused}")
    if not entries:
        complete = False
        notes.append("no camera matched any of the model's cameras")
    return Suggestion(tuple(entries), tuple(notes), complete)


def _fed_by_crop(view: CameraView, assigned: dict) -> bool:
    return any(v.topic == view.topic for v, _ in assigned.values())


def _note(
    cam: ModelCamera, view: CameraView, crop: tuple[float, float, float, float] | None
) -> str:
    parts = []
    fov = cam.fov_deg if crop is not None else view.hfov_deg
    if crop is not None:
        parts.append(f"centre of {view.topic} (~{view.hfov_deg:.0f} deg) cropped to ~{fov:.0f} deg")
    elif abs(view.hfov_deg / cam.fov_deg - 1) > FOV_TOLERANCE:
        parts.append(
            f"~{view.hfov_deg:.0f} deg field of view stands in for {cam.fov_deg:.0f} deg: "
            "expect degraded plans"
        )
    err = _yaw_error(view.yaw_deg, cam.yaw_deg)
    if err > 10:
        parts.append(f"points {view.yaw_deg:.0f} deg, the model camera ~{cam.yaw_deg:.0f} deg")
    return "; ".join(parts)
