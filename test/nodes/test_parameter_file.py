"""check-config: a ROS 2 parameter file checked without ROS, as the nodes check it at
start-up (ROS-free: runs in CI)."""

from pathlib import Path

import pytest
import yaml

from alpamayo_ros.cli import main
from alpamayo_ros.nodes.parameter_file import (
    ParameterFileError,
    applies_to,
    check_files,
    params_file_arguments,
    qos_problem,
    reaches,
    read_parameter_file,
    unreached_node_problem,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, doc: dict, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def problems(tmp_path: Path, doc: dict) -> dict[str, list[str]]:
    return {c.node: c.problems for c in check_files([write(tmp_path, doc)])}


def test_the_shipped_parameter_files_pass():
    checks = check_files([REPO / "config" / "planner.yaml", REPO / "config" / "controller.yaml"])
    assert {c.node: c.problems for c in checks} == {
        "alpamayo_planner": [], "alpamayo_controller": []
    }  # fmt: skip


def test_nested_names_namespaces_and_wildcards_are_read_as_rcl_reads_them(tmp_path):
    path = write(tmp_path, {
        "/**": {"ros__parameters": {"use_sim_time": True}},
        "/car": {"alpamayo_planner": {"ros__parameters": {
            "rate_hz": 5.0, "qos_overrides": {"/car/plan": {"publisher": {"depth": 1}}}}}},
    })  # fmt: skip
    doc = read_parameter_file(path)
    assert doc["/car/alpamayo_planner"] == {
        "rate_hz": 5.0, "qos_overrides./car/plan.publisher.depth": 1
    }  # fmt: skip
    assert applies_to("/**", "alpamayo_controller") and applies_to("alpamayo_*", "alpamayo_planner")
    assert applies_to("/car/alpamayo_planner", "alpamayo_planner")
    assert not applies_to("/car/alpamayo_planner", "alpamayo_controller")
    found = {c.node: (c.values, c.problems) for c in check_files([path])}
    assert found["alpamayo_controller"] == ({"use_sim_time": True}, [])
    assert found["alpamayo_planner"][1] == []


# (key, fully qualified node name, whether rclpy gives the key's parameters to that node);
# test_nodes.py checks the same table against rclpy itself.
REACHES = [
    ("alpamayo_planner", "/alpamayo_planner", True),
    ("alpamayo_planner", "/vehicle1/alpamayo_planner", False),
    ("/alpamayo_planner", "/vehicle1/alpamayo_planner", False),
    ("/**/alpamayo_planner", "/alpamayo_planner", True),
    ("/**/alpamayo_planner", "/fleet/vehicle1/alpamayo_planner", True),
    ("/*/alpamayo_planner", "/vehicle1/alpamayo_planner", True),
    ("/*/alpamayo_planner", "/alpamayo_planner", False),
    ("/vehicle1/alpamayo_planner", "/vehicle1/alpamayo_planner", True),
    ("vehicle1/alpamayo_planner", "/vehicle1/alpamayo_planner", True),
    ("/vehicle2/alpamayo_planner", "/vehicle1/alpamayo_planner", False),
    ("/**", "/vehicle1/alpamayo_planner", True),
]


@pytest.mark.parametrize(("key", "fqn", "expected"), REACHES)
def test_a_key_reaches_the_nodes_rclpy_gives_it_to(key, fqn, expected):
    assert reaches(key, fqn) is expected


def test_the_params_files_of_a_command_line_are_those_inside_ros_args():
    args = ["alpamayo_planner", "--params-file", "not_ros.yaml", "--ros-args", "-r",
            "__ns:=/v", "--params-file", "a.yaml", "--", "--params-file", "app.yaml",
            "--ros-args", "--params-file", "b.yaml", "--params-file"]  # fmt: skip
    assert params_file_arguments(args) == ["a.yaml", "b.yaml"]


def test_a_file_that_names_the_node_only_where_it_is_not_is_refused(tmp_path):
    """A file keyed `alpamayo_planner:` reaches the node in the root namespace only; in a
    namespace rclpy runs the node on its defaults and says nothing."""
    bare = write(tmp_path, {"alpamayo_planner": {"ros__parameters": {"rate_hz": 5.0}}})
    problem = unreached_node_problem([bare], "alpamayo_planner", "/vehicle1/alpamayo_planner")
    assert problem == (
        f"{bare}: its parameters for 'alpamayo_planner' do not reach "
        "/vehicle1/alpamayo_planner (a key without a namespace names the node in the root "
        "namespace only), so the node would run on its defaults: key them "
        "'/**/alpamayo_planner' (any namespace) or '/vehicle1/alpamayo_planner'"
    )
    assert unreached_node_problem([bare], "alpamayo_planner", "/alpamayo_planner") is None
    fleet = write(tmp_path, {
        "/**": {"ros__parameters": {"use_sim_time": True}},
        "/vehicle1/alpamayo_planner": {"ros__parameters": {"rate_hz": 5.0}},
        "/vehicle2/alpamayo_planner": {"ros__parameters": {"rate_hz": 8.0}},
    }, "fleet.yaml")  # fmt: skip
    assert unreached_node_problem([fleet], "alpamayo_planner", "/vehicle2/alpamayo_planner") is None
    problem = unreached_node_problem([fleet], "alpamayo_planner", "/vehicle3/alpamayo_planner")
    assert problem.startswith(
        f"{fleet}: its parameters for '/vehicle1/alpamayo_planner', "
        "'/vehicle2/alpamayo_planner' do not reach /vehicle3/alpamayo_planner"
    )
    assert unreached_node_problem([fleet], "alpamayo_controller", "/x/alpamayo_controller") is None
    shipped = [REPO / "config" / "planner.yaml", REPO / "config" / "controller.yaml"]
    for node in ("alpamayo_planner", "alpamayo_controller"):
        assert unreached_node_problem(shipped, node, f"/fleet/vehicle1/{node}") is None


def test_check_config_in_a_namespace_checks_what_reaches_the_nodes_there(tmp_path, capsys):
    bare = write(tmp_path, {
        "/**": {"ros__parameters": {"use_sim_time": True}},
        "alpamayo_planner": {"ros__parameters": {"rate_hz": 5.0}},
        "/vehicle1/alpamayo_controller": {"ros__parameters": {"wheelbase": 2.5}},
    })  # fmt: skip
    anywhere = {c.node: (c.values, c.problems) for c in check_files([bare])}
    assert anywhere["alpamayo_planner"] == ({"use_sim_time": True, "rate_hz": 5.0}, [])
    there = {c.node: (c.values, c.problems) for c in check_files([bare], "vehicle1")}
    values, problems = there["alpamayo_planner"]
    assert values == {"use_sim_time": True}  # rate_hz would not reach it
    assert problems == [unreached_node_problem([bare], "alpamayo_planner",
                                               "/vehicle1/alpamayo_planner")]  # fmt: skip
    assert there["alpamayo_controller"] == ({"use_sim_time": True, "wheelbase": 2.5}, [])
    root = {c.node: c.problems for c in check_files([bare], "/")}
    assert root["alpamayo_planner"] == []
    assert "do not reach /alpamayo_controller" in root["alpamayo_controller"][0]
    shipped = [str(REPO / "config" / "planner.yaml"), str(REPO / "config" / "controller.yaml")]
    assert main(["check-config", *shipped, "--namespace", "/fleet/vehicle1"]) == 0
    assert main(["check-config", str(bare), "--namespace", "vehicle1"]) == 1
    out = capsys.readouterr().out
    assert "alpamayo_planner: 1 problem(s)" in out and "key them '/**/alpamayo_planner'" in out


def test_what_the_nodes_would_refuse_is_named(tmp_path):
    found = problems(tmp_path, {
        "alpamayo_planner": {"ros__parameters": {
            "rate_hzz": 5.0, "num_samples": 2.5, "dtype": "int8", "max_plan_age": 1,
            "camera_config": str(tmp_path / "missing.yaml"),
            "qos_overrides": {"/alpamayo_planner/plan": {"publisher": {"reliability": "maybe"}}},
        }},
        "alpamayo_controller": {"ros__parameters": {"stop_decel": 8.0, "max_speed": 20.0}},
    })  # fmt: skip
    planner = "\n".join(found["alpamayo_planner"])
    assert "'rate_hzz' (did you mean 'rate_hz'?)" in planner
    assert "parameter max_plan_age: 1 is an integer and the node declares a double" in planner
    assert "write 1.0" in planner
    assert "reliability 'maybe' is not one of ['reliable', 'best_effort'" in planner
    assert "parameter num_samples must be int, got 2.5" in planner
    assert "parameter dtype = 'int8' is not one of" in planner
    controller = "\n".join(found["alpamayo_controller"])
    assert (
        controller == "controller parameters: TrackerSettings.stop_decel (8.0) must not "
        "exceed max_decel (6.0)"
    )  # each value sound: the combination is checked


def test_the_planners_start_up_checks_run_too(tmp_path):
    rig = {"cameras": [{"name": "camera_front_wide_120fov", "topic": "/front"}]}
    rig_path = write(tmp_path, rig, "rig.yaml")
    missing = problems(tmp_path, {"alpamayo_planner": {"ros__parameters": {
        "camera_config": str(tmp_path / "none.yaml")}}})  # fmt: skip
    assert "cannot read camera config" in missing["alpamayo_planner"][0]
    # the demo checkpoint is an Alpamayo 1: all four cameras, no navigation
    one_camera = problems(tmp_path, {"alpamayo_planner": {"ros__parameters": {
        "camera_config": str(rig_path), "model": "demo"}}})  # fmt: skip
    assert "are missing: Alpamayo 1 checkpoints read all four" in one_camera["alpamayo_planner"][0]
    navigation = problems(tmp_path, {"alpamayo_planner": {"ros__parameters": {
        "navigation_topic": "/route"}}})  # fmt: skip
    assert (
        "navigation_topic = '/route' needs an Alpamayo 1.5 checkpoint"
        in (navigation["alpamayo_planner"][0])
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("qos_overrides./plan.publisher.depth", 1, None),
        ("qos_overrides./plan.subscription.durability", "transient_local", None),
        ("qos_overrides./plan.publisher.depth", 0, "depth must be an integer >= 1"),
        ("qos_overrides./plan.publisher.lifespan", 5, "policy 'lifespan' is not one of"),
        ("qos_overrides./plan.pub.depth", 1, "is qos_overrides.TOPIC.publisher|subscription"),
        ("qos_overrides.depth", 1, "is qos_overrides.TOPIC.publisher|subscription"),
    ],
)
def test_qos_overrides_rclpy_cannot_use_are_named(name, value, message):
    problem = qos_problem(name, value)
    assert (problem is None) if message is None else (message in problem)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "not a parameter file"),
        ("alpamayo_planner: 3", "'alpamayo_planner' is not a mapping"),
        ("alpamayo_planner: {ros__parameters: [1]}", "ros__parameters is not a mapping"),
        ("a: [", "not YAML"),
        ("other_node: {ros__parameters: {x: 1}}", "no parameters for alpamayo_planner"),
    ],
)
def test_a_file_that_is_not_a_parameter_file_is_one_error(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ParameterFileError, match=message):
        check_files([path])


def test_the_command_exits_0_1_or_2(tmp_path, capsys):
    assert main(["check-config", str(REPO / "config" / "controller.yaml")]) == 0
    assert "alpamayo_controller: ok (" in capsys.readouterr().out
    bad = write(tmp_path, {"alpamayo_controller": {"ros__parameters": {"wheelbas": 3.0}}})
    assert main(["check-config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "alpamayo_controller: 1 problem(s)" in out and "did you mean 'wheelbase'" in out
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "check-config: error:" in err and "missing.yaml" in err and "Traceback" not in err


def test_camera_configs_given_among_the_files_are_checked_as_the_planner_reads_them(tmp_path):
    shipped = {c.node: c for c in check_files([REPO / "config" / "pandaset_cameras.yaml"])}
    (check,) = shipped.values()
    assert check.node.startswith("camera config") and check.problems == []
    assert len(check.values) == 4
    bad = write(tmp_path, {"cameras": [{"name": "camera_front_wide_120fov"}]}, "rig.yaml")
    (check,) = check_files([bad])
    assert check.problems and "topic" in check.problems[0]


def test_replay_takes_the_planners_settings_from_its_parameter_file(tmp_path, monkeypatch, capsys):
    import alpamayo_ros.cli as cli

    seen = []
    monkeypatch.setattr(cli, "_replay", lambda args: seen.append(args) or 0)
    params = write(tmp_path, {"alpamayo_planner": {"ros__parameters": {
        "num_samples": 2, "rate_hz": 5.0, "odom_topic": "/vehicle/odom", "model": "demo",
        "camera_config": str(REPO / "config" / "pandaset_cameras.yaml"), "seed": 7,
        "planning_mode": "two_lane",
    }}})  # fmt: skip
    argv = ["replay", "bag", "--params", str(params), "--rate", "10", "--seed", "3"]
    assert main(argv) == 0
    (args,) = seen
    assert args.num_samples == 2 and args.odom == "/vehicle/odom" and args.model == "demo"
    assert args.cameras.endswith("pandaset_cameras.yaml") and args.planning_mode == "two_lane"
    assert args.rate == 10.0 and args.seed == 3  # given on the command line: they win
    assert args.temperature == 0.6  # in neither: the replay's default
    assert cli._given_options(argv, "replay") == {"bag", "params", "rate", "seed"}


def test_replay_refuses_a_parameter_file_the_planner_would_refuse(tmp_path, monkeypatch, capsys):
    import alpamayo_ros.cli as cli

    monkeypatch.setattr(cli, "_replay", lambda args: pytest.fail("the replay ran"))
    params = write(tmp_path, {"alpamayo_planner": {"ros__parameters": {
        "num_sample": 2, "rate_hz": 5}}})  # fmt: skip
    assert main(["replay", "bag", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "replay: error: --params: alpamayo_planner would refuse" in err
    assert "'num_sample' (did you mean 'num_samples'?)" in err and "write 5.0" in err
    empty = write(tmp_path, {"alpamayo_planner": {"ros__parameters": {"model": ""}}}, "e.yaml")
    assert main(["replay", "bag", "--params", str(empty)]) == 2
    assert "model is empty" in capsys.readouterr().err
    controller = write(tmp_path, {"alpamayo_controller": {"ros__parameters": {}}}, "c.yaml")
    assert main(["replay", "bag", "--params", str(controller)]) == 2
    assert "no parameters for alpamayo_planner" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")), ids=str)
def test_every_shipped_config_passes_check_config(name):
    checks = check_files([REPO / "config" / name])
    assert checks and all(c.problems == [] for c in checks), [c.problems for c in checks]
