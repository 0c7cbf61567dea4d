"""Plan -> ROS messages (DrivingPlan, nav_msgs/Path, std_msgs/String, MarkerArray), built
through a type lookup so the same code serves rclpy (live nodes) and rosbags (replay).

`types(name)` returns the message class for e.g. "nav_msgs/msg/Path": in a node,
`rosidl_runtime_py.utilities.get_message`; offline, a rosbags typestore's `types[name]`.
Every field is passed explicitly, which both kinds of class accept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from alpamayo_ros.core.meta_actions import META_ACTIONS
from alpamayo_ros.core.plan import Plan

TypeLookup = Callable[[str], Any]

# Speed colour scale of the trajectory marker: blue at 0 m/s to red at this speed.
MARKER_MAX_SPEED = 20.0


def _new(cls: Any, **fields: Any) -> Any:
    """cls(**fields) without the fields this distribution's definition lacks (Humble's
    Marker has no texture, mesh_file or uv_coordinates, for example)."""
    if hasattr(cls, "get_fields_and_field_types"):  # rclpy
        known = {name.lstrip("_") for name in cls.get_fields_and_field_types()}
    else:  # rosbags dataclass
        known = set(getattr(cls, "__dataclass_fields__", fields))
    return cls(**{k: v for k, v in fields.items() if k in known})


def _time(types: TypeLookup, seconds: float) -> Any:
    ns = round(seconds * 1e9) if math.isfinite(seconds) else 0
    return types("builtin_interfaces/msg/Time")(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _duration(types: TypeLookup, seconds: float) -> Any:
    ns = round(seconds * 1e9)
    return types("builtin_interfaces/msg/Duration")(
        sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000
    )


def _header(types: TypeLookup, seconds: float, frame_id: str) -> Any:
    return types("std_msgs/msg/Header")(stamp=_time(types, seconds), frame_id=frame_id)


def _quaternion_yaw(types: TypeLookup, yaw: float) -> Any:
    return types("geometry_msgs/msg/Quaternion")(
        x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)
    )


def _point(types: TypeLookup, x: float, y: float, z: float) -> Any:
    return types("geometry_msgs/msg/Point")(x=float(x), y=float(y), z=float(z))


def driving_plan_msg(plan: Plan, types: TypeLookup) -> Any:
    """alpamayo_ros/msg/DrivingPlan."""
    point_cls = types("alpamayo_ros/msg/TrajectoryPoint")
    points = [
        point_cls(
            time_from_start=_duration(types, float(t)),
            x=float(p[0]),
            y=float(p[1]),
            z=float(p[2]),
            heading=float(h),
            speed=float(v),
            acceleration=float(a),
            curvature=float(k),
        )
        for t, p, h, v, a, k in zip(
            plan.times, plan.xyz, plan.heading, plan.speed, plan.accel, plan.curvature, strict=True
        )
    ]
    stamps = np.asarray(plan.camera_stamps, dtype=np.float64).reshape(-1)
    nan = float("nan")
    lat = plan.latency_ms
    return types("alpamayo_ros/msg/DrivingPlan")(
        header=_header(types, plan.stamp, plan.frame_id),
        reasoning=plan.reasoning,
        meta_actions=[m for m in plan.meta_actions if m in META_ACTIONS],
        points=points,
        dt=float(plan.dt),
        chosen_sample=int(plan.chosen_sample),
        num_samples=int(plan.num_samples),
        is_fallback=bool(plan.is_fallback),
        fallback_reason=plan.fallback_reason,
        camera_names=list(plan.camera_names),
        camera_stamps=[_time(types, float(s)) for s in stamps],
        odometry_stamp=_time(types, plan.odometry_stamp),
        preprocess_ms=float(lat.get("preprocess", nan)),
        prefill_ms=float(lat.get("prefill", nan)),
        reasoning_ms=float(lat.get("reasoning", nan)),
        trajectory_ms=float(lat.get("trajectory", nan)),
        total_ms=float(lat.get("total", nan)),
        model_id=plan.model_id,
    )


def path_msg(plan: Plan, types: TypeLookup) -> Any:
    """nav_msgs/Path: one pose per trajectory point, in the plan's frame, stamped t0 + t."""
    pose_cls = types("geometry_msgs/msg/PoseStamped")
    pose = types("geometry_msgs/msg/Pose")
    poses = [
        pose_cls(
            header=_header(types, plan.stamp + float(t), plan.frame_id),
            pose=pose(position=_point(types, *p), orientation=_quaternion_yaw(types, float(h))),
        )
        for t, p, h in zip(plan.times, plan.xyz, plan.heading, strict=True)
    ]
    return types("nav_msgs/msg/Path")(header=_header(types, plan.stamp, plan.frame_id), poses=poses)


def reasoning_msg(plan: Plan, types: TypeLookup) -> Any:
    """std_msgs/String: the reasoning, or the fallback reason for a stop plan."""
    text = plan.reasoning if not plan.is_fallback else f"[fallback] {plan.fallback_reason}"
    return types("std_msgs/msg/String")(data=text)


def speed_rgb(speed: float) -> tuple[float, float, float]:
    """Colour of a speed (m/s), each channel in [0, 1]: blue (stopped) -> green -> red
    (MARKER_MAX_SPEED and above). Shared by the markers and the replay report."""
    f = min(max(speed / MARKER_MAX_SPEED, 0.0), 1.0)
    return (2 * f - 1 if f > 0.5 else 0.0, 1 - abs(2 * f - 1), 1 - 2 * f if f < 0.5 else 0.0)


def speed_color(speed: float, types: TypeLookup, alpha: float = 1.0) -> Any:
    """std_msgs/ColorRGBA of a speed (see speed_rgb)."""
    r, g, b = speed_rgb(speed)
    return types("std_msgs/msg/ColorRGBA")(r=float(r), g=float(g), b=float(b), a=float(alpha))


def marker_array_msg(plan: Plan, types: TypeLookup, namespace: str = "alpamayo") -> Any:
    """visualization_msgs/MarkerArray: the trajectory as a line coloured by speed, and the
    reasoning (or the fallback reason, in red) as text above the car."""
    marker = types("visualization_msgs/msg/Marker")
    header = _header(types, plan.stamp, plan.frame_id)
    pose = types("geometry_msgs/msg/Pose")
    identity = pose(position=_point(types, 0, 0, 0), orientation=_quaternion_yaw(types, 0.0))
    vec = types("geometry_msgs/msg/Vector3")
    lifetime = _duration(types, 0.5)

    def make(mid: int, kind: int, scale: Any, color: Any, points, colors, text: str, at: Any):
        return _new(
            marker,
            header=header, ns=namespace, id=mid, type=kind, action=0, pose=at, scale=scale,
            color=color, lifetime=lifetime, frame_locked=False, points=points, colors=colors,
            text=text, mesh_resource="", mesh_file=types("visualization_msgs/msg/MeshFile")(
                filename="", data=np.zeros(0, dtype=np.uint8)
            ), mesh_use_embedded_materials=False, texture_resource="",
            texture=types("sensor_msgs/msg/CompressedImage")(
                header=header, format="", data=np.zeros(0, dtype=np.uint8)
            ), uv_coordinates=[],
        )  # fmt: skip

    line_points = [_point(types, 0.0, 0.0, 0.0)] + [_point(types, *p) for p in plan.xyz]
    speeds = [float(plan.speed[0])] + [float(v) for v in plan.speed]
    line = make(
        0,
        4,
        vec(x=0.3, y=0.0, z=0.0),
        speed_color(speeds[0], types),
        line_points,
        [speed_color(v, types) for v in speeds],
        "",
        identity,
    )  # fmt: skip  (4 = LINE_STRIP)
    text = plan.reasoning if not plan.is_fallback else f"STOP: {plan.fallback_reason}"
    red = types("std_msgs/msg/ColorRGBA")(r=1.0, g=0.2, b=0.2, a=1.0)
    white = types("std_msgs/msg/ColorRGBA")(r=1.0, g=1.0, b=1.0, a=1.0)
    above = pose(position=_point(types, 0.0, 0.0, 3.0), orientation=_quaternion_yaw(types, 0.0))
    label = make(
        1, 9, vec(x=0.0, y=0.0, z=0.6), red if plan.is_fallback else white, [], [], text, above
    )  # 9 = TEXT_VIEW_FACING
    return types("visualization_msgs/msg/MarkerArray")(markers=[line, label])


def plan_messages(plan: Plan, types: TypeLookup) -> dict[str, Any]:
    """All four, keyed by their (node-relative) topic: plan, path, reasoning, markers."""
    return {
        "plan": driving_plan_msg(plan, types),
        "path": path_msg(plan, types),
        "reasoning": reasoning_msg(plan, types),
        "markers": marker_array_msg(plan, types),
    }
