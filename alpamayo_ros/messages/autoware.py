"""A plan as Autoware's planners publish it: autoware_planning_msgs/msg/Trajectory, every
field filled, and back (for tests and for integrators who consume it).

Frame and time: the trajectory starts with the ego pose at the plan's input time t0 (time
0, the vehicle's speed then) followed by the plan's states at dt, 2 dt, ...; header.stamp is
t0 and the frame is the plan's ego frame at t0 (base_link), or, given the ego pose at t0 in
a fixed frame (map or odom, e.g. from tf), that frame: what Autoware's controllers follow.
Per point: the pose with the heading as yaw, longitudinal velocity (m/s), acceleration
(m/s^2), heading rate = speed x curvature (rad/s), front wheel angle = atan(wheelbase x
curvature) (the kinematic bicycle, rad); lateral velocity and rear wheel angle 0.

All samples of a plan, as Autoware's learned planners offer them to its selector:
autoware_internal_planning_msgs/msg/CandidateTrajectories, one CandidateTrajectory per
sample (in sample order; the published one is DrivingPlan.chosen_sample), each converted as
above, and one GeneratorInfo naming the model; the generator id is a UUID derived from the
model id (uuid5), stable across runs.

The definitions (public autoware_msgs 1.x autoware_planning_msgs, autoware_internal_msgs
autoware_internal_planning_msgs) are written here so the replay and CI can serialize them
without Autoware installed.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.plan import Plan
from alpamayo_ros.messages.inputs import BadMessage, stamp_seconds
from alpamayo_ros.messages.plan import TypeLookup, duration_msg, header_msg

AUTOWARE_TRAJECTORY = "autoware_planning_msgs/msg/Trajectory"
AUTOWARE_MSG_DEFINITIONS = {
    "autoware_planning_msgs/msg/TrajectoryPoint": (
        "builtin_interfaces/Duration time_from_start\n"
        "geometry_msgs/Pose pose\n"
        "float32 longitudinal_velocity_mps\n"
        "float32 lateral_velocity_mps\n"
        "float32 acceleration_mps2\n"
        "float32 heading_rate_rps\n"
        "float32 front_wheel_angle_rad\n"
        "float32 rear_wheel_angle_rad\n"
    ),
    AUTOWARE_TRAJECTORY: (
        "std_msgs/Header header\nautoware_planning_msgs/TrajectoryPoint[] points\n"
    ),
    "autoware_internal_planning_msgs/msg/CandidateTrajectory": (
        "std_msgs/Header header\n"
        "unique_identifier_msgs/UUID generator_id\n"
        "autoware_planning_msgs/TrajectoryPoint[] points\n"
    ),
    "autoware_internal_planning_msgs/msg/GeneratorInfo": (
        "unique_identifier_msgs/UUID generator_id\nstd_msgs/String generator_name\n"
    ),
}
AUTOWARE_CANDIDATES = "autoware_internal_planning_msgs/msg/CandidateTrajectories"
AUTOWARE_MSG_DEFINITIONS[AUTOWARE_CANDIDATES] = (
    "autoware_internal_planning_msgs/CandidateTrajectory[] candidate_trajectories\n"
    "autoware_internal_planning_msgs/GeneratorInfo[] generator_info\n"
)
GENERATOR_PREFIX = "alpamayo_ros"


def front_wheel_angle(curvature: np.ndarray, wheelbase: float) -> np.ndarray:
    """(T,) rad of the kinematic bicycle (rear-axle reference) for curvature (T,) 1/m."""
    return np.arctan(wheelbase * np.asarray(curvature, dtype=np.float64))


def autoware_trajectory_msg(
    plan: Plan, types: TypeLookup, wheelbase: float, pose_t0: StampedPose | None = None,
    fixed_frame: str = "map",
) -> Any:  # fmt: skip
    """autoware_planning_msgs/msg/Trajectory of `plan` (see the module docstring); with
    `pose_t0` (the ego pose at t0 in `fixed_frame`) the points are in that frame."""
    points, frame = _points(plan, types, wheelbase, pose_t0, fixed_frame)
    return types(AUTOWARE_TRAJECTORY)(header=header_msg(types, plan.stamp, frame), points=points)


def generator_uuid(model_id: str) -> bytes:
    """The 16-byte generator id of a model: uuid5 of its id, stable across runs."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{GENERATOR_PREFIX}/{model_id}").bytes


def autoware_candidates_msg(
    plan: Plan, samples: Sequence[Plan], types: TypeLookup, wheelbase: float,
    pose_t0: StampedPose | None = None, fixed_frame: str = "map",
) -> Any:  # fmt: skip
    """autoware_internal_planning_msgs/msg/CandidateTrajectories of every sample of `plan`
    (`samples`: a Plan per sample, sample order), converted as autoware_trajectory_msg,
    with one GeneratorInfo named "alpamayo_ros: <model id>"."""
    uuid_cls = types("unique_identifier_msgs/msg/UUID")
    gen_id = np.frombuffer(generator_uuid(plan.model_id), dtype=np.uint8).copy()
    candidates = []
    for smp in samples:
        points, frame = _points(smp, types, wheelbase, pose_t0, fixed_frame)
        candidates.append(
            types("autoware_internal_planning_msgs/msg/CandidateTrajectory")(
                header=header_msg(types, plan.stamp, frame),
                generator_id=uuid_cls(uuid=gen_id.copy()),
                points=points,
            )
        )
    info = types("autoware_internal_planning_msgs/msg/GeneratorInfo")(
        generator_id=uuid_cls(uuid=gen_id.copy()),
        generator_name=types("std_msgs/msg/String")(
            data=f"{GENERATOR_PREFIX}: {plan.model_id or 'no model'}"
        ),
    )
    return types(AUTOWARE_CANDIDATES)(candidate_trajectories=candidates, generator_info=[info])


def _points(
    plan: Plan, types: TypeLookup, wheelbase: float, pose_t0: StampedPose | None,
    fixed_frame: str,
) -> tuple[list[Any], str]:  # fmt: skip
    """The Autoware points of a plan (ego at t0, then its states) and their frame."""
    if not wheelbase > 0:
        raise ValueError(f"wheelbase must be > 0 m, got {wheelbase}")
    xyz = np.concatenate([np.zeros((1, 3)), np.asarray(plan.xyz, dtype=np.float64)])
    xyz[0, 2] = xyz[1, 2] if len(xyz) > 1 else 0.0
    heading = np.concatenate([[0.0], plan.heading])
    accel = np.concatenate([[plan.accel[0]], plan.accel])
    curvature = np.concatenate([[plan.curvature[0]], plan.curvature])
    speed = np.concatenate([[plan.speed[0] - plan.accel[0] * plan.dt], plan.speed])
    times = np.concatenate([[0.0], plan.times])
    frame = plan.frame_id
    if pose_t0 is not None:
        q = pose_t0.quaternion
        yaw0 = math.atan2(2 * (q[0] * q[3] + q[1] * q[2]), 1 - 2 * (q[2] ** 2 + q[3] ** 2))
        c, s = math.cos(yaw0), math.sin(yaw0)
        x = c * xyz[:, 0] - s * xyz[:, 1] + pose_t0.position[0]
        y = s * xyz[:, 0] + c * xyz[:, 1] + pose_t0.position[1]
        xyz = np.stack([x, y, xyz[:, 2] + pose_t0.position[2]], axis=1)
        heading = heading + yaw0
        frame = fixed_frame
    pose_cls = types("geometry_msgs/msg/Pose")
    point_cls = types("autoware_planning_msgs/msg/TrajectoryPoint")
    wheel = front_wheel_angle(curvature, wheelbase)
    points = [
        point_cls(
            time_from_start=duration_msg(types, float(t)),
            pose=pose_cls(
                position=types("geometry_msgs/msg/Point")(x=float(p[0]), y=float(p[1]),
                                                          z=float(p[2])),
                orientation=types("geometry_msgs/msg/Quaternion")(
                    x=0.0, y=0.0, z=math.sin(h / 2), w=math.cos(h / 2)),
            ),
            longitudinal_velocity_mps=float(v),
            lateral_velocity_mps=0.0,
            acceleration_mps2=float(a),
            heading_rate_rps=float(v * k),
            front_wheel_angle_rad=float(w),
            rear_wheel_angle_rad=0.0,
        )
        for t, p, h, v, a, k, w in zip(times, xyz, heading, speed, accel, curvature, wheel,
                                       strict=True)
    ]  # fmt: skip
    return points, frame


def states_from_autoware(msg: Any) -> dict[str, np.ndarray | float | str]:
    """An Autoware Trajectory's states after its first point: t0 (s), frame, times (T,) s,
    xyz (T, 3) m, heading (T,) rad, speed (T,) m/s, accel (T,) m/s^2, heading_rate (T,)
    rad/s, front_wheel_angle (T,) rad. BadMessage when it has fewer than two points."""
    pts = list(msg.points)
    if len(pts) < 2:
        raise BadMessage(f"Autoware trajectory has {len(pts)} points, needs at least 2")
    rest = pts[1:]

    def yaw(q: Any) -> float:
        return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y**2 + q.z**2))

    return {
        "t0": stamp_seconds(msg.header.stamp),
        "frame": msg.header.frame_id,
        "times": np.array([stamp_seconds(p.time_from_start) for p in rest]),
        "xyz": np.array([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in rest]),
        "heading": np.unwrap([yaw(p.pose.orientation) for p in rest]),
        "speed": np.array([p.longitudinal_velocity_mps for p in rest], dtype=np.float64),
        "accel": np.array([p.acceleration_mps2 for p in rest], dtype=np.float64),
        "heading_rate": np.array([p.heading_rate_rps for p in rest], dtype=np.float64),
        "front_wheel_angle": np.array([p.front_wheel_angle_rad for p in rest], dtype=np.float64),
    }
