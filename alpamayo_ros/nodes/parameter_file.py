"""A ROS 2 parameter file checked without ROS, as the nodes would check it at start-up.

`alpamayo-ros check-config FILE...` reads each file as rcl does (node name -> ros__parameters,
nested keys joined with dots, `/**` and `*` wildcards, namespaced names) and, for each of our
nodes a file configures, checks what the node would refuse:
  - a name the node does not have (with the closest one);
  - a value of the wrong type, including an integer for a double parameter (`rate_hz: 10`,
    which rclpy refuses at start-up while the table would take it: write 10.0);
  - a value outside its range or choices, and combinations the node refuses
    (stop_decel > max_decel);
  - a QoS override that rclpy cannot use (`qos_overrides.TOPIC.publisher.reliability`);
    whether TOPIC is one of the node's topics depends on the camera rig and namespace, so
    that is checked at start-up;
  - what the planner checks before loading the model: its camera_config is missing or does
    not parse, the checkpoint (its config.json) cannot read those cameras, navigation_topic
    with an Alpamayo 1 checkpoint.
A camera config (a file with `cameras:`) given among them is checked as the planner reads it.
ROS-free and torch-free: runs in CI and on a laptop before a config goes to the vehicle.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.nodes.parameters import (
    CONTROLLER_PARAMS,
    NODE_PARAMS,
    QOS_POLICIES,
    QOS_PREFIX,
    ParameterError,
    Value,
    controller_config,
    planner_config,
    planner_rig_and_family,
    unknown_parameter_problem,
)

ROS_OWN = ("use_sim_time", "start_type_description_service")  # rclpy declares these
# The planner's rig when camera_config is "" (the package's config/cameras.yaml; the node
# finds it in its share folder, a source tree has it here).
DEFAULT_RIG = Path(__file__).resolve().parents[2] / "config" / "cameras.yaml"
QOS_VALUES: dict[str, tuple[str, ...]] = {
    "history": ("keep_last", "keep_all", "system_default"),
    "reliability": ("reliable", "best_effort", "system_default"),
    "durability": ("volatile", "transient_local", "system_default"),
}


class ParameterFileError(ValueError):
    """A file that is not a ROS 2 parameter file (missing, not YAML, not node -> mapping)."""


@dataclass
class NodeCheck:
    """What a file gives one node, and what the node would refuse."""

    node: str
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_parameter_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """{node name pattern: {dotted name: value}} of a ROS 2 parameter file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ParameterFileError(f"{path}: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise ParameterFileError(f"{path}: not YAML: {err}".splitlines()[0]) from err
    if not isinstance(doc, dict) or not doc:
        raise ParameterFileError(f"{path}: not a parameter file (node name: ros__parameters:)")
    out: dict[str, dict[str, Any]] = {}
    for pattern, body in _node_entries(doc, path):
        out.setdefault(pattern, {}).update(body)
    return out


def _node_entries(doc: dict, path: Path, prefix: str = "") -> list[tuple[str, dict]]:
    entries = []
    for key, body in doc.items():
        name = f"{prefix}/{str(key).strip('/')}" if prefix else str(key)
        if not isinstance(body, dict):
            raise ParameterFileError(f"{path}: {name!r} is not a mapping (node: ros__parameters:)")
        if "ros__parameters" in body:
            params = body["ros__parameters"]
            if not isinstance(params, dict):
                raise ParameterFileError(f"{path}: {name}: ros__parameters is not a mapping")
            entries.append((name, _flatten(params)))
        else:  # a namespace level: /ns: node: ros__parameters
            entries += _node_entries(body, path, name)
    return entries


def _flatten(params: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def applies_to(pattern: str, node: str) -> bool:
    """Whether a node-name key of a parameter file names `node` (any namespace)."""
    name = pattern.strip("/")
    if name in ("**", "*"):
        return True
    last = name.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(node, last)


def reaches(pattern: str, fqn: str) -> bool:
    """Whether a node-name key of a parameter file reaches the node whose fully qualified
    name is `fqn`, as rclpy matches them: a key without a leading '/' is taken from the root
    (`alpamayo_planner` is /alpamayo_planner only, not /vehicle1/alpamayo_planner), '/*' is
    one namespace level and '/**' any number."""
    name = pattern if pattern.startswith("/") else f"/{pattern}"
    try:
        return re.fullmatch(name.replace("/*", r"(/\w+)"), fqn) is not None
    except re.error:  # not a node name rcl would take; rcl said so at start-up
        return True


def params_file_arguments(args: Sequence[str]) -> list[str]:
    """The files a ROS command line gives with --params-file (inside its --ros-args)."""
    files, ros, it = [], False, iter(args)
    for arg in it:
        if arg == "--ros-args":
            ros = True
        elif arg == "--":
            ros = False
        elif ros and arg == "--params-file":
            files.append(next(it, ""))
    return [f for f in files if f]


def unreached_node_problem(paths: Sequence[str | Path], node: str, fqn: str) -> str | None:
    """Why a parameter file given to the node `node` (running as `fqn`) configures it in
    vain: it names the node, but under keys none of which reach `fqn` (rclpy then starts the
    node on its defaults and says nothing). None when every such file reaches it."""
    for path in paths:
        try:
            entries = read_parameter_file(path)
        except ParameterFileError:
            continue  # rcl read it; what check-config says of it is another matter
        problem = _unreached(entries, path, node, fqn)
        if problem is not None:
            return problem
    return None


def _unreached(entries: dict[str, Any], path: str | Path, node: str, fqn: str) -> str | None:
    """unreached_node_problem for one file's entries (read_parameter_file)."""
    named = [k for k in entries if k.strip("/") not in ("**", "*") and applies_to(k, node)]
    if not named or any(reaches(k, fqn) for k in named):
        return None
    keys = ", ".join(repr(k) for k in named)
    return (
        f"{path}: its parameters for {keys} do not reach {fqn} (a key without a namespace "
        f"names the node in the root namespace only), so the node would run on its "
        f"defaults: key them '/**/{node}' (any namespace) or '{fqn}'"
    )


def check_node(node: str, values: dict[str, Any]) -> NodeCheck:
    """The problems `node` would refuse in `values` (dotted names from parameter files).
    A relative camera_config or model path is read from the current folder, as the node
    started from here would."""
    check = NodeCheck(node, dict(values))
    specs = {s.name: s for s in NODE_PARAMS[node]}
    ours = {k: v for k, v in values.items() if k in specs}
    qos = {k: v for k, v in values.items() if k.startswith(QOS_PREFIX)}
    declared = [*specs, *ROS_OWN, *qos]  # QoS: the form is checked here, the topic at start
    unknown = unknown_parameter_problem(node, list(values), declared)
    if unknown:
        check.problems.append(unknown)
    for name, value in qos.items():
        problem = qos_problem(name, value)
        if problem:
            check.problems.append(problem)
    bad_values = False
    for name, value in ours.items():
        spec = specs[name]
        if isinstance(spec.default, float) and type(value) is int:
            check.problems.append(
                f"parameter {name}: {value} is an integer and the node declares a double "
                f"(rclpy refuses it at start-up): write {float(value)!r}"
            )
            bad_values = True
        try:
            spec.check(value)  # each value alone: every bad one named, not the first only
        except ParameterError as err:
            check.problems.append(str(err))
            bad_values = True
    if bad_values:
        return check  # the combinations are checked once each value is sound
    try:
        if NODE_PARAMS[node] is CONTROLLER_PARAMS:
            controller_config(ours)
        else:  # and what the planner checks before loading: rig, checkpoint, navigation
            planner_rig_and_family(planner_config(ours), str(DEFAULT_RIG))
    except ValueError as err:  # ParameterError, CameraRigError, CameraLayoutError, ...
        check.problems.append(str(err))
    return check


def qos_problem(name: str, value: Value) -> str | None:
    """Why rclpy could not use this QoS override (None when it could)."""
    parts = name[len(QOS_PREFIX) :].rsplit(".", 2)
    if len(parts) != 3 or parts[1] not in ("publisher", "subscription") or not parts[0]:
        return f"{name}: a QoS override is {QOS_PREFIX}TOPIC.publisher|subscription.POLICY"
    policy = parts[2]
    if policy not in QOS_POLICIES:
        return f"{name}: policy {policy!r} is not one of {list(QOS_POLICIES)}"
    if policy == "depth":
        if type(value) is not int or value < 1:
            return f"{name}: depth must be an integer >= 1, got {value!r}"
        return None
    if not isinstance(value, str) or value.lower() not in QOS_VALUES[policy]:
        return f"{name}: {policy} {value!r} is not one of {list(QOS_VALUES[policy])}"
    return None


def check_files(paths: list[str | Path], namespace: str | None = None) -> list[NodeCheck]:
    """Each of our nodes that the files configure, with what the files give it (later files
    override earlier ones, as repeated --params-file do) and its problems. With `namespace`
    ("/" for the root), the nodes are checked as they would run there: a key gives its
    values only where rclpy would (`reaches`), and a file that names a node only under keys
    that do not reach it is the node's problem, as at start-up; without, a key that names
    the node in any namespace counts. Raises ParameterFileError for a file that is not a
    parameter file, or when none configures any of our nodes."""
    ns = None if namespace is None else "/".join(p for p in namespace.split("/") if p)
    fqn = {node: f"/{ns}/{node}" if ns else f"/{node}" for node in NODE_PARAMS}
    given: dict[str, dict[str, Any]] = {}
    unreached: dict[str, str] = {}
    rigs: list[NodeCheck] = []
    for path in paths:
        if _is_camera_config(path):
            rigs.append(check_camera_config(path))
            continue
        entries = read_parameter_file(path)
        for pattern, values in entries.items():
            for node in NODE_PARAMS:
                if reaches(pattern, fqn[node]) if ns is not None else applies_to(pattern, node):
                    given.setdefault(node, {}).update(values)
        for node in NODE_PARAMS if ns is not None else ():
            problem = _unreached(entries, path, node, fqn[node])
            if problem is not None:
                unreached.setdefault(node, problem)
    if not given and not rigs and not unreached:
        names = ", ".join(NODE_PARAMS)
        raise ParameterFileError(f"{', '.join(map(str, paths))}: no parameters for {names}")
    checks = []
    for node in NODE_PARAMS:
        if node in given or node in unreached:
            check = check_node(node, given.get(node, {}))
            if node in unreached:
                check.problems.insert(0, unreached[node])
            checks.append(check)
    return checks + rigs


def _is_camera_config(path: str | Path) -> bool:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False  # read_parameter_file says why
    return isinstance(doc, dict) and "cameras" in doc


def check_camera_config(path: str | Path) -> NodeCheck:
    """A camera rig file (config/cameras.yaml's layout) given to check-config: what the
    planner would refuse in it."""
    check = NodeCheck(f"camera config {path}")
    try:
        rig = CameraRig.from_yaml(path)
    except ValueError as err:
        check.problems.append(str(err))
    else:
        check.values = {cam.name: cam.topic for cam in rig.cameras}
    return check
