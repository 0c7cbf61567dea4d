"""The core layer stays free of torch, transformers and rclpy."""

import subprocess
import sys


def test_importing_core_does_not_import_torch_transformers_or_rclpy():
    code = (
        "import sys, alpamayo_ros.core;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'rclpy', 'cv2'));"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"core imported: {result.stdout} {result.stderr}"


def test_layers_import_only_downwards():
    """messages and control sit on the core only; planning needs no model; nothing below
    nodes imports rclpy."""
    above_messages = ("torch", "rclpy", "alpamayo_ros.model", "alpamayo_ros.control")
    for module, forbidden in (
        ("alpamayo_ros.messages.plan", above_messages),
        ("alpamayo_ros.messages.commands", above_messages),
        ("alpamayo_ros.control.tracking", ("torch", "rclpy", "alpamayo_ros.model")),
        # the planning layer and the node parameters: no model, no torch (the controller
        # node imports them; the planner node imports the model only to load it)
        ("alpamayo_ros.planning.planner", ("torch", "transformers", "rclpy", "alpamayo_ros.model")),
        ("alpamayo_ros.planning.worker", ("torch", "transformers", "rclpy", "alpamayo_ros.model")),
        ("alpamayo_ros.nodes.parameters", ("torch", "transformers", "alpamayo_ros.model")),
        ("alpamayo_ros.nodes.parameter_file", ("torch", "rclpy", "alpamayo_ros.model")),
        ("alpamayo_ros.control.engagement", ("torch", "rclpy", "alpamayo_ros.model")),
        ("alpamayo_ros.training.trainer", ("rclpy", "alpamayo_ros.nodes")),
        ("alpamayo_ros.bag.replay", ("rclpy", "alpamayo_ros.nodes")),
        # the command line loads torch only once main has set how its threads wait
        ("alpamayo_ros.cli", ("torch", "transformers", "rclpy")),
        ("alpamayo_ros.training.settings", ("torch", "transformers", "rclpy")),
    ):  # fmt: skip
        code = (
            f"import sys, {module};"
            f"bad = sorted(m for m in sys.modules if m.startswith({forbidden!r}));"
            "print(','.join(bad)); sys.exit(1 if bad else 0)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, f"{module} imported: {result.stdout} {result.stderr}"
