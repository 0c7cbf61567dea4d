"""Plan <-> ROS messages: DrivingPlan, nav_msgs/Path, std_msgs/String and MarkerArray out,
DrivingPlan in (for controllers).

Messages are built through a type lookup so the same code serves rclpy (live nodes) and
rosbags (replay): `types(name)` returns the class for e.g. "nav_msgs/msg/Path", in a node
`rosidl_runtime_py.utilities.get_message`, offline a rosbags typestore's `types[name]`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np

from alpamayo_ros.core.meta_actions import META_ACTIONS
from alpamayo_ros.core.plan import Plan
from alpamayo_ros.messages.inputs import BadMessage, split_seconds, stamp_seconds

TypeLookup = Callable[[str], Any]

# The text marker above the car wraps at this many characters a line (long causal chains
# otherwise run across the whole 3D view).
MARKER_TEXT_WIDTH = 48
# Speed colour scale of the trajectory marker: blue at 0 m/s to red at this speed.
MARKER_MAX_SPEED = 20.0


def new_message(
    cls: Any, fields: dict[str, Any], offline_defaults: Callable[[], dict[str, Any]] | None = None
) -> Any:
    """cls(**fields) for either kind of message class.

    rclpy classes default every field they are not given (and reject numpy arrays for
    byte sequences), so they get `fields` only; rosbags dataclasses need every field, so
    `offline_defaults()` supplies the rest for them. Fields the installed definition lacks
    are dropped (Humble's Marker has no texture, mesh_file or uv_coordinates).
    """
    if hasattr(cls, "get_fields_and_field_types"):  # rclpy
        known = {name.lstrip("_") for name in cls.get_fields_and_field_types()}
        return cls(**{k: v for k, v in fields.items() if k in known})
    merged = {**(offline_defaults() if offline_defaults else {}), **fields}
    known = set(getattr(cls, "__dataclass_fields__", merged))
    return cls(**{k: v for k, v in merged.items() if k in known})


def time_msg(types: TypeLookup, seconds: float) -> Any:
    """builtin_interfaces/Time (zero for a non-finite time: "unknown")."""
    sec, nanosec = split_seconds(seconds) if math.isfinite(seconds) else (0, 0)
    return types("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def duration_msg(types: TypeLookup, seconds: float) -> Any:
    sec, nanosec = split_seconds(seconds)
    return types("builtin_interfaces/msg/Duration")(sec=sec, nanosec=nanosec)


def header_msg(types: TypeLookup, seconds: float, frame_id: str) -> Any:
    return types("std_msgs/msg/Header")(stamp=time_msg(types, seconds), frame_id=frame_id)


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
            time_from_start=duration_msg(types, float(t)),
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
        header=header_msg(types, plan.stamp, plan.frame_id),
        reasoning=plan.reasoning,
        meta_actions=[m for m in plan.meta_actions if m in META_ACTIONS],
        points=points,
        dt=float(plan.dt),
        chosen_sample=int(plan.chosen_sample),
        num_samples=int(plan.num_samples),
        is_fallback=bool(plan.is_fallback),
        fallback_reason=plan.fallback_reason,
        camera_names=list(plan.camera_names),
        camera_stamps=[time_msg(types, float(s)) for s in stamps],
        odometry_stamp=time_msg(types, plan.odometry_stamp),
        preprocess_ms=float(lat.get("preprocess", nan)),
        prefill_ms=float(lat.get("prefill", nan)),
        reasoning_ms=float(lat.get("reasoning", nan)),
        trajectory_ms=float(lat.get("trajectory", nan)),
        total_ms=float(lat.get("total", nan)),
        model_id=plan.model_id,
        lane=plan.lane,
        chain_stamp=time_msg(types, plan.chain_stamp),
        navigation=plan.navigation,
    )


def path_msg(plan: Plan, types: TypeLookup) -> Any:
    """nav_msgs/Path: one pose per trajectory point, in the plan's frame, stamped t0 + t."""
    pose_cls = types("geometry_msgs/msg/PoseStamped")
    pose = types("geometry_msgs/msg/Pose")
    poses = [
        pose_cls(
            header=header_msg(types, plan.stamp + float(t), plan.frame_id),
            pose=pose(position=_point(types, *p), orientation=_quaternion_yaw(types, float(h))),
        )
        for t, p, h in zip(plan.times, plan.xyz, plan.heading, strict=True)
    ]
    return types("nav_msgs/msg/Path")(
        header=header_msg(types, plan.stamp, plan.frame_id), poses=poses
    )


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
    header = header_msg(types, plan.stamp, plan.frame_id)
    pose = types("geometry_msgs/msg/Pose")
    identity = pose(position=_point(types, 0, 0, 0), orientation=_quaternion_yaw(types, 0.0))
    vec = types("geometry_msgs/msg/Vector3")
    lifetime = duration_msg(types, 0.5)

    def offline_defaults() -> dict[str, Any]:
        empty = np.zeros(0, dtype=np.uint8)
        return dict(
            mesh_resource="", mesh_use_embedded_materials=False, texture_resource="",
            mesh_file=types("visualization_msgs/msg/MeshFile")(filename="", data=empty),
            texture=types("sensor_msgs/msg/CompressedImage")(
                header=header, format="", data=empty
            ),
            uv_coordinates=[],
        )  # fmt: skip

    def make(mid: int, kind: int, scale: Any, color: Any, points, colors, text: str, at: Any):
        fields = dict(
            header=header, ns=namespace, id=mid, type=kind, action=0, pose=at, scale=scale,
            color=color, lifetime=lifetime, frame_locked=False, points=points, colors=colors,
            text=text,
        )  # fmt: skip
        return new_message(marker, fields, offline_defaults)

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
    text = textwrap.fill(text, MARKER_TEXT_WIDTH)
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


def plan_from_msg(msg: Any) -> Plan:
    """alpamayo_ros/msg/DrivingPlan -> Plan. Raises BadMessage naming the field when the
    message is malformed (no points, times off the dt grid, NaN, unknown meta-actions)."""
    stamp = stamp_seconds(msg.header.stamp)
    where = f"DrivingPlan at {stamp:.3f} s"
    points = list(msg.points)
    if not points:
        raise BadMessage(f"{where}: points is empty")
    dt = float(msg.dt)
    times = np.array([stamp_seconds(p.time_from_start) for p in points])
    if not dt > 0 or np.abs(times - dt * np.arange(1, len(points) + 1)).max() > 1e-3:
        raise BadMessage(
            f"{where}: points[].time_from_start must be dt, 2 dt, ... with dt = {dt} s "
            f"(got {times[:3].tolist()} ...)"
        )
    names = tuple(msg.camera_names)
    stamps = np.array([stamp_seconds(s) for s in msg.camera_stamps], dtype=np.float64)
    latency = {
        stage: float(value)
        for stage, value in (
            ("preprocess", msg.preprocess_ms), ("prefill", msg.prefill_ms),
            ("reasoning", msg.reasoning_ms), ("trajectory", msg.trajectory_ms),
            ("total", msg.total_ms),
        )
        if math.isfinite(value)
    }  # fmt: skip
    try:
        return Plan(
            stamp=stamp,
            xyz=np.array([[p.x, p.y, p.z] for p in points], dtype=np.float64),
            heading=np.array([p.heading for p in points], dtype=np.float64),
            speed=np.array([p.speed for p in points], dtype=np.float64),
            accel=np.array([p.acceleration for p in points], dtype=np.float64),
            curvature=np.array([p.curvature for p in points], dtype=np.float64),
            dt=dt,
            frame_id=msg.header.frame_id,
            reasoning=msg.reasoning,
            meta_actions=tuple(msg.meta_actions),
            chosen_sample=int(msg.chosen_sample),
            num_samples=int(msg.num_samples),
            is_fallback=bool(msg.is_fallback),
            fallback_reason=msg.fallback_reason,
            camera_names=names,
            camera_stamps=stamps.reshape(len(names), -1) if names else np.zeros((0, 0)),
            odometry_stamp=stamp_seconds(msg.odometry_stamp),
            latency_ms=latency,
            model_id=msg.model_id,
            lane=str(getattr(msg, "lane", "")),
            chain_stamp=_optional_stamp(getattr(msg, "chain_stamp", None)),
            navigation=str(getattr(msg, "navigation", "")),
        )
    except ValueError as err:
        raise BadMessage(f"{where}: {err}") from err


def _optional_stamp(stamp: Any) -> float:
    """Seconds of a builtin_interfaces/Time, NaN for none or zero ("unknown")."""
    if stamp is None or (stamp.sec == 0 and stamp.nanosec == 0):
        return math.nan
    return stamp_seconds(stamp)
