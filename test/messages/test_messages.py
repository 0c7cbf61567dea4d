"""Plan and command messages, checked with rosbags' message classes (the same duck-typed
code builds rclpy messages in the nodes): CDR round trips, markers, malformed plans."""

import math
from dataclasses import replace

import numpy as np
import pytest
from rosbags.typesys import get_types_from_msg

from alpamayo_ros.bag.messages import typestore
from alpamayo_ros.control.tracking import Command
from alpamayo_ros.core.plan import Plan, make_stop_plan
from alpamayo_ros.core.trajectory import integrate
from alpamayo_ros.messages.commands import ackermann_msg, twist_msg, twist_stamped_msg
from alpamayo_ros.messages.inputs import BadMessage, split_seconds
from alpamayo_ros.messages.plan import (
    MARKER_TEXT_WIDTH,
    marker_array_msg,
    plan_from_msg,
    plan_messages,
)

STORE = typestore()
ACKERMANN = {
    "ackermann_msgs/msg/AckermannDrive": "float32 steering_angle\nfloat32 "
    "steering_angle_velocity\nfloat32 speed\nfloat32 acceleration\nfloat32 jerk\n",
    "ackermann_msgs/msg/AckermannDriveStamped": "std_msgs/Header header\nAckermannDrive drive\n",
}
for name, text in ACKERMANN.items():
    STORE.register(get_types_from_msg(text, name))


def types(name):
    return STORE.types[name]


def roundtrip(msg):
    return STORE.deserialize_cdr(STORE.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def model_plan() -> Plan:
    roll = integrate(np.tile([0.5, 0.02], (64, 1)), 8.0)
    return Plan.from_rollout(
        roll, stamp=1700000000.25, v0=8.0, reasoning="Turn left: the lane curves left.",
        chosen_sample=2, num_samples=6, camera_names=("a", "b"),
        camera_stamps=np.array([[1.0, 1.1], [2.0, 2.1]]), odometry_stamp=1700000000.2,
        latency_ms={"prefill": 12.5, "total": 99.0}, model_id="ckpt",
        lane="trajectory", chain_stamp=1700000000.05,
    )  # fmt: skip


def test_driving_plan_round_trips_through_cdr():
    plan = model_plan()
    msgs = plan_messages(plan, types)
    back = plan_from_msg(roundtrip(msgs["plan"]))
    for name in ("xyz", "heading", "speed", "accel", "curvature", "camera_stamps"):
        np.testing.assert_allclose(getattr(back, name), getattr(plan, name), atol=1e-9)
    assert back.stamp == pytest.approx(plan.stamp, abs=1e-9)
    assert back.meta_actions == plan.meta_actions == ("accelerate", "turn_left")
    assert (back.chosen_sample, back.num_samples, back.model_id) == (2, 6, "ckpt")
    assert back.latency_ms == pytest.approx({"prefill": 12.5, "total": 99.0})
    assert back.odometry_stamp == pytest.approx(plan.odometry_stamp, abs=1e-9)
    assert back.lane == "trajectory"
    assert back.chain_stamp == pytest.approx(plan.chain_stamp, abs=1e-9)
    # a stop plan has no chain: the stamp reads back as unknown
    stop = plan_from_msg(roundtrip(plan_messages(make_stop_plan(1.0, 3.0, "x"), types)["plan"]))
    assert stop.lane == "" and np.isnan(stop.chain_stamp)


def test_path_reasoning_and_markers():
    plan = model_plan()
    msgs = {k: roundtrip(v) for k, v in plan_messages(plan, types).items()}
    path = msgs["path"]
    assert len(path.poses) == 64 and path.header.frame_id == "base_link"
    last = path.poses[-1]
    assert last.pose.position.x == pytest.approx(plan.xyz[-1, 0])
    assert 2 * math.atan2(last.pose.orientation.z, last.pose.orientation.w) == pytest.approx(
        plan.heading[-1]
    )
    assert msgs["reasoning"].data == "Turn left: the lane curves left."
    line, label = msgs["markers"].markers
    assert line.type == 4 and len(line.points) == 65 and len(line.colors) == 65
    # faster -> redder along the line (accelerating from 8 m/s)
    assert line.colors[-1].r > line.colors[0].r
    assert label.type == 9 and label.text == plan.reasoning
    # a long chain wraps (the same words, lines of at most MARKER_TEXT_WIDTH characters)
    long = replace(plan, reasoning=" ".join(["lead vehicle ahead is braking"] * 6))
    text = marker_array_msg(long, types).markers[1].text
    assert text.split() == long.reasoning.split() and text.count("\n") >= 3
    assert max(len(line) for line in text.splitlines()) <= MARKER_TEXT_WIDTH


def test_fallback_plan_says_why_in_red():
    plan = make_stop_plan(5.0, 3.0, "stale input: odometry: 0.52 s old")
    msgs = plan_messages(plan, types)
    assert msgs["reasoning"].data == "[fallback] stale input: odometry: 0.52 s old"
    label = msgs["markers"].markers[1]
    assert label.text.startswith("STOP:") and label.color.r == 1.0 and label.color.g < 0.5
    back = plan_from_msg(roundtrip(msgs["plan"]))
    assert back.is_fallback and back.fallback_reason == plan.fallback_reason
    assert back.latency_ms == {}  # NaN stages did not run


def test_malformed_plans_name_the_field():
    msg = plan_messages(model_plan(), types)["plan"]
    msg.points = []
    with pytest.raises(BadMessage, match="points is empty"):
        plan_from_msg(msg)
    msg = plan_messages(model_plan(), types)["plan"]
    msg.dt = 0.2
    with pytest.raises(BadMessage, match="time_from_start must be dt"):
        plan_from_msg(msg)
    msg = plan_messages(model_plan(), types)["plan"]
    msg.meta_actions = ["fly"]
    with pytest.raises(BadMessage, match="unknown values \\['fly'\\]"):
        plan_from_msg(msg)


def test_commands():
    cmd = Command(
        stamp=12.5, speed=4.0, accel=-1.0, jerk=0.5, steering_angle=0.1, steering_rate=0.2,
        curvature=0.0357, yaw_rate=4.0 * 0.0357, mode="tracking",
    )  # fmt: skip
    twist = roundtrip(twist_msg(cmd, types))
    assert twist.linear.x == 4.0 and twist.angular.z == pytest.approx(0.1428)
    stamped = roundtrip(twist_stamped_msg(cmd, types))
    assert stamped.header.stamp.sec == 12 and stamped.header.stamp.nanosec == 500_000_000
    drive = roundtrip(ackermann_msg(cmd, types)).drive
    assert drive.steering_angle == pytest.approx(0.1) and drive.acceleration == -1.0
    assert drive.speed == 4.0 and drive.jerk == 0.5


@pytest.mark.parametrize("seconds", [0.0, 1700000000.25, 1700000000.9999999999, 12.000000001])
def test_split_seconds_keeps_nanoseconds_at_epoch_times(seconds):
    sec, nanosec = split_seconds(seconds)
    assert 0 <= nanosec < 1_000_000_000
    assert abs(sec + nanosec * 1e-9 - seconds) < 1e-6
    if seconds == 1700000000.25:
        assert (sec, nanosec) == (1700000000, 250_000_000)


def frame_note_for_child(child: str):
    from alpamayo_ros.messages.inputs import odometry_frame_note

    msg = types("nav_msgs/msg/Odometry")(
        header=types("std_msgs/msg/Header")(
            stamp=types("builtin_interfaces/msg/Time")(sec=1, nanosec=0), frame_id="odom"
        ),
        child_frame_id=child,
        pose=types("geometry_msgs/msg/PoseWithCovariance")(
            pose=types("geometry_msgs/msg/Pose")(
                position=types("geometry_msgs/msg/Point")(x=0.0, y=0.0, z=0.0),
                orientation=types("geometry_msgs/msg/Quaternion")(x=0.0, y=0.0, z=0.0, w=1.0),
            ),
            covariance=np.zeros(36),
        ),
        twist=types("geometry_msgs/msg/TwistWithCovariance")(
            twist=types("geometry_msgs/msg/Twist")(
                linear=types("geometry_msgs/msg/Vector3")(x=0.0, y=0.0, z=0.0),
                angular=types("geometry_msgs/msg/Vector3")(x=0.0, y=0.0, z=0.0),
            ),
            covariance=np.zeros(36),
        ),
    )
    return odometry_frame_note(msg, "base_link", "/vehicle/odom")


def test_odometry_of_another_child_frame_than_base_frame_is_noted():
    assert frame_note_for_child("base_link") is None
    assert frame_note_for_child("/base_link") is None  # a leading slash is the same frame
    assert frame_note_for_child("") is None  # unnamed: nothing to say
    note = frame_note_for_child("imu_link")
    assert note is not None and note.startswith("/vehicle/odom: odometry of child_frame_id")
    assert "'imu_link', not base_frame 'base_link'" in note and "set base_frame" in note
