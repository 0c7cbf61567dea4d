"""drive.launch.py's typed launch arguments (skipped without ROS 2's launch): a value that
is not a number, or not true/false, fails the launch naming the argument and the value,
before any node starts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("launch")
pytest.importorskip("launch_ros")

from launch import LaunchContext

REPO = Path(__file__).resolve().parents[2]


def drive_launch_module():
    spec = importlib.util.spec_from_file_location(
        "drive_launch", REPO / "launch" / "drive.launch.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context_with(**arguments: str) -> LaunchContext:
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    return context


def test_given_arguments_are_typed_and_empty_ones_left_to_the_file():
    drive = drive_launch_module()
    context = context_with(rate_hz="5", model="", device="cpu")
    assert drive.given(context, ["rate_hz", "model", "device"]) == {"rate_hz": 5.0, "device": "cpu"}


def test_a_rate_that_is_not_a_number_names_the_argument():
    drive = drive_launch_module()
    with pytest.raises(ValueError, match=r"launch argument rate_hz:='fast' is not a number"):
        drive.given(context_with(rate_hz="fast"), ["rate_hz"])


def test_engage_reaches_the_controller_only_when_given_and_only_as_true_or_false():
    drive = drive_launch_module()
    assert drive.given(context_with(engage="True"), ["engage"]) == {"engage": True}
    assert drive.given(context_with(engage="false"), ["engage"]) == {"engage": False}
    assert drive.given(context_with(engage=""), ["engage"]) == {}
    with pytest.raises(ValueError, match=r"launch argument engage:='yes' is not true or false"):
        drive.given(context_with(engage="yes"), ["engage"])
    assert [parameter for _, parameter, _ in drive.CONTROLLER_OVERRIDES] == ["engage_on_start"]
