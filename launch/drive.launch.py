"""Start the planner and (optionally) the controller.

    ros2 launch alpamayo_ros drive.launch.py model:=/data/Alpamayo-R1-10B
    ros2 launch alpamayo_ros drive.launch.py model:=/data/ckpt device:=cpu use_sim_time:=true

Every argument overrides the parameter files (config/planner.yaml, config/controller.yaml,
or your own via planner_params:=... controller_params:=...).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("model", "", "checkpoint folder or repo id in the local HF cache ('' = stop plans only)"),
    ("device", "cuda", "torch device of the model (cuda, cuda:1, cpu)"),
    ("dtype", "bfloat16", "torch dtype of the model (bfloat16, float16, float32)"),
    ("camera_config", "", "camera rig YAML ('' = config/cameras.yaml, the released rig)"),
    ("odom_topic", "/odom", "nav_msgs/Odometry topic of the ego motion"),
    ("use_sim_time", "false", "use /clock (true when playing a bag with --clock)"),
    ("rate_hz", "10.0", "planning rate, Hz"),
    ("enable_controller", "true", "start alpamayo_controller (publishes cmd_vel)"),
    ("namespace", "", "namespace of both nodes"),
    ("rviz", "false", "open RViz with config/alpamayo.rviz"),
    ("log_level", "info", "log level of both nodes"),
)  # fmt: skip


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("alpamayo_ros")
    arg = LaunchConfiguration
    sim_time = PythonExpression(["'", arg("use_sim_time"), "'.lower() == 'true'"])
    declared = [DeclareLaunchArgument(n, default_value=d, description=h) for n, d, h in ARGUMENTS]
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
    planner = Node(
        package="alpamayo_ros",
        executable="alpamayo_planner",
        name="alpamayo_planner",
        output="screen",
        emulate_tty=True,
        arguments=["--ros-args", "--log-level", arg("log_level")],
        parameters=[
            arg("planner_params"),
            {
                "model": arg("model"),
                "device": arg("device"),
                "dtype": arg("dtype"),
                "camera_config": arg("camera_config"),
                "odom_topic": arg("odom_topic"),
                "rate_hz": PythonExpression(["float(", arg("rate_hz"), ")"]),
                "use_sim_time": sim_time,
            },
        ],
    )
    controller = Node(
        package="alpamayo_ros",
        executable="alpamayo_controller",
        name="alpamayo_controller",
        output="screen",
        emulate_tty=True,
        arguments=["--ros-args", "--log-level", arg("log_level")],
        condition=IfCondition(arg("enable_controller")),
        remappings=[("plan", "alpamayo_planner/plan")],
        parameters=[
            arg("controller_params"),
            {"odom_topic": arg("odom_topic"), "use_sim_time": sim_time},
        ],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", PathJoinSubstitution([share, "config", "alpamayo.rviz"])],
        condition=IfCondition(arg("rviz")),
        parameters=[{"use_sim_time": sim_time}],
    )
    return LaunchDescription(
        [*declared, GroupAction([PushRosNamespace(arg("namespace")), planner, controller, rviz])]
    )
