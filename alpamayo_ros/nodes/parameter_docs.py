"""The files generated from the parameter table: config/planner.yaml, config/controller.yaml
(each parameter's default, with its meaning, range or choices as a comment) and
docs/parameters.md (the reference, with the launch overrides and QoS). A test checks they
are current; regenerate with

    python -m alpamayo_ros.nodes.parameter_docs --write config/ --docs docs/parameters.md
"""

from __future__ import annotations

import json
import textwrap

from alpamayo_ros.core.settings_table import bound_text
from alpamayo_ros.nodes.parameters import (
    CONTROLLER_PARAMS,
    LAUNCH_OVERRIDES,
    PLANNER_PARAMS,
    QOS_POLICIES,
    QOS_PREFIX,
    ParamSpec,
    Value,
)


def _yaml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def render_yaml(
    node: str,
    specs: tuple[ParamSpec, ...],
    width: int = 100,
    qos_example: tuple[str, str, str, Value] | None = None,
) -> str:
    """The parameter file of `node` with every spec's default and its description, range or
    choices as a comment: what config/planner.yaml and config/controller.yaml hold.
    qos_example: (topic, "publisher" or "subscription", policy, value), shown commented out
    as the way to set a topic's QoS."""
    lines = [
        f"# Parameters of {node}, generated from alpamayo_ros/nodes/parameters.py",
        "# (python -m alpamayo_ros.nodes.parameter_docs --write config/; a test checks it).",
        f"# Pass with: ros2 run alpamayo_ros {node} --ros-args --params-file THIS_FILE",
        f"# '/**/{node}' reaches the node in any namespace; a key without a namespace",
        f"# ('{node}:') reaches it in the root namespace only (the node refuses such a file).",
        f"/**/{node}:",
        "  ros__parameters:",
    ]
    for spec in specs:
        note = spec.description
        if spec.choices:
            note += f" One of {list(spec.choices)}."
        elif spec.min is not None and spec.max is not None:
            note += f" Range [{spec.min}, {spec.max}]."
        if spec.runtime:
            note += " Can be changed while running (ros2 param set)."
        lines += textwrap.wrap(
            note, width, initial_indent="    # ", subsequent_indent="    # ", break_on_hyphens=False
        )
        lines.append(f"    {spec.name}: {_yaml_value(spec.default)}")
    if qos_example is not None:
        topic, kind, policy, value = qos_example
        lines += [
            f"    # Each topic's QoS ({', '.join(QOS_POLICIES)}) is a parameter too",
            f"    # (ros2 param list /{node} | grep {QOS_PREFIX[:-1]}). For example:",
            f"    # {QOS_PREFIX[:-1]}:",
            f"    #   {topic}:",
            f"    #     {kind}:",
            f"    #       {policy}: {_yaml_value(value)}",
        ]
    return "\n".join(lines) + "\n"


# file -> (node, its parameters, a QoS override shown as the example)
PARAMETER_FILES: dict[str, tuple[str, tuple[ParamSpec, ...], tuple[str, str, str, Value]]] = {
    "planner.yaml": (
        "alpamayo_planner",
        PLANNER_PARAMS,
        ("/alpamayo_planner/plan", "publisher", "durability", "transient_local"),
    ),
    "controller.yaml": (
        "alpamayo_controller",
        CONTROLLER_PARAMS,
        ("/cmd_vel", "publisher", "depth", 1),
    ),
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> str:
    """docs/parameters.md: every node parameter (default, range or choices, description),
    the launch arguments that override them, and how QoS is set; from the tables."""
    lines = [
        "# Parameters of the nodes",
        "",
        "Generated from `alpamayo_ros/nodes/parameters.py` "
        "(`python -m alpamayo_ros.nodes.parameter_docs --write config/ --docs docs/parameters.md`;",
        "a test checks it is current), as are `config/planner.yaml` and `config/controller.yaml`.",
        "All are read at start-up; a bad value, or a name the node does not have, stops the node",
        "naming it. Those marked settable can also be changed while the node runs",
        "(`ros2 param set`, rqt_reconfigure), checked the same way (a bad value is refused with",
        "the reason and changes nothing); the others are read-only.",
        "`alpamayo-ros check-config FILE...` runs the start-up checks on parameter files",
        "without ROS; `alpamayo-ros replay BAG --params FILE` replays with a planner file.",
        "",
        "A file's key `/**/alpamayo_planner` reaches the node in any namespace",
        "(`drive.launch.py namespace:=vehicle1`); `alpamayo_planner:` reaches it in the root",
        "namespace only, as rclpy matches keys. A node given a file that names it only under",
        "keys that do not reach it stops at start-up saying so (rclpy would run it on its",
        "defaults without a word).",
    ]
    for file, (node, specs, _) in PARAMETER_FILES.items():
        header = "| parameter | default | range or choices | at run time | meaning |"
        lines += ["", f"## {node} (`config/{file}`)", "", header, "|---|---|---|---|---|"]
        for spec in specs:
            if spec.choices:
                allowed = ", ".join(f"`{c}`" for c in spec.choices)
            elif spec.min is not None and spec.max is not None:
                allowed = f"{bound_text(spec.min)} to {bound_text(spec.max)}"
            elif spec.form is not None:
                allowed = spec.form[1]
            else:
                allowed = ""
            when = "settable" if spec.runtime else ""
            lines.append(f"| `{spec.name}` | `{_yaml_value(spec.default)}` | {allowed} | {when} | "
                         f"{_cell(spec.description)} |")  # fmt: skip
    lines += [
        "",
        "## Launch arguments of `drive.launch.py` that override a parameter",
        "",
        "Given, they override the parameter file; empty (the default), the file's value stays.",
        "They are typed and checked as the parameter is: a bad one stops the launch.",
        "",
        "| argument | node | parameter |",
        "|---|---|---|",
    ]
    lines += [f"| `{a}` | {n} | `{p}` |" for a, n, p in LAUNCH_OVERRIDES]
    lines += [
        "",
        "## QoS",
        "",
        f"Each topic's {', '.join(QOS_POLICIES)} are parameters too, "
        f"`{QOS_PREFIX}TOPIC.publisher.POLICY` or",
        f"`{QOS_PREFIX}TOPIC.subscription.POLICY` (TOPIC fully resolved; "
        f"`ros2 param list NODE | grep {QOS_PREFIX[:-1]}`).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="write the nodes' parameter files")
    parser.add_argument("--write", metavar="DIR", required=True, help="config folder")
    parser.add_argument("--docs", metavar="FILE", help="also write the Markdown reference")
    opts = parser.parse_args()
    out = Path(opts.write)
    for name, (node, specs, qos) in PARAMETER_FILES.items():
        (out / name).write_text(render_yaml(node, specs, qos_example=qos))
        print(out / name)
    if opts.docs:
        Path(opts.docs).write_text(render_markdown())
        print(opts.docs)
