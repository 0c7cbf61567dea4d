"""The shipped demo checkpoint: it loads, says what it is, and on fresh synthetic drives
it never saw it beats the constant-velocity baseline and says what it does."""

import json

import pytest

from alpamayo_ros.bag.sample_drive import write_sample_bag
from alpamayo_ros.checkpoints import DEMO_CHECKPOINT
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.training.dataset import build_dataset, load_samples
from alpamayo_ros.training.demo import DemoSettings
from alpamayo_ros.training.evaluate import evaluate_as_planner


@pytest.fixture(scope="module")
def demo():
    return AlpamayoPolicy.from_pretrained(DEMO_CHECKPOINT)


def test_demo_checkpoint_loads_and_describes_itself(demo):
    assert demo.load_report.missing == () and demo.load_report.unexpected == ()
    assert not demo.untrained and "synthetic drives" in demo.description
    metrics = json.loads((DEMO_CHECKPOINT / "demo_metrics.json").read_text())
    assert metrics["samples"] >= 200  # what the README quotes, from bench/eval_demo.py


def test_demo_beats_constant_velocity_on_unseen_drives(demo, tmp_path):
    """Fresh drives like the training ones (seeds it never saw), planned as the replay does."""
    s = DemoSettings()
    bags = []
    for seed, kind in ((90001, "lead_brake"), (90002, "pedestrian"), (90003, "combined")):
        write_sample_bag(tmp_path / kind, seed=seed, kind=kind, duration=s.duration,
                         width=s.width, height=s.height)  # fmt: skip
        bags.append(tmp_path / kind)
    notes = tmp_path / "coc.jsonl"
    notes.write_text("".join((b / "coc_annotations.jsonl").read_text() for b in bags))
    build_dataset(bags, notes, tmp_path / "data", CameraRig.released_default(), progress=False)
    samples = load_samples(tmp_path / "data")[::3]
    report = evaluate_as_planner(demo, samples)
    assert report.samples >= 30
    assert report.model["ade_3.0s"] < report.constant_velocity["ade_3.0s"]
    assert report.consistency >= 0.7


def test_training_drives_can_be_longer_than_the_held_out_ones(tmp_path):
    """train_duration: the training drives' length alone (the held-out drives, hence the
    README's figures, keep `duration`)."""
    from rosbags.highlevel import AnyReader

    from alpamayo_ros.training.demo import synthetic_bags

    s = DemoSettings(duration=2.0, train_duration=3.0, width=64, height=36)
    (train,) = synthetic_bags(tmp_path / "train", 1, 7000, s, s.train_duration)
    (test,) = synthetic_bags(tmp_path / "test", 1, 8000, s)
    lengths = []
    for bag in (train, test):
        with AnyReader([bag]) as reader:
            lengths.append(reader.duration * 1e-9)
    assert abs(lengths[0] - 3.0) < 0.2 and abs(lengths[1] - 2.0) < 0.2


def test_long_training_drives_join_the_short_ones(tmp_path):
    """long_train_bags: drives of long_train_duration after the short ones, with their own
    scene seeds (never a held-out scene), kinds in turn."""
    import json

    from rosbags.highlevel import AnyReader

    from alpamayo_ros.training.demo import KINDS, TEST_SEED, training_bags

    s = DemoSettings(train_bags=1, duration=2.0, long_train_bags=2, long_train_duration=4.0,
                     width=64, height=36)  # fmt: skip
    bags = training_bags(tmp_path, s)
    assert (
        len(bags) == 3 and [b.parent.name for b in bags] == ["train_bags"] + ["long_train_bags"] * 2
    )
    lengths = []
    for bag in bags:
        with AnyReader([bag]) as reader:
            lengths.append(reader.duration * 1e-9)
    assert abs(lengths[0] - 2.0) < 0.2 and all(abs(x - 4.0) < 0.2 for x in lengths[1:])
    kinds = [json.loads((b / "scenario.json").read_text())["kind"] for b in bags[1:]]
    assert kinds == list(KINDS[:2])
    seeds = [int(b.name.split("_")[1]) for b in bags]
    assert len(set(seeds)) == 3 and all(seed < TEST_SEED for seed in seeds)


def test_a_failed_train_demo_leaves_the_earlier_checkpoint_untouched(tmp_path, monkeypatch):
    """train-demo writes beside its output (by default the package's demo checkpoint) and
    moves the result into place only when training, evaluation and the description are
    done: a run failing in the evaluation leaves the earlier folder as it was, and nothing
    beside it."""
    import alpamayo_ros.training.demo as demo_module

    out = tmp_path / "demo_checkpoint"
    out.mkdir()
    (out / "config.json").write_text('{"earlier": true}\n')
    monkeypatch.setattr(demo_module, "training_bags", lambda work, s: [])
    monkeypatch.setattr(demo_module, "_dataset", lambda work, name, bags: work / "data")

    def train(init, data, into, settings):
        into.mkdir()
        (into / "config.json").write_text('{"new": true}\n')
        return [{"step": 1}]

    def evaluate(checkpoint, work, settings):
        assert checkpoint != out and (checkpoint / "config.json").is_file()
        raise RuntimeError("held-out drives unreadable")

    monkeypatch.setattr(demo_module, "train_sft", train)
    monkeypatch.setattr(demo_module, "evaluate_demo", evaluate)
    with pytest.raises(RuntimeError, match="held-out drives unreadable"):
        demo_module.train_demo(tmp_path / "work", out, DemoSettings(model_size="tiny"))
    assert (out / "config.json").read_text() == '{"earlier": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_checkpoint", "work"]
