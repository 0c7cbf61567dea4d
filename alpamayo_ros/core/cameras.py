"""The model's cameras: the seven cameras of the NVIDIA Hyperion rig the Alpamayo models were
trained on (PhysicalAI-AV naming), with the index, prompt label and field of view of each.

Alpamayo 1 reads four of them (indices 0, 1, 2, 6) unlabelled, in that order; Alpamayo 1.5
reads any subset, each camera's frames introduced by its display name, in ascending index
order (shared/reference/alpamayo_1_5.md, section 5.1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelCamera:
    """index: the dataset index (the prompt's order); name: the released camera name;
    display_name: the label the 1.5 prompt puts before its frames; fov_deg: horizontal field
    of view, degrees; yaw_deg: approximate heading of its optical axis in the ego frame
    (x forward, y left), degrees, counter-clockwise."""

    index: int
    name: str
    display_name: str
    fov_deg: float
    yaw_deg: float


MODEL_CAMERAS: tuple[ModelCamera, ...] = (
    ModelCamera(0, "camera_cross_left_120fov", "Front left camera", 120.0, 60.0),
    ModelCamera(1, "camera_front_wide_120fov", "Front camera", 120.0, 0.0),
    ModelCamera(2, "camera_cross_right_120fov", "Front right camera", 120.0, -60.0),
    ModelCamera(3, "camera_rear_left_70fov", "Rear left camera", 70.0, 140.0),
    ModelCamera(4, "camera_rear_tele_30fov", "Rear camera", 30.0, 180.0),
    ModelCamera(5, "camera_rear_right_70fov", "Rear right camera", 70.0, -140.0),
    ModelCamera(6, "camera_front_tele_30fov", "Front telephoto camera", 30.0, 0.0),
)
CAMERA_NAMES: tuple[str, ...] = tuple(c.name for c in MODEL_CAMERAS)
_BY_NAME = {c.name: c for c in MODEL_CAMERAS}


class UnknownCamera(ValueError):
    """A camera name that is not one of the model's seven."""


def model_camera(name: str) -> ModelCamera:
    """The model camera of a released name (UnknownCamera naming it and the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownCamera(
            f"camera {name!r} is not one of the model's cameras {list(CAMERA_NAMES)}"
        ) from None


def display_name(index: int) -> str:
    """The 1.5 prompt's label of a camera index (`Camera {i}` for an index outside the
    table, as the release does)."""
    for cam in MODEL_CAMERAS:
        if cam.index == index:
            return cam.display_name
    return f"Camera {index}"


# -- what a checkpoint family takes ------------------------------------------------------
ALPAMAYO1 = "alpamayo1"
ALPAMAYO1_5 = "alpamayo1_5"
FAMILIES: tuple[str, ...] = (ALPAMAYO1, ALPAMAYO1_5)
# Alpamayo 1 reads exactly these cameras (dataset indices 0, 1, 2, 6), unlabelled.
ALPAMAYO1_CAMERAS: tuple[str, ...] = tuple(MODEL_CAMERAS[i].name for i in (0, 1, 2, 6))
# Frames per camera: Alpamayo 1 was trained on 4; 1.5 on 1 to 4 (the NIM's reduced layouts).
FRAMES_PER_CAMERA = {ALPAMAYO1: (4, 4), ALPAMAYO1_5: (1, 4)}


class CameraLayoutError(ValueError):
    """A camera layout a checkpoint cannot read; the message names the camera and why."""


def check_camera_layout(cameras: tuple[str, ...], family: str, frames_per_camera: int) -> None:
    """Refuse a layout (model camera names, frames per camera) the family cannot read,
    naming the camera and the reason: an unknown name, a camera given twice, a camera the
    checkpoint does not take, a frame count outside what it was trained on."""
    if family not in FAMILIES:
        raise CameraLayoutError(f"unknown checkpoint family {family!r}; known: {list(FAMILIES)}")
    if not cameras:
        raise CameraLayoutError("the camera layout lists no camera")
    seen: set[str] = set()
    for name in cameras:
        if name in seen:
            raise CameraLayoutError(
                f"camera {name!r} is listed twice: each model camera takes one input"
            )
        seen.add(name)
        try:
            model_camera(name)
        except UnknownCamera as err:
            raise CameraLayoutError(str(err)) from None
        if family == ALPAMAYO1 and name not in ALPAMAYO1_CAMERAS:
            raise CameraLayoutError(
                f"camera {name!r}: Alpamayo 1 checkpoints read only {list(ALPAMAYO1_CAMERAS)} "
                "(use an Alpamayo 1.5 checkpoint for other cameras)"
            )
    if family == ALPAMAYO1 and seen != set(ALPAMAYO1_CAMERAS):
        missing = [c for c in ALPAMAYO1_CAMERAS if c not in seen]
        raise CameraLayoutError(
            f"cameras {missing} are missing: Alpamayo 1 checkpoints read all four of "
            f"{list(ALPAMAYO1_CAMERAS)} (an Alpamayo 1.5 checkpoint reads any subset)"
        )
    lo, hi = FRAMES_PER_CAMERA[family]
    if not lo <= frames_per_camera <= hi:
        raise CameraLayoutError(
            f"frames_per_camera = {frames_per_camera}: {family} checkpoints read "
            + (f"{lo}" if lo == hi else f"{lo} to {hi}")
            + " frames per camera"
        )


def prompt_order(cameras: tuple[str, ...]) -> list[int]:
    """Positions of `cameras` sorted by model index: the order the prompt shows them."""
    return sorted(range(len(cameras)), key=lambda i: model_camera(cameras[i]).index)
