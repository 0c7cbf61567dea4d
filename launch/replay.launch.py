"""Play a bag with --clock and run the planner (and controller) on it in sim time.

    ros2 launch alpamayo_ros replay.launch.py bag:=/data/drive model:=/data/ckpt device:=cpu

Takes every argument of drive.launch.py (use_sim_time is forced true) plus the bag's.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

FORWARDED = (
    "model", "device", "dtype", "camera_config", "odom_topic", "rate_hz",
    "enable_controller", "namespace", "rviz", "log_level",
)  # fmt: skip
DEFAULTS = {
    "model": "", "device": "cuda", "dtype": "bfloat16", "camera_config": "",
    "odom_topic": "/odom", "rate_hz": "10.0", "enable_controller": "true", "namespace": "",
    "rviz": "false", "log_level": "info",
}  # fmt: skip


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    declared = [
        DeclareLaunchArgument("bag", description="the bag folder to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        DeclareLaunchArgument(
            "start_offset", default_value="0.0", description="seconds into the bag to start"
        ),
        *[DeclareLaunchArgument(n, default_value=DEFAULTS[n]) for n in FORWARDED],
    ]
    drive = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("alpamayo_ros"), "launch", "drive.launch.py"])
        ),
        launch_arguments={**{n: arg(n) for n in FORWARDED}, "use_sim_time": "true"}.items(),
    )
    play = ExecuteProcess(
        cmd=[
            "ros2", "bag", "play", arg("bag"), "--clock", "--rate", arg("rate"),
            "--start-offset", arg("start_offset"),
        ],
        output="screen",
    )  # fmt: skip
    return LaunchDescription([*declared, drive, play])
