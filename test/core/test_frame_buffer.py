"""Frame buffer: assembling sets at t0, reporting missing or late cameras, bounded memory."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpamayo_ros.core.frame_buffer import (
    RELEASED_CAMERAS,
    FrameBuffer,
    FrameBufferSpec,
    FramesUnavailable,
)


def filled(until: float = 1.0, skip: str | None = None, jitter: float = 0.01) -> FrameBuffer:
    buf = FrameBuffer()
    for k in range(round(until * 10) + 1):
        for c, cam in enumerate(RELEASED_CAMERAS):
            if cam != skip:
                buf.add(cam, 0.1 * k + jitter * c, f"{cam}@{k}")
    return buf


def test_assembles_four_frames_per_camera_in_the_released_order():
    buf = filled()
    t0 = buf.newest_complete_t0()
    assert t0 == pytest.approx(1.0)
    fs = buf.assemble(t0)
    assert fs.cameras == RELEASED_CAMERAS
    assert [len(row) for row in fs.images] == [4, 4, 4, 4]
    assert fs.images[1] == tuple(f"{RELEASED_CAMERAS[1]}@{k}" for k in (7, 8, 9, 10))
    assert fs.flat()[0] == f"{RELEASED_CAMERAS[0]}@7"
    assert fs.stamps.shape == (4, 4)


def test_newest_complete_t0_at_most_a_time_takes_only_frames_stamped_before_it():
    buf = filled(jitter=0.01)  # camera c at 0.1 k + 0.01 c
    assert buf.newest_complete_t0() == pytest.approx(1.0)
    assert buf.newest_complete_t0(at_most=0.95) == pytest.approx(0.9)
    assert buf.newest_complete_t0(at_most=1.02) == pytest.approx(0.93)  # camera 3's 1.03 not yet
    assert buf.newest_complete_t0(at_most=1.03) == pytest.approx(1.0)
    assert buf.newest_complete_t0(at_most=-0.5) is None


def test_missing_and_late_cameras_are_named():
    buf = filled(skip="camera_front_tele_30fov")
    with pytest.raises(FramesUnavailable) as err:
        buf.assemble(1.0)
    assert err.value.problems == {"camera_front_tele_30fov": "no frame received"}
    buf = filled()
    with pytest.raises(FramesUnavailable) as err:
        buf.assemble(1.3)
    assert set(err.value.problems) == set(RELEASED_CAMERAS)
    assert all(why.startswith("late") for why in err.value.problems.values())


def test_a_dropped_frame_in_the_middle_is_reported():
    buf = FrameBuffer()
    for k in range(11):
        for cam in RELEASED_CAMERAS:
            if not (cam == RELEASED_CAMERAS[2] and k == 9):
                buf.add(cam, 0.1 * k, k)
    with pytest.raises(FramesUnavailable, match=r"missing frame near 0\.900"):
        buf.assemble(1.0)


def test_unknown_camera_is_refused_by_name():
    with pytest.raises(KeyError, match="camera_rear"):
        FrameBuffer().add("camera_rear", 0.0, None)


def test_out_of_order_frames_are_sorted():
    buf = FrameBuffer(FrameBufferSpec(cameras=("a",), num_frames=3))
    for k in (3, 1, 2, 0):
        buf.add("a", 0.1 * k, k)
    assert buf.assemble(0.3).images == ((1, 2, 3),)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=300), st.integers(4, 20)
)
def test_memory_stays_bounded_whatever_the_input(stamps, capacity):
    spec = FrameBufferSpec(cameras=("a", "b"), capacity=capacity)
    buf = FrameBuffer(spec)
    for i, s in enumerate(stamps):
        buf.add("ab"[i % 2], s, i)
        assert len(buf) <= 2 * capacity
    for cam in ("a", "b"):
        ring = buf._rings[cam]
        assert list(ring.stamps) == sorted(ring.stamps)


def test_spec_validation_names_the_field():
    with pytest.raises(ValueError, match="tolerance"):
        FrameBufferSpec(tolerance=0.2)
    with pytest.raises(ValueError, match="duplicates"):
        FrameBufferSpec(cameras=("a", "a"))
    np.testing.assert_allclose(FrameBufferSpec().offsets, [-0.3, -0.2, -0.1, 0.0])
