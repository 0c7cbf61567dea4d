"""ROS-free, torch-free core: unicycle trajectories, tokens, ego history, frame buffer,
meta-actions and the plan value. Imports numpy, transforms3d and the standard library only."""

from alpamayo_ros.core.ego_history import (
    EgoHistory,
    EgoHistorySpec,
    EgoHistoryUnavailable,
    EgoPoseBuffer,
    StampedPose,
)
from alpamayo_ros.core.frame_buffer import (
    RELEASED_CAMERAS,
    FrameBuffer,
    FrameBufferSpec,
    FrameSet,
    FramesUnavailable,
)
from alpamayo_ros.core.meta_actions import (
    META_ACTIONS,
    MetaActionThresholds,
    extract_meta_actions,
    meta_actions_in_text,
)
from alpamayo_ros.core.plan import Plan, PlanLimits, make_stop_plan, plan_problems
from alpamayo_ros.core.tokens import BinLayout, ControlTokenizer, HistoryDeltaTokenizer
from alpamayo_ros.core.trajectory import (
    UnicycleRollout,
    UnicycleSpec,
    fit_controls,
    held_at_standstill,
    integrate,
    rotation_from_yaw,
    yaw_from_rotation,
)

__all__ = [
    "META_ACTIONS",
    "RELEASED_CAMERAS",
    "BinLayout",
    "ControlTokenizer",
    "EgoHistory",
    "EgoHistorySpec",
    "EgoHistoryUnavailable",
    "EgoPoseBuffer",
    "FrameBuffer",
    "FrameBufferSpec",
    "FrameSet",
    "FramesUnavailable",
    "HistoryDeltaTokenizer",
    "MetaActionThresholds",
    "Plan",
    "PlanLimits",
    "StampedPose",
    "UnicycleRollout",
    "UnicycleSpec",
    "extract_meta_actions",
    "fit_controls",
    "held_at_standstill",
    "integrate",
    "make_stop_plan",
    "meta_actions_in_text",
    "plan_problems",
    "rotation_from_yaw",
    "yaw_from_rotation",
]
