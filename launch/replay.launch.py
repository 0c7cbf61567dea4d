"""Play a bag with --clock and run the planner (and controller) on it in sim time.

    ros2 launch alpamayo_ros replay.launch.py bag:=/data/drive model:=/data/ckpt device:=cpu

Takes every argument of drive.launch.py (use_sim_time is forced true) plus the bag's. The
bag starts only once the planner reports its model loaded (alpamayo_wait_ready on
~/status), so the start of the bag is planned too; a planner that fails to load, or is not
ready within ready_timeout seconds, stops the launch with the reason. The player then stays
paused at the bag's start for play_delay seconds, for the planner to match its publishers. With
loop:=true the bag plays again and again (`ros2 bag play --loop`): at each new pass the
clock jumps back, and the planner and controller start over on the new timeline.
"""

import time

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    GroupAction,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    Shutdown,
    TimerAction,
)
from launch.event_handlers import OnProcessExit, OnProcessStart
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from alpamayo_ros.nodes.parameters import launch_number, launch_switch

FORWARDED = (
    "model", "device", "dtype", "camera_config", "odom_topic", "rate_hz",
    "enable_controller", "engage", "namespace", "rviz", "log_level",
)  # fmt: skip
DEFAULTS = {  # '' = the parameter file's value (see drive.launch.py)
    "model": "", "device": "", "dtype": "", "camera_config": "", "odom_topic": "",
    "rate_hz": "", "enable_controller": "true", "namespace": "", "rviz": "false",
    "log_level": "info",
    "engage": "true",  # a played bag drives no vehicle: the controller shows what it would do
}  # fmt: skip


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    declared = [
        DeclareLaunchArgument("bag", description="the bag folder to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        DeclareLaunchArgument(
            "start_offset", default_value="0.0", description="seconds into the bag to start"
        ),
        DeclareLaunchArgument(
            "play_delay",
            default_value="3.0",
            description="seconds the player stays paused at the bag's start (publishers up, "
            "clock still) before it plays, for the planner to match its publishers: with Fast "
            "DDS the first 1.7-2.4 s of a bag played at once were lost; 0: play at once",
        ),
        DeclareLaunchArgument(
            "loop",
            default_value="false",
            description="true: play the bag again and again (ros2 bag play --loop)",
        ),
        DeclareLaunchArgument(
            "ready_timeout",
            default_value="300.0",
            description="seconds to wait for the planner's model before giving up",
        ),
        *[DeclareLaunchArgument(n, default_value=DEFAULTS[n]) for n in FORWARDED],
    ]
    drive = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("alpamayo_ros"), "launch", "drive.launch.py"])
        ),
        launch_arguments={**{n: arg(n) for n in FORWARDED}, "use_sim_time": "true"}.items(),
    )
    # this launch's planner only: the status of one started before it (another launch still
    # running or shutting down on the same topic) must not start the bag
    wait_arguments = ["--timeout", arg("ready_timeout"), "--status", "alpamayo_planner/status",
                      "--started-after", f"{time.time():.3f}"]  # fmt: skip
    wait = Node(
        package="alpamayo_ros",
        executable="alpamayo_wait_ready",
        name="alpamayo_wait_ready",
        output="screen",
        arguments=wait_arguments,
    )

    def looped(context) -> bool:  # a bad value stops the launch at start-up, named
        value = arg("loop").perform(context).strip().lower()
        return launch_switch("loop", {"1": "true", "0": "false"}.get(value, value))

    def play_delay(context) -> float:  # seconds >= 0; a bad value stops the launch, named
        return launch_number("play_delay", arg("play_delay").perform(context), float, 0.0)

    def check_arguments(context) -> None:
        looped(context)  # before anything starts
        play_delay(context)

    def play(context) -> list:
        cmd = [
            "ros2", "bag", "play", arg("bag"), "--clock", "--rate", arg("rate"),
            "--start-offset", arg("start_offset"),
        ]  # fmt: skip
        if looped(context):
            cmd.append("--loop")
        delay = play_delay(context)
        if delay <= 0:
            return [ExecuteProcess(cmd=cmd, output="screen")]
        # Paused at the bag's start time (its publishers and /clock there, the clock still)
        # until resumed: not `--delay`, whose clock runs on through the wait and jumps back.
        player = ExecuteProcess(cmd=[*cmd, "--start-paused"], output="screen")
        resume = ExecuteProcess(
            cmd=["ros2", "service", "call", "/rosbag2_player/resume",
                 "rosbag2_interfaces/srv/Resume"],
            output="log",
        )  # fmt: skip
        started = OnProcessStart(
            target_action=player, on_start=[TimerAction(period=delay, actions=[resume])]
        )
        return [RegisterEventHandler(started), player]

    def after_wait(event, context):
        if event.returncode == 0:
            return play(context)
        return [LogInfo(msg="the planner is not ready: the bag is not played"),
                Shutdown(reason="planner not ready")]  # fmt: skip

    return LaunchDescription(
        [
            *declared,
            OpaqueFunction(function=check_arguments),
            drive,
            GroupAction([PushRosNamespace(arg("namespace")), wait]),
            RegisterEventHandler(OnProcessExit(target_action=wait, on_exit=after_wait)),
        ]
    )
