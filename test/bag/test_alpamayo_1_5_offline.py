"""Alpamayo 1.5 offline: a replay with a single front camera and navigation (text or a bag
topic), questions about a bag's scene, and start-up refusals for what a checkpoint cannot
read."""

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from alpamayo_ros.bag.reader import Bag
from alpamayo_ros.bag.replay import PLANNER_NAMESPACE, replay_bag
from alpamayo_ros.bag.sample_drive import NAVIGATION_TOPIC, write_sample_bag
from alpamayo_ros.cli import main
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.messages.plan import plan_from_msg
from alpamayo_ros.planning.settings import PlannerSettings

FRONT = "camera_front_wide_120fov"
FAST = PlannerSettings(num_samples=1, max_reasoning_tokens=3, num_flow_steps=2, seed=0)


@pytest.fixture(scope="module")
def nav_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nav") / "drive"
    write_sample_bag(path, seed=5, duration=4.0, navigation=[(1.0, "Turn left in 30m"), (2.5, "")])
    return path


@pytest.fixture(scope="module")
def front_rig_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rig") / "front.yaml"
    topic = f"/camera/{FRONT}/image_raw/compressed"
    path.write_text(yaml.safe_dump({"cameras": [{"name": FRONT, "topic": topic}]}))
    return path


def published_plans(out: Path):
    topic = f"{PLANNER_NAMESPACE}/plan"
    with Bag(out / "plans") as bag:
        return [plan_from_msg(msg) for _, _, msg in bag.messages([topic])]


def test_single_front_camera_replay_follows_the_navigation_topic(
    nav_bag, front_rig_yaml, tiny_policy_1_5, tmp_path
):
    rig = CameraRig.from_yaml(front_rig_yaml)
    result = replay_bag(
        nav_bag, tiny_policy_1_5, rig, tmp_path / "out", FAST, progress=False,
        frames_per_camera=2, navigation_topic=NAVIGATION_TOPIC,
    )  # fmt: skip
    plans = [s.plan for s in result.steps]
    model = [p for p in plans if not p.is_fallback]
    assert model, [p.fallback_reason for p in plans]
    assert all(p.camera_names == (FRONT,) and p.camera_stamps.shape == (1, 2) for p in model)
    with Bag(nav_bag) as bag:
        start = bag.start_time
    with_nav = [p for p in model if p.navigation]
    assert with_nav and all(p.navigation == "Turn left in 30m" for p in with_nav)
    # The text arrived 1.0 s into the bag and was cleared at 2.5 s (empty message).
    assert all(1.0 <= p.stamp - start <= 2.5 + 0.1 for p in with_nav)
    assert any(p.stamp - start > 2.6 and not p.navigation for p in model)
    # And the plans bag carries it.
    assert {p.navigation for p in published_plans(tmp_path / "out")} >= {"Turn left in 30m"}


def test_cli_replay_with_navigation_text_and_a_checkpoint_that_cannot_read_it(
    nav_bag, front_rig_yaml, tiny_checkpoint_1_5, tiny_checkpoint, tmp_path, capsys
):
    base = ["replay", str(nav_bag), "--cameras", str(front_rig_yaml), "--duration", "1.0",
            "--samples", "1", "--max-reasoning-tokens", "2", "--flow-steps", "1"]  # fmt: skip
    out = tmp_path / "out"
    argv = [*base, "--model", str(tiny_checkpoint_1_5), "--out", str(out),
            "--navigation", "Turn right in 9m", "--navigation-guidance", "1.5"]  # fmt: skip
    assert main(argv) == 0
    plans = published_plans(out)
    assert plans and all(p.navigation == "Turn right in 9m" for p in plans if not p.is_fallback)
    capsys.readouterr()
    # Alpamayo 1 reads its four cameras only: refused before anything loads, naming why.
    assert main([*base, "--model", str(tiny_checkpoint), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "cameras" in err and "missing" in err and "Alpamayo 1.5" in err
    assert not (tmp_path / "o2").exists()


def test_navigation_for_an_alpamayo_1_checkpoint_is_refused_at_start(
    nav_bag, tiny_checkpoint, tmp_path, capsys
):
    argv = ["replay", str(nav_bag), "--model", str(tiny_checkpoint), "--navigation", "Turn left",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    assert "navigation needs an Alpamayo 1.5 checkpoint" in capsys.readouterr().err


def test_ask_answers_about_the_scene_at_a_time(
    nav_bag, front_rig_yaml, tiny_checkpoint_1_5, capsys
):
    argv = ["ask", str(nav_bag), "Is anyone crossing?", "--at", "2.0", "--model",
            str(tiny_checkpoint_1_5), "--cameras", str(front_rig_yaml), "--max-tokens", "4",
            "--frames-per-camera", "3"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"1 cameras x 3 frames: {FRONT}" in out and "answer (cut at --max-tokens):" in out


def test_ask_refuses_a_time_outside_the_bag_and_an_alpamayo_1_checkpoint(
    nav_bag, front_rig_yaml, tiny_checkpoint_1_5, tiny_checkpoint, capsys
):
    argv = ["ask", str(nav_bag), "Why?", "--at", "99", "--model", str(tiny_checkpoint_1_5),
            "--cameras", str(front_rig_yaml)]  # fmt: skip
    assert main(argv) == 2
    assert "--at 99 s is outside" in capsys.readouterr().err
    argv = ["ask", str(nav_bag), "Why?", "--at", "2", "--model", str(tiny_checkpoint)]
    assert main(argv) == 2
    assert "questions need an Alpamayo 1.5 checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("question", "extra", "said"),
    [
        ("Why?", ["--temperature", "-1"], "parameter temperature = -1.0 is outside [0.0, 2.0]"),
        ("Why?", ["--temperature", "nan"], "parameter temperature must be finite, got nan"),
        ("  ", [], "the question is empty"),
    ],
)
def test_ask_refuses_a_bad_temperature_and_an_empty_question(
    nav_bag, front_rig_yaml, tiny_checkpoint_1_5, capsys, question, extra, said
):
    """A negative temperature answered (greedily, without a word); NaN was torch's
    'probability tensor contains either inf, nan or element < 0'; an empty question was
    answered."""
    argv = ["ask", str(nav_bag), question, "--at", "2", "--model", str(tiny_checkpoint_1_5),
            "--cameras", str(front_rig_yaml), *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(said) and len(err.splitlines()) == 1, err


def test_inspect_bag_suggests_the_rig_a_bag_was_recorded_with(nav_bag, capsys):
    assert main(["inspect-bag", str(nav_bag), "--suggest-rig"]) == 0
    out = capsys.readouterr().out
    rig = CameraRig.from_dict(yaml.safe_load(out))
    released = CameraRig.released_default().cameras
    assert rig.cameras == tuple(replace(c, image_size=(480, 270)) for c in released)


def test_inspect_bag_suggests_the_shipped_pandaset_rig(pandaset_bag, capsys):
    assert main(["inspect-bag", str(pandaset_bag), "--suggest-rig"]) == 0
    suggested = CameraRig.from_dict(yaml.safe_load(capsys.readouterr().out))
    shipped = CameraRig.from_yaml(Path(__file__).parents[2] / "config" / "pandaset_cameras.yaml")
    assert [(c.name, c.topic, c.crop, c.image_size) for c in suggested.cameras] == [
        (c.name, c.topic, c.crop, c.image_size) for c in shipped.cameras
    ]
