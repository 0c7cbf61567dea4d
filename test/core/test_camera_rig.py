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
        ({"name": "a"}, "missing 'topic'"),
        ({"name": "a", "topic": "/a", "fov": 30}, "unknown keys"),
    ],
)
def test_bad_entries_fail_naming_the_field(entry, message):
    with pytest.raises(CameraRigError, match=message):
        CameraRig.from_dict({"cameras": [entry]})
