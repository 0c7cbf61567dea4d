"""Warming a compiled engine up before the first plan: synthetic inputs the size of the
cameras' frames, cropped as the rig crops, and the planner running each kind of model call
once on them without counting a tick or publishing anything."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_worker_two_lane import LanePolicy

from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.encoded_image import EncodedImage
from alpamayo_ros.planning.planner import Planner, WarmUpFailed
from alpamayo_ros.planning.warm_up import (
    FrameSizeCheck,
    WarmUpFrames,
    synthetic_inputs,
    warm_up_wanted,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
# The PandaSet rig (its telephoto camera a crop) without its image sizes.
UNSIZED_RIG = CameraRig(
    tuple(
        replace(c, image_size=None)
        for c in CameraRig.from_yaml(CONFIG / "pandaset_cameras.yaml").cameras
    )
)


def test_warm_up_is_wanted_for_the_engine_that_compiles():
    assert warm_up_wanted("auto", "fast")
    assert not warm_up_wanted("auto", "eager")
    assert warm_up_wanted("on", "eager")
    assert not warm_up_wanted("off", "fast")
    with pytest.raises(ValueError, match=r"warm_up must be one of .* got 'always'"):
        warm_up_wanted("always", "fast")


def test_bad_warm_up_sizes_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"WarmUpFrames\.height must be 16 to 16384 pixels, got 8"):
        WarmUpFrames(1920, 8)


@pytest.mark.parametrize("jpeg", [False, True])
def test_synthetic_inputs_fill_every_camera_of_the_rig_at_its_size_and_crop(jpeg):
    spec = WarmUpFrames(width=320, height=180, frames_per_camera=2, jpeg=jpeg)
    inputs = synthetic_inputs(UNSIZED_RIG, spec, num_poses=16, ego_dt=0.1, t0=3.0)
    frames = inputs.frames
    assert frames.cameras == UNSIZED_RIG.names
    assert frames.stamps.shape == (4, 2)
    np.testing.assert_allclose(frames.stamps[:, -1], 3.0)
    np.testing.assert_allclose(frames.stamps[:, 0], 2.9)
    for cam, images in zip(UNSIZED_RIG.cameras, frames.images, strict=True):
        assert len(images) == 2
        for img in images:
            assert isinstance(img, EncodedImage if jpeg else np.ndarray)
            # the telephoto stand-in keeps the centre 55 % of the front camera
            expected = (100, 176, 3) if cam.crop is not None else (180, 320, 3)
            assert img.shape == expected, cam.name
    if not jpeg:  # frames differ, as real ones do (one vision-cache entry each)
        flat = [img for cam in frames.images for img in cam]
        assert not any(np.array_equal(flat[0], other) for other in flat[1:])
    ego = inputs.ego
    assert ego.t0 == 3.0 and ego.speed == 0.0
    assert ego.xyz.shape == (16, 3) and ego.rot.shape == (16, 3, 3)
    np.testing.assert_allclose(ego.stamps[[0, -1]], [1.5, 3.0])


def warm_up_inputs():
    return synthetic_inputs(CameraRig.released_default(), WarmUpFrames(64, 36))


def test_two_lane_warm_up_runs_each_kind_of_call_once_and_counts_no_tick():
    policy = LanePolicy(reasoning_steps=3)
    planner = Planner(policy, CameraRig.released_default())
    planner.ticks = 7
    seconds = planner.warm_up(warm_up_inputs(), two_lane=True)
    assert seconds >= 0.0
    assert policy.log == [
        "full@0.0", "trajectory@0.0:chain0", "reason@0.0", "step0", "step1", "step2",
    ]  # fmt: skip
    assert planner.ticks == 7  # the seeds of later plans are unchanged


def test_full_mode_warm_up_is_one_full_plan():
    policy = LanePolicy()
    Planner(policy, CameraRig.released_default()).warm_up(warm_up_inputs(), two_lane=False)
    assert policy.log == ["full@0.0"]


def test_a_model_failing_in_the_warm_up_is_raised_with_its_error():
    class Failing(LanePolicy):
        def plan(self, requests, **kw):
            raise RuntimeError("CUDA out of memory")

    planner = Planner(Failing(), CameraRig.released_default())
    with pytest.raises(WarmUpFailed, match="model error: RuntimeError: CUDA out of memory"):
        planner.warm_up(warm_up_inputs(), two_lane=True)
    assert planner.ticks == 0


def test_a_failing_reasoning_lane_fails_the_warm_up():
    class BadChains(LanePolicy):
        def reason_steps(self, request, **kw):
            yield "token"
            raise ValueError("chain holds a vision placeholder")

    planner = Planner(BadChains(), CameraRig.released_default())
    with pytest.raises(WarmUpFailed, match="ValueError: chain holds a vision placeholder"):
        planner.warm_up(warm_up_inputs(), two_lane=True)


def test_shutting_down_stops_the_warm_up_quietly():
    """A node closed while it warms up: the abandoned plan raises (as a cancelled plan
    does), the warm-up ends without an error and makes no further call."""
    planner = Planner(None, CameraRig.released_default())

    class Cancelled(LanePolicy):
        def plan(self, requests, **kw):
            self.log.append("full")
            planner.cancel.set()
            raise RuntimeError("cancelled")

    planner.policy = policy = Cancelled()
    planner.warm_up(warm_up_inputs(), two_lane=True)
    assert policy.log == ["full"]


MIXED_RIG = CameraRig.from_dict({"cameras": [
    {"name": "camera_front_wide_120fov", "topic": "/front", "image_size": [320, 180]},
    {"name": "camera_front_tele_30fov", "topic": "/front", "crop": [0.25, 0.25, 0.75, 0.75]},
    {"name": "camera_cross_left_120fov", "topic": "/left"},
]})  # fmt: skip  # a vehicle whose cameras differ in size: one sized in the rig


def test_each_camera_is_warmed_up_at_its_rig_size_and_the_rest_at_the_default():
    spec = WarmUpFrames(width=64, height=48, frames_per_camera=1)
    frames = synthetic_inputs(MIXED_RIG, spec).frames
    assert [cam[0].shape for cam in frames.images] == [(180, 320, 3), (90, 160, 3), (48, 64, 3)]
    assert spec.describe(MIXED_RIG) == "320x180 and 64x48"
    assert WarmUpFrames(320, 180).describe(MIXED_RIG) == "320x180"


def test_frames_of_another_size_are_reported_once_per_topic():
    check = FrameSizeCheck(WarmUpFrames(1920, 1080), CameraRig.released_default(prefix=""))
    front = "/camera_front_wide_120fov/image_raw/compressed"
    left = "/camera_cross_left_120fov/image_raw/compressed"
    assert check.check(front, (1080, 1920, 3)) is None
    message = check.check(left, (720, 1280, 3))
    assert message is not None
    assert f"{left} sends 1280x720 frames" in message and "warmed up on 1920x1080" in message
    assert "warm_up_width, warm_up_height; or image_size in the camera config" in message
    assert check.check(left, (720, 1280, 3)) is None  # said once
    assert check.check(front, (720, 1280, 3)) is None  # that topic was already checked
    assert check.check("/not/in/the/rig", (720, 1280, 3)) is None


def test_a_topic_is_checked_against_its_rig_size():
    check = FrameSizeCheck(WarmUpFrames(64, 48), MIXED_RIG)
    assert check.check("/front", (180, 320, 3)) is None  # its image_size, not the default
    assert check.check("/left", (48, 64, 3)) is None
    check = FrameSizeCheck(WarmUpFrames(64, 48), MIXED_RIG)
    message = check.check("/front", (48, 64, 3))
    assert message is not None and "warmed up on 320x180 for it" in message
    assert "cameras[camera_front_wide_120fov].image_size in the camera config" in message
