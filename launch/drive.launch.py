"""Start the planner and (optionally) the controller.

    ros2 launch alpamayo_ros drive.launch.py                       # the demo checkpoint
    ros2 launch alpamayo_ros drive.launch.py model:=/data/Alpamayo-R1-10B
    ros2 launch alpamayo_ros drive.launch.py model:=/data/ckpt device:=cpu use_sim_time:=true
    ros2 launch alpamayo_ros drive.launch.py engage:=true          # the controller drives at once
    ros2 launch alpamayo_ros drive.launch.py managed:=true autostart:=false  # lifecycle nodes
    ros2 launch alpamayo_ros drive.launch.py respawn:=true       # a node that dies is restarted
    ros2 launch alpamayo_ros drive.launch.py model:=/data/Alpamayo-1.5-10B \
        camera_config:=/path/single_front_camera.yaml navigation_topic:=/planning/navigation

The parameter files (config/planner.yaml, config/controller.yaml, or your own via
planner_params:=... controller_params:=...) hold every setting; a launch argument overrides
its file only when it is given (an empty argument leaves the file's value alone). The files'
defaults: model 'demo' (the checkpoint shipped with the package, trained on synthetic drives
only), device and dtype 'auto' (cuda and bfloat16 when a GPU is there, else cpu and float32),
and a controller that holds a stop until engaged (engage:=true, or its ~/engage service).
"""

from typing import Any

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from alpamayo_ros.nodes.parameters import (
    LAUNCH_OVERRIDES,
    launch_help,
    launch_number,
    launch_switch,
    launch_value,
)

# LAUNCH_OVERRIDES: the arguments that override a node parameter when given ('' = keep the
# parameter file's value); their help, type and range are the parameter table's.
AUTOWARE_ODOMETRY = "/localization/kinematic_state"  # Autoware's nav_msgs/Odometry
ARGUMENTS = (
    ("use_sim_time", "false", "use /clock (true when playing a bag with --clock)"),
    ("autoware", "false", "also publish autoware_planning_msgs/Trajectory (~/autoware/"
     "trajectory) and, with autoware_internal_planning_msgs, CandidateTrajectories of every "
     "sample (~/autoware/candidate_trajectories); take odometry from "
     "/localization/kinematic_state and cameras from config/autoware_cameras.yaml unless "
     "odom_topic / camera_config are given; fails at start-up, naming it, without "
     "autoware_planning_msgs"),
    ("enable_controller", "true", "start alpamayo_controller (publishes cmd_vel)"),
    ("namespace", "", "namespace of both nodes"),
    ("managed", "false", "start both nodes as lifecycle (managed) nodes: the planner loads "
     "its model when configured and plans while active; the controller may engage only "
     "while active, and deactivating it is a controlled stop"),
    ("autostart", "true", "with managed:=true, each node configures and activates itself when "
     "its process starts (again, with respawn); false leaves them unconfigured for ros2 "
     "lifecycle or a lifecycle manager (nav2_lifecycle_manager)"),
    ("respawn", "false", "restart a node whose process ends (a crash) after respawn_delay "
     "seconds; with managed:=true and autostart, the restarted node is configured and "
     "activated again; the planner loads its model again, and the controller stops for "
     "want of plans meanwhile"),
    ("respawn_delay", "2.0", "seconds before a node is restarted (respawn:=true)"),
    ("respawn_max_retries", "-1", "restarts at most (-1: no limit, as nav2's use_respawn; a "
     "node that stops at start-up on a bad configuration is restarted too)"),
    ("rviz", "false", "open RViz with config/alpamayo.rviz"),
    ("log_level", "info", "log level of both nodes"),
)  # fmt: skip


def given(context: LaunchContext, node: str) -> dict:
    """The parameters of `node` that launch arguments override (those given, non-empty),
    typed and checked as the node checks them (ParameterError names the argument)."""
    values = {}
    for argument, target, parameter in LAUNCH_OVERRIDES:
        text = LaunchConfiguration(argument).perform(context)
        if target == node and text != "":
            values[parameter] = launch_value(argument, text)
    return values


def switch(context: LaunchContext, name: str) -> bool:
    """A true/false launch argument; any other value stops the launch naming it."""
    return launch_switch(name, LaunchConfiguration(name).perform(context))


def number(context: LaunchContext, name: str, kind: type, least: float) -> Any:
    """A launch argument of type `kind` (int or float) >= least; anything else stops the
    launch naming it."""
    return launch_number(name, LaunchConfiguration(name).perform(context), kind, least)


def nodes(context: LaunchContext) -> list:
    arg = LaunchConfiguration
    sim_time = switch(context, "use_sim_time")
    for name in ("enable_controller", "rviz"):  # conditions below: a bad value named here
        switch(context, name)
    respawn = switch(context, "respawn")
    delay = number(context, "respawn_delay", float, 0.0)
    retries = number(context, "respawn_max_retries", int, -1)
    planner_overrides = given(context, "alpamayo_planner")
    controller_overrides = given(context, "alpamayo_controller")
    if switch(context, "autoware"):
        planner_overrides["publish_autoware"] = True
        for overrides in (planner_overrides, controller_overrides):
            overrides.setdefault("odom_topic", AUTOWARE_ODOMETRY)
        share = FindPackageShare("alpamayo_ros").perform(context)
        planner_overrides.setdefault("camera_config", f"{share}/config/autoware_cameras.yaml")
    shared = {"use_sim_time": sim_time}
    managed = switch(context, "managed")
    autostart = switch(context, "autostart")
    # a lifecycle node: its own launch action (which follows its transitions), --managed
    kind, node_args = (LifecycleNode, {"namespace": ""}) if managed else (Node, {})
    node_args |= {"respawn": respawn, "respawn_delay": delay, "respawn_max_retries": retries}
    ros_args = (["--managed"] + (["--autostart"] if autostart else [])) if managed else []
    ros_args += ["--ros-args", "--log-level", arg("log_level")]
    planner = kind(
        package="alpamayo_ros",
        executable="alpamayo_planner",
        name="alpamayo_planner",
        output="screen",
        emulate_tty=True,
        arguments=ros_args,
        parameters=[arg("planner_params"), {**planner_overrides, **shared}],
        **node_args,
    )
    controller = kind(
        package="alpamayo_ros",
        executable="alpamayo_controller",
        name="alpamayo_controller",
        output="screen",
        emulate_tty=True,
        arguments=ros_args,
        condition=IfCondition(arg("enable_controller")),
        remappings=[("plan", "alpamayo_planner/plan")],
        parameters=[arg("controller_params"), {**controller_overrides, **shared}],
        **node_args,
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", PathJoinSubstitution([FindPackageShare("alpamayo_ros"), "config",
                                               "alpamayo.rviz"])],
        condition=IfCondition(arg("rviz")),
        parameters=[shared],
    )  # fmt: skip
    return [GroupAction([PushRosNamespace(arg("namespace")), planner, controller, rviz])]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("alpamayo_ros")
    arguments = dict.fromkeys(a for a, _, _ in LAUNCH_OVERRIDES)  # once each, in order
    declared = [DeclareLaunchArgument(a, default_value="", description=launch_help(a))
                for a in arguments]  # fmt: skip
    declared += [DeclareLaunchArgument(n, default_value=d, description=h) for n, d, h in ARGUMENTS]
    declared += [
        DeclareLaunchArgument(
            "planner_params",
            default_value=PathJoinSubstitution([share, "config", "planner.yaml"]),
            description="planner parameter file",
        ),
        DeclareLaunchArgument(
            "controller_params",
            default_value=PathJoinSubstitution([share, "config", "controller.yaml"]),
            description="controller parameter file",
        ),
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
