"""Camera rig: which input topic feeds which of the model's cameras, and how.

Parsed from a plain dict (the YAML files in config/ are loaded by the callers), validated
at start-up with errors that name the field and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.core.encoded_image import MAX_SIZE, MIN_SIZE, CameraFrame
from alpamayo_ros.core.frame_buffer import RELEASED_CAMERAS

ENCODINGS = ("compressed", "raw")
# The message type a camera topic holds, by its encoding.
MESSAGE_TYPES = {"compressed": "sensor_msgs/msg/CompressedImage", "raw": "sensor_msgs/msg/Image"}


class CameraRigError(ValueError):
    """A camera configuration is malformed."""


@dataclass(frozen=True)
class CameraInput:
    """One model camera and where its frames come from.

    name: the model's camera name (e.g. camera_front_wide_120fov).
    topic: the image topic (sensor_msgs/CompressedImage or sensor_msgs/Image).
    encoding: "compressed" or "raw", the topic's message kind.
    crop: optional (x0, y0, x1, y1) fractions of the image to keep, e.g. the centre of a
        wide camera standing in for a telephoto one.
    note: free text shown in reports (e.g. a field-of-view mismatch).
    image_size: optional (width, height) pixels of the topic's whole images, before the
        crop. A compiled engine is warmed up on frames of this size (it decides the number
        of vision tokens); cameras without it use the planner's warm_up_width/height.
    """

    name: str
    topic: str
    encoding: str = "compressed"
    crop: tuple[float, float, float, float] | None = None
    note: str = ""
    image_size: tuple[int, int] | None = None

    @property
    def message_type(self) -> str:
        """The ROS message type its topic must hold (by `encoding`)."""
        return MESSAGE_TYPES[self.encoding]

    def type_problem(self, held: str, where: str) -> str | None:
        """Why a topic holding messages of type `held` (in `where`: a bag, the ROS graph)
        cannot feed this camera, with the encoding that would read it; None when it can."""
        if held == self.message_type:
            return None
        fits = [e for e, t in MESSAGE_TYPES.items() if t == held]
        advice = f"write encoding: {fits[0]}" if fits else "not a camera image topic"
        return (
            f"camera {self.name}: {self.topic} holds {held} in {where}, but the camera config "
            f"says encoding {self.encoding} ({self.message_type}); {advice}"
        )

    def crop_image(self, image: CameraFrame) -> CameraFrame:
        """The crop of an (H, W, C) image (a view, no copy; an EncodedImage's crop box), or
        the image itself."""
        if self.crop is None:
            return image
        h, w = image.shape[:2]
        x0, y0, x1, y1 = self.crop
        return image[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]

    def __post_init__(self) -> None:
        if not self.name:
            raise CameraRigError("camera name must not be empty")
        if not self.topic.startswith("/") and not self.topic.startswith("~"):
            raise CameraRigError(
                f"cameras[{self.name}].topic must be an absolute or private topic name, "
                f"got {self.topic!r}"
            )
        if self.encoding not in ENCODINGS:
            raise CameraRigError(
                f"cameras[{self.name}].encoding must be one of {ENCODINGS}, got {self.encoding!r}"
            )
        if self.crop is not None:
            if len(self.crop) != 4:
                raise CameraRigError(
                    f"cameras[{self.name}].crop must be [x0, y0, x1, y1], got {self.crop}"
                )
            x0, y0, x1, y1 = self.crop
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise CameraRigError(
                    f"cameras[{self.name}].crop must be fractions with 0 <= x0 < x1 <= 1 and "
                    f"0 <= y0 < y1 <= 1, got {self.crop}"
                )
        if self.image_size is not None and (
            len(self.image_size) != 2
            or not all(isinstance(v, int) and MIN_SIZE <= v <= MAX_SIZE for v in self.image_size)
        ):
            raise CameraRigError(
                f"cameras[{self.name}].image_size must be [width, height] in whole pixels, "
                f"{MIN_SIZE} to {MAX_SIZE} each, got {list(self.image_size)}"
            )


@dataclass(frozen=True)
class CameraRig:
    """The cameras in the model's input order."""

    cameras: tuple[CameraInput, ...]

    def __post_init__(self) -> None:
        if not self.cameras:
            raise CameraRigError("cameras must list at least one camera")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise CameraRigError(f"cameras has duplicate names: {names}")
        # One topic's images have one size: sizes given twice agree, and a camera on a
        # topic whose size another camera gives (a crop of it) takes that size.
        sized: dict[str, CameraInput] = {}
        for cam in self.cameras:
            if cam.image_size is None:
                continue
            first = sized.setdefault(cam.topic, cam)
            if first.image_size != cam.image_size:
                raise CameraRigError(
                    f"cameras[{cam.name}].image_size {list(cam.image_size)} differs from "
                    f"cameras[{first.name}].image_size {list(first.image_size or ())}, both "
                    f"on topic {cam.topic}"
                )
        filled = tuple(
            replace(cam, image_size=sized[cam.topic].image_size)
            if cam.image_size is None and cam.topic in sized
            else cam
            for cam in self.cameras
        )
        object.__setattr__(self, "cameras", filled)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(c.topic for c in self.cameras)

    def by_topic(self) -> dict[str, list[CameraInput]]:
        """Topic -> the cameras it feeds (one topic may feed several, e.g. a crop)."""
        out: dict[str, list[CameraInput]] = {}
        for cam in self.cameras:
            out.setdefault(cam.topic, []).append(cam)
        return out

    @classmethod
    def released_default(cls, prefix: str = "/camera") -> CameraRig:
        """The released model's four cameras on `<prefix>/<name>/image_raw/compressed`."""
        return cls(
            tuple(
                CameraInput(name, f"{prefix}/{name}/image_raw/compressed")
                for name in RELEASED_CAMERAS
            )
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> CameraRig:
        """Parse a camera rig YAML file (see config/cameras.yaml)."""
        try:
            data = yaml.safe_load(Path(path).read_text())
        except OSError as err:
            raise CameraRigError(f"cannot read camera config {path}: {err}") from err
        except yaml.YAMLError as err:
            raise CameraRigError(f"camera config {path} is not valid YAML: {err}") from err
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CameraRig:
        """Parse {"cameras": [{"name": ..., "topic": ..., "encoding": ..., "crop": ...,
        "note": ..., "image_size": [width, height]}]}."""
        if not isinstance(data, dict) or "cameras" not in data:
            raise CameraRigError("camera config must be a mapping with a 'cameras' list")
        entries = data["cameras"]
        if not isinstance(entries, list):
            raise CameraRigError(f"'cameras' must be a list, got {type(entries).__name__}")
        cams = []
        known = {"name", "topic", "encoding", "crop", "note", "image_size"}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise CameraRigError(f"cameras[{i}] must be a mapping, got {entry!r}")
            unknown = set(entry) - known
            if unknown:
                raise CameraRigError(f"cameras[{i}] has unknown keys {sorted(unknown)}")
            for key in ("name", "topic"):
                if key not in entry:
                    raise CameraRigError(f"cameras[{i}] is missing '{key}'")
            crop = entry.get("crop")
            if crop is not None:
                try:
                    crop = tuple(float(v) for v in crop)
                except (TypeError, ValueError) as err:
                    raise CameraRigError(
                        f"cameras[{i}].crop must be [x0, y0, x1, y1] fractions, got {crop!r}"
                    ) from err
            size = entry.get("image_size")
            if size is not None and not isinstance(size, list | tuple):
                raise CameraRigError(
                    f"cameras[{i}].image_size must be [width, height], got {size!r}"
                )
            cams.append(
                CameraInput(
                    name=str(entry["name"]),
                    topic=str(entry["topic"]),
                    encoding=str(entry.get("encoding", "compressed")),
                    crop=crop,
                    note=str(entry.get("note", "")),
                    image_size=tuple(size) if size is not None else None,
                )
            )
        return cls(tuple(cams))
