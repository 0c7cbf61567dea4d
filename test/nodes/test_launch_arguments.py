"""drive.launch.py's launch arguments (skipped without ROS 2's launch): those that override a
node parameter take their type, range and help from the parameter table, and a bad value
stops the launch naming the argument and the value, before any node starts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("launch")
pytest.importorskip("launch_ros")

from launch import LaunchContext

from alpamayo_ros.nodes.parameters import LAUNCH_OVERRIDES, ParameterError, launch_help

REPO = Path(__file__).resolve().parents[2]


def drive_launch_module():
    path = REPO / "launch" / "drive.launch.py"
    spec = importlib.util.spec_from_file_location("drive_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context_with(**arguments: str) -> LaunchContext:
    """A context as the launch makes it: every override argument declared ('' by default)."""
    context = LaunchContext()
    context.launch_configurations.update({a: "" for a, _, _ in LAUNCH_OVERRIDES} | arguments)
    return context


def test_given_arguments_reach_their_nodes_typed_and_empty_ones_leave_the_file():
    drive = drive_launch_module()
    context = context_with(rate_hz="5", model="", device="cpu", odom_topic="/v/odom", engage="true")
    assert drive.given(context, "alpamayo_planner") == {
        "rate_hz": 5.0, "device": "cpu", "odom_topic": "/v/odom"
    }  # fmt: skip
    assert drive.given(context, "alpamayo_controller") == {
        "odom_topic": "/v/odom", "engage_on_start": True
    }  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rate_hz": "fast"}, r"launch argument rate_hz:='fast': not a number"),
        (
            {"rate_hz": "500"},
            r"launch argument rate_hz:='500': parameter rate_hz = 500.0 is outside",
        ),
        (
            {"dtype": "int8"},
            r"launch argument dtype:='int8': parameter dtype = 'int8' is not one of",
        ),
        ({"engage": "yes"}, r"launch argument engage:='yes': not true or false"),
    ],
)
def test_a_bad_value_stops_the_launch_naming_the_argument(arguments, message):
    drive = drive_launch_module()
    node = "alpamayo_controller" if "engage" in arguments else "alpamayo_planner"
    with pytest.raises(ParameterError, match=message):
        drive.given(context_with(**arguments), node)


def test_the_declared_arguments_carry_the_tables_help():
    drive = drive_launch_module()
    declared = {
        action.name: action.description
        for action in drive.generate_launch_description().entities
        if type(action).__name__ == "DeclareLaunchArgument"
    }
    for argument in ("model", "dtype", "rate_hz", "engage", "odom_topic"):
        assert declared[argument] == launch_help(argument)
    assert "~/engage service" in declared["engage"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"respawn": "maybe"}, r"launch argument respawn:='maybe': must be true or false"),
        ({"managed": "1"}, r"launch argument managed:='1': must be true or false"),
        ({"use_sim_time": "yes"}, r"launch argument use_sim_time:='yes': must be true or false"),
        ({"rviz": "on"}, r"launch argument rviz:='on': must be true or false"),
        ({"respawn_delay": "-1"}, r"launch argument respawn_delay:='-1': must be float >= 0"),
        ({"respawn_max_retries": "x"}, r"respawn_max_retries:='x': must be int >= -1"),
    ],
)
def test_the_switches_stop_the_launch_on_a_bad_value(arguments, message):
    drive = drive_launch_module()
    defaults = {name: default for name, default, _ in drive.ARGUMENTS}
    context = context_with(**(defaults | arguments))
    context.launch_configurations.update(planner_params="p.yaml", controller_params="c.yaml")
    with pytest.raises(ValueError, match=message):
        drive.nodes(context)


def test_managed_autostart_and_respawn_reach_the_node_actions():
    drive = drive_launch_module()
    defaults = {name: default for name, default, _ in drive.ARGUMENTS}
    context = context_with(**(defaults | {"managed": "true", "respawn": "true"}))
    context.launch_configurations.update(planner_params="p.yaml", controller_params="c.yaml")
    group = drive.nodes(context)[0]
    planner = next(a for a in group.get_sub_entities() if type(a).__name__ == "LifecycleNode")
    assert planner._Node__arguments[:3] == ["--managed", "--autostart", "--ros-args"]
    assert planner._ExecuteLocal__respawn_delay == 2.0
