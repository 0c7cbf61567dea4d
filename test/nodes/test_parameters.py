"""Node parameters: declared once, mirrored by config/*.yaml, bad values refused at
start-up with the parameter's name and value (ROS-free: runs in CI)."""

from pathlib import Path

import pytest
import yaml

from alpamayo_ros.nodes.parameter_docs import PARAMETER_FILES, render_markdown, render_yaml
from alpamayo_ros.nodes.parameters import (
    CONTROLLER_PARAMS,
    PLANNER_PARAMS,
    ParameterError,
    check_values,
    controller_config,
    defaults,
    launch_help,
    launch_number,
    launch_switch,
    launch_value,
    planner_config,
    rcl_error_text,
    runtime_change,
    unknown_parameter_problem,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize("file", ["planner.yaml", "controller.yaml"])
def test_yaml_mirrors_the_declared_parameters(file):
    node, specs, qos = PARAMETER_FILES[file]
    text = (CONFIG / file).read_text()
    assert text == render_yaml(node, specs, qos_example=qos), (
        f"config/{file} is out of date: python -m alpamayo_ros.nodes.parameter_docs --write config/"
    )
    doc = yaml.safe_load(text)
    params = doc[f"/**/{node}"]["ros__parameters"]  # any namespace
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
        # a misspelt device loaded nothing and published stop plans ("model failed to load")
        ({"device": "cdua"}, r"parameter device = 'cdua' is not auto, cpu, cuda or cuda:N"),
        ({"device": "cuda:"}, r"parameter device = 'cuda:' is not auto, cpu, cuda or cuda:N"),
    ],
)
def test_bad_planner_values_name_the_parameter(values, message):
    with pytest.raises(ParameterError, match=message):
        planner_config(values)


def test_device_names_the_model_loads_on_are_accepted():
    for device in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert planner_config({"device": device}).device == device


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


def test_the_qos_example_in_the_yaml_becomes_a_qos_parameter_once_uncommented():
    node, specs, qos = PARAMETER_FILES["planner.yaml"]
    text = render_yaml(node, specs, qos_example=qos)
    uncommented = "\n".join(
        line.replace("# ", "", 1) if line.strip().startswith(("# qos", "#   ", "#     ")) else line
        for line in text.splitlines()
    )
    params = yaml.safe_load(uncommented)[f"/**/{node}"]["ros__parameters"]
    topic, kind, policy, value = qos
    assert params["qos_overrides"] == {topic: {kind: {policy: value}}}
    assert yaml.safe_load(text)[f"/**/{node}"]["ros__parameters"] == defaults(specs)


PLANNER_DECLARED = [s.name for s in PLANNER_PARAMS] + [
    "use_sim_time",
    "qos_overrides./alpamayo_planner/plan.publisher.depth",
    "qos_overrides./alpamayo_planner/plan.publisher.durability",
    "qos_overrides./diagnostics.publisher.depth",
    "qos_overrides./camera/front/image_raw/compressed.subscription.reliability",
]


def test_given_parameters_the_node_declares_are_accepted():
    given = ["rate_hz", "use_sim_time", "qos_overrides./alpamayo_planner/plan.publisher.depth"]
    assert unknown_parameter_problem("alpamayo_planner", given, PLANNER_DECLARED) is None
    assert unknown_parameter_problem("alpamayo_planner", [], PLANNER_DECLARED) is None


def test_a_misspelt_parameter_is_refused_with_the_closest_name():
    problem = unknown_parameter_problem(
        "alpamayo_planner", ["rate_hz", "rate_hzz", "camera_configs", "xyzzy"], PLANNER_DECLARED
    )
    assert problem is not None
    assert "alpamayo_planner has no parameter" in problem
    assert "'rate_hzz' (did you mean 'rate_hz'?)" in problem
    assert "'camera_configs' (did you mean 'camera_config'?)" in problem
    assert "'xyzzy'" in problem and "'xyzzy' (did" not in problem
    assert "'rate_hz'," not in problem  # a declared one is not named
    assert "ros2 param list /alpamayo_planner" in problem


def test_a_qos_override_of_a_topic_the_node_lacks_lists_the_topics_it_has():
    problem = unknown_parameter_problem(
        "alpamayo_planner", ["qos_overrides./plan.publisher.durability"], PLANNER_DECLARED
    )
    assert problem is not None
    assert (
        "'qos_overrides./plan.publisher.durability' (did you mean "
        "'qos_overrides./alpamayo_planner/plan.publisher.durability'?)" in problem
    )
    assert "/alpamayo_planner/plan (publisher)" in problem
    assert "/camera/front/image_raw/compressed (subscription)" in problem
    assert "history|depth|reliability|durability" in problem


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("qos_overrides./plan.publisher.depth",
         "qos_overrides./alpamayo_planner/plan.publisher.depth"),
        ("qos_overrides./alpamayo_planner/plan.publisher.durabilty",
         "qos_overrides./alpamayo_planner/plan.publisher.durability"),
        ("qos_overrides./alpamayo_planner/plan.subscription.depth",
         "qos_overrides./alpamayo_planner/plan.publisher.depth"),
        ("qos_overrides./camera/front/image_raw/compresed.subscription.reliability",
         "qos_overrides./camera/front/image_raw/compressed.subscription.reliability"),
    ],
)  # fmt: skip
def test_a_qos_override_is_matched_by_its_topic_kind_and_policy(given, meant):
    problem = unknown_parameter_problem("alpamayo_planner", [given], PLANNER_DECLARED)
    assert problem is not None and f"(did you mean {meant!r}?)" in problem


@pytest.mark.parametrize(
    ("rcl", "shown"),
    [  # what rcl raised for a params file that is missing, or a value list of mixed types
        ("failed to initialize rcl: Couldn't parse params file: '--params-file /tmp/p.yaml'. "
         "Error: Error opening YAML file, at /ws/src/rcl/rcl_yaml_param_parser/src/parser.c:271, "
         "at /ws/src/rcl/rcl/src/rcl/arguments.c:415",
         "Couldn't parse params file: '--params-file /tmp/p.yaml'. Error: Error opening YAML file"),
        ("failed to initialize rcl: Couldn't parse params file: '--params-file /tmp/p.yaml'. "
         "Error: Sequence should be of same type. Value type 'string' do not belong at line_num "
         "3, at /ws/src/rcl/rcl_yaml_param_parser/src/parse.c:435, at /ws/src/rcl/rcl/src/rcl/"
         "arguments.c:415",
         "Couldn't parse params file: '--params-file /tmp/p.yaml'. Error: Sequence should be of "
         "same type. Value type 'string' do not belong at line_num 3"),
        ("failed to initialize rcl: Couldn't parse parameter override rule: '-p model:='. "
         "Error: error not set, at /ws/src/rcl/rcl/src/rcl/arguments.c:352",
         "Couldn't parse parameter override rule: '-p model:='"),
    ],
)  # fmt: skip
def test_an_rcl_error_is_shown_without_its_c_source_lines(rcl, shown):
    assert rcl_error_text(rcl) == shown


def test_launch_values_take_the_parameters_type_and_checks():
    assert launch_value("rate_hz", "5") == 5.0
    assert launch_value("engage", "TRUE") is True and launch_value("engage", "false") is False
    assert launch_value("dtype", "bfloat16") == "bfloat16"
    with pytest.raises(ParameterError, match=r"launch argument rate_hz:='0': .* outside"):
        launch_value("rate_hz", "0")
    with pytest.raises(ParameterError, match=r"launch argument rate_hz:='nan': .* finite"):
        launch_value("rate_hz", "nan")
    with pytest.raises(ParameterError, match=r"launch argument engage:='1': not true or false"):
        launch_value("engage", "1")
    help_text = launch_help("dtype")
    assert help_text.startswith("Torch dtype") and "One of ['auto', 'bfloat16'" in help_text
    assert help_text.endswith("(As a launch argument, '' keeps the parameter file's.)")


def test_the_parameter_reference_is_current_and_lists_every_parameter():
    docs = CONFIG.parent / "docs" / "parameters.md"
    text = docs.read_text()
    assert text == render_markdown(), (
        "docs/parameters.md is out of date: python -m alpamayo_ros.nodes.parameter_docs "
        "--write config/ --docs docs/parameters.md"
    )
    for spec in (*PLANNER_PARAMS, *CONTROLLER_PARAMS):
        assert f"| `{spec.name}` |" in text
    assert "| `rate_hz` | `10.0` | 0.1 to 100 |" in text
    assert '| `dtype` | `"auto"` | `auto`, `bfloat16`, `float16`, `float32` |' in text
    assert "| `engage` | alpamayo_controller | `engage_on_start` |" in text


def test_runtime_changes_are_checked_and_only_for_runtime_parameters():
    values = check_values(CONTROLLER_PARAMS, {})
    changed = runtime_change(CONTROLLER_PARAMS, values, {"max_speed": 10, "use_sim_time": True})
    assert changed["max_speed"] == 10.0 and values["max_speed"] == 30.0  # a new dict
    assert controller_config(changed).tracker.max_speed == 10.0
    with pytest.raises(ParameterError, match=r"parameter wheelbase is read at start-up only"):
        runtime_change(CONTROLLER_PARAMS, values, {"wheelbase": 3.0})
    with pytest.raises(ParameterError, match=r"parameter max_speed = 500.0 is outside"):
        runtime_change(CONTROLLER_PARAMS, values, {"max_speed": 500.0})
    # each in range, together not: the controller's own check refuses it
    both = runtime_change(CONTROLLER_PARAMS, values, {"stop_decel": 8.0})
    with pytest.raises(ParameterError, match=r"stop_decel \(8.0\) must not exceed max_decel"):
        controller_config(both)
    runtime = {s.name for s in CONTROLLER_PARAMS if s.runtime}
    assert "plan_timeout" in runtime and "wheelbase" not in runtime
    planner_runtime = {s.name for s in PLANNER_PARAMS if s.runtime}
    # the planning layer's checks, not what the model or its compiled engine was built with
    assert {"max_input_age", "max_plan_age", "max_speed", "sample_choice"} <= planner_runtime
    assert not planner_runtime & {"num_samples", "temperature", "top_p", "model", "engine"}


def test_the_launch_files_own_switches_and_numbers_stop_on_a_bad_value():
    """drive.launch.py's managed/respawn/use_sim_time... and replay.launch.py's loop: one
    reading for both files (before, anything but 'true' meant false in drive.launch.py)."""
    assert launch_switch("respawn", " TRUE ") is True
    assert launch_switch("respawn", "false") is False
    with pytest.raises(ValueError, match=r"launch argument rviz:='on': must be true or false"):
        launch_switch("rviz", "on")
    assert launch_number("respawn_delay", "1.5", float, 0.0) == 1.5
    assert launch_number("respawn_max_retries", "-1", int, -1) == -1
    for text in ("-0.5", "soon", "nan"):
        with pytest.raises(ValueError, match=rf"respawn_delay:='{text}': must be float >= 0"):
            launch_number("respawn_delay", text, float, 0.0)
    with pytest.raises(ValueError, match=r"must be int >= -1"):
        launch_number("respawn_max_retries", "2.5", int, -1)
