"""Camera rig parsing: config files of the package and errors naming the field."""

from pathlib import Path

import pytest
import yaml

from alpamayo_ros.core.camera_rig import CameraRig, CameraRigError
from alpamayo_ros.core.frame_buffer import RELEASED_CAMERAS

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize("name", ["cameras.yaml", "pandaset_cameras.yaml"])
def test_shipped_rigs_parse_in_the_released_order(name):
    rig = CameraRig.from_dict(yaml.safe_load((CONFIG / name).read_text()))
    assert rig.names == RELEASED_CAMERAS


def test_one_topic_can_feed_two_cameras():
    rig = CameraRig.from_dict(yaml.safe_load((CONFIG / "pandaset_cameras.yaml").read_text()))
    feeds = rig.by_topic()["/camera/front/image_raw/compressed"]
    assert [c.name for c in feeds] == ["camera_front_wide_120fov", "camera_front_tele_30fov"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "a", "topic": "/a", "encoding": "png"}, "encoding"),
        ({"name": "a", "topic": "a"}, "topic"),
        ({"name": "a", "topic": "/a", "crop": [0.5, 0, 0.4, 1]}, "crop"),
        ({"name": "a", "topic": "/a", "crop": [0.2, "0.y5", 0.8, 1]}, r"crop must be .*0\.y5"),
        ({"name": "a", "topic": "/a", "crop": 5}, r"cameras\[0\]\.crop must be \[x0, y0"),
        ({"name": "a"}, "missing 'topic'"),
        ({"name": "a", "topic": "/a", "fov": 30}, "unknown keys"),
        ({"name": "a", "topic": "/a", "image_size": 1920}, r"image_size must be \[width, height\]"),
        ({"name": "a", "topic": "/a", "image_size": [1920]}, r"got \[1920\]"),
        ({"name": "a", "topic": "/a", "image_size": [1920.5, 1080]}, r"whole pixels.*1920\.5"),
        ({"name": "a", "topic": "/a", "image_size": [1920, 8]}, r"16384 each, got \[1920, 8\]"),
    ],
)
def test_bad_entries_fail_naming_the_field(entry, message):
    with pytest.raises(CameraRigError, match=message):
        CameraRig.from_dict({"cameras": [entry]})


def test_shipped_single_front_camera_rig_is_for_alpamayo_1_5_only():
    from alpamayo_ros.core.cameras import CameraLayoutError, check_camera_layout

    rig = CameraRig.from_yaml(CONFIG / "single_front_camera.yaml")
    assert rig.names == ("camera_front_wide_120fov",)
    for frames in (1, 4):
        check_camera_layout(rig.names, "alpamayo1_5", frames)
    with pytest.raises(CameraLayoutError, match="Alpamayo 1 checkpoints read all four"):
        check_camera_layout(rig.names, "alpamayo1", 4)


def test_image_size_is_per_topic_and_a_crop_of_a_sized_topic_takes_its_size():
    rig = CameraRig.from_yaml(CONFIG / "pandaset_cameras.yaml")
    assert {c.image_size for c in rig.cameras} == {(960, 540)}  # the sample drive's images
    rig = CameraRig.from_dict({"cameras": [
        {"name": "wide", "topic": "/front", "image_size": [1280, 720]},
        {"name": "tele", "topic": "/front", "crop": [0.25, 0.25, 0.75, 0.75]},
        {"name": "left", "topic": "/left"},
    ]})  # fmt: skip
    assert [c.image_size for c in rig.cameras] == [(1280, 720), (1280, 720), None]


def test_two_sizes_for_one_topic_are_refused_naming_both_cameras():
    entries = [
        {"name": "wide", "topic": "/front", "image_size": [1280, 720]},
        {"name": "tele", "topic": "/front", "image_size": [1920, 1080]},
    ]
    with pytest.raises(
        CameraRigError,
        match=r"cameras\[tele\]\.image_size \[1920, 1080\] differs from "
        r"cameras\[wide\]\.image_size \[1280, 720\], both on topic /front",
    ):
        CameraRig.from_dict({"cameras": entries})
