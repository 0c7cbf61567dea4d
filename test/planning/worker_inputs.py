"""Test helper for the worker tests: the released rig and an input set at t0 (8x8 frames,
a 2 s straight ego history)."""

import numpy as np

from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.ego_history import EgoPoseBuffer, StampedPose
from alpamayo_ros.core.frame_buffer import FrameSet
from alpamayo_ros.planning.planner import PlanInputs

RIG = CameraRig.released_default()


def inputs(t0: float) -> PlanInputs:
    poses = EgoPoseBuffer()
    for k in range(20):
        poses.add(StampedPose(t0 - 1.9 + 0.1 * k, (0.1 * k, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    img = np.zeros((8, 8, 3), np.uint8)
    frames = FrameSet(t0, RIG.names, tuple((img,) * 4 for _ in RIG.names), np.zeros((4, 4)))
    return PlanInputs(t0, frames, poses.history(t0))
