"""Warming a compiled engine up before the first plan, on inputs made up for the purpose.

The fast engine compiles its functions (and, on a GPU, records CUDA graphs) on its first
calls: tens of seconds on a GPU, during which a live planner would publish late stop plans.
A node has no camera frame when its model has loaded, so it warms up on synthetic frames of
the size its cameras are expected to send (the size decides the number of vision tokens,
hence the shapes the engine compiles for): each camera's `image_size` in the rig, else one
size for all, cropped as the rig crops, with an ego history at rest. Torch-free: the
planning layer and the nodes use it without importing a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.camera_rig import CameraInput, CameraRig
from alpamayo_ros.core.ego_history import EgoHistory, StampedPose
from alpamayo_ros.core.encoded_image import MAX_SIZE, MIN_SIZE, CameraFrame, EncodedImage
from alpamayo_ros.core.frame_buffer import FrameSet
from alpamayo_ros.planning.planner import PlanInputs

WARM_UP_CHOICES = ("auto", "on", "off")


def warm_up_wanted(warm_up: str, engine: str) -> bool:
    """Whether a policy configured with `engine` is warmed up: warm_up "on", or "auto" with
    the fast engine (the eager engine compiles nothing). A bad value raises ValueError
    naming it."""
    if warm_up not in WARM_UP_CHOICES:
        raise ValueError(f"warm_up must be one of {WARM_UP_CHOICES}, got {warm_up!r}")
    return warm_up == "on" or (warm_up == "auto" and engine == "fast")


@dataclass(frozen=True)
class WarmUpFrames:
    """What the synthetic frames look like.

    width, height: pixels of a whole camera image before the rig's crop, for the cameras
        whose rig entry gives no image_size.
    frames_per_camera: frames of each camera in the set, frame_dt seconds apart.
    jpeg: frames as EncodedImages (JPEG bytes the model decodes) rather than RGB arrays, so
        that a model decoding JPEG on its device warms that path up too.
    """

    width: int = 1920
    height: int = 1080
    frames_per_camera: int = 4
    frame_dt: float = 0.1
    jpeg: bool = False

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            if not MIN_SIZE <= getattr(self, name) <= MAX_SIZE:
                raise ValueError(
                    f"WarmUpFrames.{name} must be {MIN_SIZE} to {MAX_SIZE} pixels, "
                    f"got {getattr(self, name)}"
                )
        if self.frames_per_camera < 1:
            raise ValueError(
                f"WarmUpFrames.frames_per_camera must be >= 1, got {self.frames_per_camera}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of a whole camera image of a camera without an image_size."""
        return self.height, self.width

    def shape_of(self, cam: CameraInput) -> tuple[int, int]:
        """(height, width) of `cam`'s whole synthetic images: its image_size, else shape."""
        if cam.image_size is None:
            return self.shape
        width, height = cam.image_size
        return height, width

    def describe(self, rig: CameraRig) -> str:
        """The sizes the rig's frames are made at, e.g. "1920x1080" or "1920x1080 and
        1280x720"."""
        shapes = dict.fromkeys(self.shape_of(cam) for cam in rig.cameras)
        return " and ".join(f"{w}x{h}" for h, w in shapes)


def synthetic_image(height: int, width: int, shift: int = 0) -> np.ndarray:
    """An (H, W, 3) uint8 RGB image with a road scene's coarse layout: a light sky over a
    dark road with a white line `shift` pixels right of the centre. Only its size matters
    to the engine; the shift makes frames differ (a vision cache keeps one entry per
    distinct frame, as with real frames)."""
    img = np.empty((height, width, 3), dtype=np.uint8)
    horizon = height // 2
    img[:horizon] = (170, 190, 215)
    img[horizon:] = (70, 70, 75)
    half = max(1, width // 100)
    centre = min(max(width // 2 + shift, half), width - half)
    img[horizon:, centre - half : centre + half] = 230
    return img


def _as_jpeg(rgb: np.ndarray) -> EncodedImage:
    import cv2  # only for this branch: a JPEG to feed the model's decoder

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("OpenCV could not encode the warm-up image as JPEG")
    return EncodedImage.from_jpeg(data.tobytes(), "warm-up image")


def at_rest(t0: float, num_poses: int, dt: float) -> EgoHistory:
    """An ego history of a car standing at the origin for num_poses samples dt s apart,
    ending at t0 (seconds)."""
    stamps = t0 + dt * (np.arange(num_poses, dtype=np.float64) - (num_poses - 1))
    return EgoHistory(
        t0=t0,
        stamps=stamps,
        xyz=np.zeros((num_poses, 3)),
        rot=np.repeat(np.eye(3)[None], num_poses, axis=0),
        speed=0.0,
        pose_t0=StampedPose(t0, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)),
    )


def synthetic_frames(rig: CameraRig, spec: WarmUpFrames, t0: float = 0.0) -> FrameSet:
    """A complete frame set at t0 for every camera of the rig: spec.frames_per_camera
    distinct synthetic images per camera of its size (spec.shape_of), each cropped as its
    camera crops."""
    count = spec.frames_per_camera
    offsets = spec.frame_dt * (np.arange(count) - (count - 1))
    images: list[tuple[CameraFrame, ...]] = []
    for c, cam in enumerate(rig.cameras):
        frames = []
        for k in range(count):
            whole = synthetic_image(*spec.shape_of(cam), shift=4 * (c * count + k))
            frames.append(cam.crop_image(_as_jpeg(whole) if spec.jpeg else whole))
        images.append(tuple(frames))
    return FrameSet(
        t0=t0, cameras=rig.names, images=tuple(images),
        stamps=np.tile(t0 + offsets, (len(rig.cameras), 1)),
    )  # fmt: skip


def synthetic_inputs(
    rig: CameraRig,
    spec: WarmUpFrames,
    num_poses: int = 16,
    ego_dt: float = 0.1,
    navigation: str | None = None,
    t0: float = 0.0,
) -> PlanInputs:
    """A complete input set at t0 (seconds) to warm a policy up on: synthetic_frames, the
    ego at rest (num_poses poses ego_dt s apart) and, for a planner fed route text,
    `navigation`."""
    frames = synthetic_frames(rig, spec, t0)
    return PlanInputs(t0, frames, at_rest(t0, num_poses, ego_dt), navigation)


class FrameSizeCheck:
    """Says once per camera topic when its frames are not of the size the engine was
    warmed up on for that topic (the first plans on them compile again, and are late)."""

    def __init__(self, spec: WarmUpFrames, rig: CameraRig) -> None:
        self.spec = spec
        self._cameras: dict[str, CameraInput] = {}  # a topic's first camera (one size)
        for cam in rig.cameras:
            self._cameras.setdefault(cam.topic, cam)
        self._seen: set[str] = set()

    def check(self, topic: str, shape: tuple[int, ...]) -> str | None:
        """A warning for the first frame of `topic` whose (H, W, ...) shape differs from the
        size its synthetic frames had, else None."""
        if topic in self._seen or topic not in self._cameras:
            return None
        self._seen.add(topic)
        cam = self._cameras[topic]
        height, width = self.spec.shape_of(cam)
        if tuple(shape[:2]) == (height, width):
            return None
        setting = (
            f"cameras[{cam.name}].image_size in the camera config"
            if cam.image_size is not None
            else "warm_up_width, warm_up_height; or image_size in the camera config"
        )
        return (
            f"{topic} sends {shape[1]}x{shape[0]} frames but the engine was warmed up on "
            f"{width}x{height} for it ({setting}): where the vision tokens differ, the "
            "first plans on them compile and come out late"
        )
