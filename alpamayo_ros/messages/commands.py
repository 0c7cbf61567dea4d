"""Controller commands -> ROS messages: geometry_msgs/Twist (or TwistStamped) and
ackermann_msgs/AckermannDriveStamped, through a type lookup (see messages.plan)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alpamayo_ros.messages.plan import TypeLookup, header_msg

if TYPE_CHECKING:  # messages sit below control: the command is read by its attributes
    from alpamayo_ros.control.tracking import Command


def twist_msg(command: Command, types: TypeLookup) -> Any:
    """geometry_msgs/Twist in base_link (REP-103): linear.x the speed setpoint (m/s),
    angular.z the yaw rate (rad/s) of the commanded curvature at that speed."""
    vec = types("geometry_msgs/msg/Vector3")
    return types("geometry_msgs/msg/Twist")(
        linear=vec(x=float(command.speed), y=0.0, z=0.0),
        angular=vec(x=0.0, y=0.0, z=float(command.yaw_rate)),
    )


def twist_stamped_msg(command: Command, types: TypeLookup, frame_id: str = "base_link") -> Any:
    """geometry_msgs/TwistStamped: twist_msg with the command's stamp and frame."""
    return types("geometry_msgs/msg/TwistStamped")(
        header=header_msg(types, command.stamp, frame_id), twist=twist_msg(command, types)
    )


def ackermann_msg(command: Command, types: TypeLookup, frame_id: str = "base_link") -> Any:
    """ackermann_msgs/AckermannDriveStamped: front-wheel steering angle (rad) and its rate
    (rad/s), speed (m/s), acceleration (m/s^2) and jerk (m/s^3)."""
    drive = types("ackermann_msgs/msg/AckermannDrive")(
        steering_angle=float(command.steering_angle),
        steering_angle_velocity=float(command.steering_rate),
        speed=float(command.speed),
        acceleration=float(command.accel),
        jerk=float(command.jerk),
    )
    return types("ackermann_msgs/msg/AckermannDriveStamped")(
        header=header_msg(types, command.stamp, frame_id), drive=drive
    )
