"""Rig suggestion: the vehicle's cameras matched to the model's by heading and field of
view, a telephoto from a centre crop when no narrow camera exists, and notes for what does
not fit."""

import pytest
import yaml

from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.cameras import check_camera_layout
from alpamayo_ros.core.rig_suggestion import CameraView, suggest_rig, yaw_and_fov

HYPERION = [  # the released rig, listed out of order, plus a rear camera
    CameraView("/tele", 0.5, 30.0),
    CameraView("/wide", -0.5, 120.0),
    CameraView("/left", 61.0, 120.0),
    CameraView("/right", -59.0, 120.0),
    CameraView("/rear", 180.0, 30.0, "raw"),
]


def by_name(suggestion):
    return {e["name"]: e for e in suggestion.entries}


def test_the_released_rig_is_found_whatever_the_order_and_parses():
    s = suggest_rig(HYPERION, "alpamayo1")
    got = by_name(s)
    assert [e["name"] for e in s.entries] == [
        "camera_cross_left_120fov", "camera_front_wide_120fov", "camera_cross_right_120fov",
        "camera_front_tele_30fov",
    ]  # fmt: skip
    assert got["camera_front_wide_120fov"]["topic"] == "/wide"  # not the narrow one
    assert (
        got["camera_front_tele_30fov"]["topic"] == "/tele"
        and "crop" not in got["camera_front_tele_30fov"]
    )
    assert s.complete and s.notes == ("topics not used: ['/rear']",)
    rig = CameraRig.from_dict(yaml.safe_load(s.to_yaml()))
    check_camera_layout(rig.names, "alpamayo1", 4)


def test_alpamayo_1_5_also_takes_the_rear_camera():
    got = by_name(suggest_rig(HYPERION, "alpamayo1_5"))
    assert got["camera_rear_tele_30fov"] == {
        "name": "camera_rear_tele_30fov", "topic": "/rear", "encoding": "raw",
    }  # fmt: skip


def test_a_single_front_camera():
    """The issue's example vehicle: one 60 degree front camera."""
    views = [CameraView("/front", 0.0, 60.0)]
    one = suggest_rig(views, "alpamayo1_5")
    got = by_name(one)
    assert got["camera_front_wide_120fov"]["topic"] == "/front"
    assert "60 deg field of view stands in for 120" in got["camera_front_wide_120fov"]["note"]
    tele = got["camera_front_tele_30fov"]
    assert tele["topic"] == "/front" and tele["crop"] == [0.268, 0.268, 0.732, 0.732]
    assert one.complete
    a1 = suggest_rig(views, "alpamayo1")
    assert not a1.complete and "Alpamayo 1 checkpoints need all four" in a1.notes[0]


def test_yaw_and_fov_of_a_pinhole_camera_looking_left():
    # Optical axes for a camera yawed +90 deg: z (forward) along ego +y, x (right) along -x.
    rot = [[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]
    yaw, fov = yaw_and_fov(rot, fx=500.0, width=1000)
    assert yaw == pytest.approx(90.0) and fov == pytest.approx(90.0)


def test_nothing_pointing_the_models_way():
    s = suggest_rig([CameraView("/side", 100.0, 60.0)], "alpamayo1_5")
    assert not s.complete and s.entries == ()


def test_image_sizes_from_camera_info_are_written_for_the_warm_up():
    views = [CameraView("/front", 0.0, 60.0, "compressed", 1280, 720)]
    got = by_name(suggest_rig(views, "alpamayo1_5"))
    assert got["camera_front_wide_120fov"]["image_size"] == [1280, 720]
    assert got["camera_front_tele_30fov"]["image_size"] == [1280, 720]  # its crop, same topic
    assert all("image_size" not in e for e in suggest_rig(HYPERION, "alpamayo1").entries)
    text = suggest_rig(views, "alpamayo1_5").to_yaml()
    assert "image_size: [1280, 720]" in text
    rig = CameraRig.from_dict(yaml.safe_load(text))
    assert {c.image_size for c in rig.cameras} == {(1280, 720)}
