"""Node parameters: declared once, mirrored by config/*.yaml, bad values refused at
start-up with the parameter's name and value (ROS-free: runs in CI)."""

from pathlib import Path

import pytest
import yaml

from alpamayo_ros.nodes.parameters import (
    CONTROLLER_PARAMS,
    PLANNER_PARAMS,
    ParameterError,
    controller_config,
    defaults,
    planner_config,
    render_yaml,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize(
    ("file", "node", "specs"),
    [
        ("planner.yaml", "alpamayo_planner", PLANNER_PARAMS),
        ("controller.yaml", "alpamayo_controller", CONTROLLER_PARAMS),
    ],
)
def test_yaml_mirrors_the_declared_parameters(file, node, specs):
    text = (CONFIG / file).read_text()
    assert text == render_yaml(node, specs), (
        f"config/{file} is out of date: python -m alpamayo_ros.nodes.parameters --write config/"
    )
    doc = yaml.safe_load(text)
    params = doc[node]["ros__parameters"]
    assert params == defaults(specs)
    for spec in specs:  # same types, so a launch override keeps the declared type
        assert type(params[spec.name]) is type(spec.default), spec.name
    assert all(spec.description for spec in specs)


def test_defaults_build_the_settings():
    cfg = planner_config({})
    assert cfg.settings.num_samples == 6 and cfg.settings.seed is None
    assert cfg.settings.num_flow_steps is None  # 0 = the checkpoint's
    assert cfg.settings.limits.curvature == 0.35 and cfg.rate_hz == 10.0
    ctl = controller_config({"wheelbase": 3.1, "max_speed": 12})
    assert ctl.tracker.wheelbase == 3.1 and ctl.tracker.max_speed == 12.0
    assert ctl.control_rate_hz == 50.0 and not ctl.publish_ackermann


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate_hz": 0.0}, r"parameter rate_hz = 0.0 is outside \[0.1, 100.0\]"),
        ({"num_samples": "six"}, r"parameter num_samples must be int, got 'six'"),
        ({"dtype": "int8"}, r"parameter dtype = 'int8' is not one of"),
        ({"sample_choice": "best"}, r"parameter sample_choice = 'best'"),
        ({"rate": 10.0}, r"unknown parameters \['rate'\]"),
        ({"top_p": float("nan")}, r"parameter top_p must be finite"),
    ],
)
def test_bad_planner_values_name_the_parameter(values, message):
    with pytest.raises(ParameterError, match=message):
        planner_config(values)


def test_inconsistent_controller_values_fail_with_the_reason():
    with pytest.raises(ParameterError, match=r"stop_decel .* must not exceed max_decel"):
        controller_config({"stop_decel": 8.0, "max_decel": 5.0})


def test_boolean_flags_turn_off_too():
    """A boolean parameter that defaults to true has a --no- flag on the command line."""
    import argparse

    from alpamayo_ros.nodes.parameters import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser, PLANNER_PARAMS, ("hold_at_standstill", "publish_autoware"))
    on = parser.parse_args([])
    assert on.hold_at_standstill is True and on.publish_autoware is False
    off = parser.parse_args(["--no-hold-at-standstill", "--publish-autoware"])
    assert off.hold_at_standstill is False and off.publish_autoware is True
    assert planner_config({"hold_at_standstill": False}).settings.hold_at_standstill is False
