"""Unusable inputs give one line naming the file and what is wrong, exit code 2, no
traceback (--debug shows it)."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from alpamayo_ros.bag.reader import Bag
from alpamayo_ros.bag.sample_drive import write_sample_bag
from alpamayo_ros.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    path = tmp_path_factory.mktemp("drive") / "bag"
    write_sample_bag(path, seed=1, duration=2.0)
    return path


def one_line_error(capsys, argv, one_line: bool = True) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and (len(err.splitlines()) == 1 or not one_line), err
    return err


def test_camera_and_odometry_topics_of_another_type_are_one_line(tmp_path, capsys):
    """A CompressedImage topic that the camera config calls raw, or an odometry topic of
    another type: every message was a traceback (AttributeError: no 'encoding', no 'pose');
    now the camera or topic is named before anything runs, by inspect-bag, replay and ask."""
    bag = tmp_path / "bag"
    write_sample_bag(bag, seed=0, kind="combined", duration=2.0)
    rig = yaml.safe_load((REPO / "config" / "cameras.yaml").read_text())
    rig["cameras"][1]["encoding"] = "raw"
    rig_path = tmp_path / "raw.yaml"
    rig_path.write_text(yaml.safe_dump(rig))
    topic = rig["cameras"][1]["topic"]
    for argv in (["inspect-bag", str(bag)], ["replay", str(bag), "--out", str(tmp_path / "r")]):
        err = one_line_error(capsys, [*argv, "--cameras", str(rig_path)])
        assert (
            f"camera camera_front_wide_120fov: {topic} holds sensor_msgs/msg/CompressedImage in "
            f"{bag}, but the camera config says encoding raw (sensor_msgs/msg/Image); write "
            "encoding: compressed"
        ) in err, err
    assert not (tmp_path / "r").exists()
    info = "/camera/camera_front_wide_120fov/camera_info"
    err = one_line_error(capsys, ["inspect-bag", str(bag), "--odom", info])
    assert err.endswith(
        f"odometry topic {info} holds sensor_msgs/msg/CameraInfo in {bag}; ego motion is read "
        "from nav_msgs/msg/Odometry or tf2_msgs/msg/TFMessage"
    ), err


def test_a_folder_without_metadata_is_not_a_bag(tmp_path, capsys):
    (tmp_path / "notes.mcap").write_text("hello")
    err = one_line_error(capsys, ["inspect-bag", str(tmp_path)])
    assert "is not a ROS 2 bag: no metadata.yaml" in err


def test_a_truncated_mcap_is_named_as_such(drive, tmp_path, capsys):
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(drive / "metadata.yaml", cut)
    data = next(drive.glob("*.mcap")).read_bytes()
    (cut / next(drive.glob("*.mcap")).name).write_bytes(data[: len(data) // 2])
    err = one_line_error(capsys, ["inspect-bag", str(cut)])
    assert "MCAP file truncated" in err and str(cut) in err
    with pytest.raises(RuntimeError, match="truncated") as raised:  # --debug: a traceback
        main(["--debug", "inspect-bag", str(cut)])
    assert "end magic" in str(raised.value.__cause__)  # with the reader's own error


def test_a_truncated_checkpoint_is_named_before_planning(drive, tiny_checkpoint, tmp_path, capsys):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50_000])
    argv = ["replay", str(drive), "--model", str(broken), "--out", str(tmp_path / "out")]
    err = one_line_error(capsys, argv)
    assert "model.safetensors: cannot read the checkpoint file: truncated or corrupt" in err


@pytest.mark.parametrize(
    ("name", "damage", "said"),
    [
        # the Rust tokenizer parser's bare Exception (a traceback before)
        ("tokenizer.json", ('"content"', '"contenx"'), "missing field `content`"),
        ("tokenizer_config.json", ("{", "{{"), "JSONDecodeError"),
        ("preprocessor_config.json", ("{", "{{"), "not a valid JSON file"),
    ],
)
def test_a_damaged_tokenizer_or_processor_file_is_named(
    drive, tiny_checkpoint, tmp_path, capsys, name, damage, said
):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, broken)
    text = (broken / name).read_text()
    assert damage[0] in text
    (broken / name).write_text(text.replace(damage[0], damage[1], 1))
    argv = ["replay", str(drive), "--model", str(broken), "--out", str(tmp_path / "out")]
    err = one_line_error(capsys, argv)
    what = "preprocessor_config.json" if name.startswith("pre") else "its tokenizer ("
    assert f"{broken}: cannot load {what}" in err and said in err, err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_without_tokenizer_json_is_named_before_its_weights_are_read(
    drive, tiny_checkpoint, tmp_path, capsys
):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "tokenizer.json").unlink()
    weights = broken / "model.safetensors"  # cut too: the tokenizer is found missing first
    weights.write_bytes(weights.read_bytes()[:50_000])
    argv = ["replay", str(drive), "--model", str(broken), "--out", str(tmp_path / "out")]
    err = one_line_error(capsys, argv)
    assert f"no tokenizer.json in checkpoint folder {broken}" in err, err
    assert "sentencepiece" not in err


def test_inputs_are_checked_before_the_model_loads(drive, tmp_path, capsys, monkeypatch):
    import alpamayo_ros.cli as cli

    def no_model(*_):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(cli, "_load_policy", no_model)
    out = str(tmp_path / "out")
    err = one_line_error(capsys, ["replay", str(drive), "--start", "60", "--out", out])
    assert "--start 60 s is past the end" in err
    argv = ["replay", str(drive), "--odom", "/nope", "--out", out]
    err = one_line_error(capsys, argv, one_line=False)  # followed by the bag's topics
    assert "topics not in" in err.splitlines()[0] and "/nope" in err
    err = one_line_error(capsys, ["replay", str(tmp_path / "missing"), "--out", out])
    assert "bag not found" in err
    for flag, value, said in (
        ("--rate", "0", "--rate must be > 0 Hz, got 0.0"),
        ("--rate", "nan", "--rate must be > 0 Hz, got nan"),
        ("--start", "nan", "--start must be >= 0 s, got nan"),
    ):
        err = one_line_error(capsys, ["replay", str(drive), flag, value, "--out", out])
        assert said in err, err
    assert not (tmp_path / "out").exists()  # nothing created


def test_a_failed_replay_leaves_the_earlier_result_untouched(drive, tmp_path, monkeypatch):
    from alpamayo_ros.bag import replay as replay_module
    from alpamayo_ros.bag.replay import replay_bag
    from alpamayo_ros.core.camera_rig import CameraRig

    out = tmp_path / "out"
    replay_bag(drive, None, CameraRig.released_default(), out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "summary.json" in before

    def broken_report(*_args, **_kw):
        raise OSError("disk full")

    monkeypatch.setattr(replay_module.ReportWriter, "write", broken_report)
    with pytest.raises(OSError, match="disk full"):
        replay_bag(drive, None, CameraRig.released_default(), out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial folder left


def test_replay_planner_flags_come_from_the_parameter_table(drive, tmp_path, capsys, monkeypatch):
    import alpamayo_ros.cli as cli

    seen = {}

    def fake_replay(bag, policy, rig, out, settings, **kw):
        seen["settings"] = settings
        raise RuntimeError("stop here")

    class FakePolicy:
        untrained = False

        def configure(self, *speed):
            seen["speed"] = speed

    monkeypatch.setattr(cli, "_load_policy", lambda *a: FakePolicy())
    monkeypatch.setattr("alpamayo_ros.bag.replay.replay_bag", fake_replay)
    argv = ["replay", str(drive), "--out", str(tmp_path / "o"), "--samples", "3",
            "--flow-steps", "5", "--top-p", "0.5", "--late-plan", "drop"]  # fmt: skip
    assert main(argv) == 2 and "stop here" in capsys.readouterr().err
    s = seen["settings"]
    assert (s.num_samples, s.num_flow_steps, s.top_p, s.late_plan, s.seed) == (3, 5, 0.5, "drop", 0)
    assert seen["speed"] == ("eager", 32, "none")  # the node's defaults
    assert main([*argv, "--engine", "fast", "--vision-cache-frames", "0"]) == 2
    assert seen["speed"] == ("fast", 0, "none")
    capsys.readouterr()
    # fp8 on this CPU: refused before any model loads, naming the flag and the reason
    err = one_line_error(capsys, [*argv, "--quantization", "fp8"])
    assert "--quantization fp8: fp8 needs a CUDA GPU, the model is on cpu" in err
    with pytest.raises(SystemExit):  # argparse: the table's choices
        main([*argv, "--engine", "turbo"])
    assert "--engine: invalid choice: 'turbo'" in capsys.readouterr().err
    # a value outside the table's range names the parameter, before any model loads
    err = one_line_error(capsys, [*argv, "--num-samples", "0"])
    assert "parameter num_samples = 0 is outside [1, 64]" in err


@pytest.fixture(scope="module")
def cut_drive(tmp_path_factory):
    """An 8 s drive (three MCAP chunks) cut at 75 %, as a recorder killed mid-drive leaves
    it: with its metadata.yaml, and without (rosbag2 writes it on close)."""
    full = tmp_path_factory.mktemp("full") / "bag"
    write_sample_bag(full, seed=4, duration=8.0)
    mcap = next(full.glob("*.mcap"))
    data = mcap.read_bytes()
    out = {}
    for name, meta in (("cut", True), ("cut_no_metadata", False)):
        folder = tmp_path_factory.mktemp(name) / "bag"
        folder.mkdir()
        if meta:
            shutil.copy(full / "metadata.yaml", folder)
        (folder / mcap.name).write_bytes(data[: int(len(data) * 0.75)])
        out[name] = folder
    out["full"] = full
    return out


@pytest.mark.parametrize("which", ["cut", "cut_no_metadata"])
def test_a_truncated_mcap_is_read_up_to_its_last_complete_chunk(cut_drive, which, capsys):
    from alpamayo_ros.bag.reader import Bag

    with Bag(cut_drive["full"]) as bag:
        topics = list(bag.topics)
        total = sum(1 for _ in bag.messages(topics))
        assert bag.truncation == ""
    with Bag(cut_drive[which]) as bag:
        recovered = list(bag.messages(topics))
        assert 0 < len(recovered) < total
        times = [t for _, t, _ in recovered]
        assert times == sorted(times)  # the first chunk ends seconds after the second starts
        assert not any(isinstance(m, Exception) for _, _, m in recovered)
        assert f"{len(recovered)} messages" in bag.truncation
        assert "last complete chunk" in bag.truncation
        assert set(bag.topics) == set(topics)
    assert (
        main(["inspect-bag", str(cut_drive[which]), "--out", str(cut_drive[which].parent / "i")])
        == 0
    )
    out = capsys.readouterr().out
    assert "note:" in out and "messages over" in out
    # the frames recovered (the first ~3 s) are planned on: in file order they came after
    # the drive's last odometry, and 1 tick of 65 had a complete frame set
    usable = int(re.search(r"(\d+) with a complete frame set", out).group(1))
    assert usable >= 10, out[-600:]


def test_a_replay_of_a_truncated_mcap_plans_what_was_recovered(cut_drive, tmp_path, capsys):
    import json

    out = tmp_path / "out"
    argv = ["replay", str(cut_drive["cut"]), "--out", str(out), "--samples", "1",
            "--max-reasoning-tokens", "2", "--flow-steps", "1", "--duration", "2"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "MCAP file truncated" in summary["bag_truncation"] and summary["plans"] > 0
    assert "bag read in part" in (out / "report.html").read_text()
    assert "note: MCAP file truncated" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["evaluate", "train-sft", "train-grpo", "train-demo"])
def test_threads_is_checked_for_the_torch_commands(command, tmp_path, capsys):
    out = ["--out", str(tmp_path)]
    args = {"evaluate": ["m", "d"], "train-sft": ["c", "d", *out],
            "train-grpo": ["c", "d", *out], "train-demo": []}[command]  # fmt: skip
    err = one_line_error(capsys, [command, *args, "--threads", "0"])
    assert "--threads must be >= 1, got 0" in err


def test_counts_of_zero_for_evaluate_and_build_dataset_are_one_line(
    drive, tiny_checkpoint, tmp_path, capsys
):
    """--stride 0 was Python's 'slice step cannot be zero' (-1 evaluated backwards);
    --per-shard 0 or -2 wrote a dataset as if it were 256."""
    notes = drive / "coc_annotations.jsonl"
    for per_shard in ("0", "-2"):
        argv = ["build-dataset", str(drive), "--annotations", str(notes), "--out",
                str(tmp_path / "ds"), "--per-shard", per_shard]  # fmt: skip
        err = one_line_error(capsys, argv)
        assert f"per_shard must be a whole number >= 1, got {per_shard}" in err
    assert not (tmp_path / "ds").exists()
    for stride in ("0", "-1"):
        err = one_line_error(capsys, ["evaluate", str(tiny_checkpoint), "DS", "--stride", stride])
        assert f"--stride must be >= 1, got {stride}" in err


def test_a_build_without_samples_keeps_the_earlier_dataset(tmp_path, capsys):
    """A build that found no samples (here: annotations of no bag given) replaced the
    earlier dataset in --out with an empty one and exited 2."""
    drive = tmp_path / "drive"
    write_sample_bag(drive, seed=2, duration=8.0)
    notes = drive / "coc_annotations.jsonl"
    out = tmp_path / "ds"
    assert main(["build-dataset", str(drive), "--annotations", str(notes), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert any(name.endswith(".tar") for name in before)
    other = tmp_path / "other.jsonl"
    other.write_text(notes.read_text().replace(drive.name, "another_drive"))
    capsys.readouterr()
    argv = ["build-dataset", str(drive), "--annotations", str(other), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after tqdm's bar
    assert "no samples (skipped: {'bag without annotations': 1})" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_unreadable_annotations_and_shards_are_one_line(drive, tiny_checkpoint, tmp_path, capsys):
    """A folder as --annotations was errno's words alone; a file that is no tar as a shard
    was tarfile's five-line list of the compressions it tried."""
    argv = ["build-dataset", str(drive), "--annotations", str(tmp_path), "--out", "x"]
    assert f"cannot read the annotations {tmp_path}: Is a directory" in one_line_error(capsys, argv)
    shard = tmp_path / "shard-000000.tar"
    shard.write_bytes(b"")
    err = one_line_error(capsys, ["evaluate", str(tiny_checkpoint), str(shard)])
    assert err.endswith(
        f"{shard}: no readable sample in the dataset (damaged parts skipped: 1, the first: "
        f"{shard}: the file is not a readable shard (ReadError: file could not be opened "
        "successfully))"
    )


def test_replay_on_a_device_that_is_not_there_is_one_line(
    drive, tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    """On a CPU build of torch: a traceback (AssertionError: Torch not compiled with CUDA
    enabled)."""
    import torch

    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    argv = ["replay", str(drive), "--out", str(tmp_path / "r"), "--device", "cuda",
            "--model", str(tiny_checkpoint)]  # fmt: skip
    assert "device 'cuda': this torch" in one_line_error(capsys, argv)
    assert not (tmp_path / "r").exists()


def test_replay_planning_mode_flag_from_the_table(drive, tmp_path, capsys):
    import json

    out = tmp_path / "out"
    argv = ["replay", str(drive), "--out", str(out), "--planning-mode", "two_lane",
            "--latency-ms", "300,60", "--samples", "1", "--max-reasoning-tokens", "2",
            "--flow-steps", "1"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planning_mode"] == "two_lane" and "realtime" in summary
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # argparse: usage and the error, exit code 2
        main(["replay", str(drive), "--planning-mode", "three_lane"])
    assert exit_.value.code == 2
    assert "invalid choice: 'three_lane'" in capsys.readouterr().err


def damage_a_message(mcap_path, chunk: int, message: int) -> int:
    """Overwrite the length of the `message`-th message record in the `chunk`-th chunk of
    an uncompressed MCAP file with 2^64 - 1 (a damaged record, as a bad disk leaves one);
    returns how many messages the file has in all."""
    import struct

    from mcap.reader import make_reader

    with mcap_path.open("rb") as handle:
        summary = make_reader(handle).get_summary()
    index = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)[chunk]
    assert index.compression == ""
    data = bytearray(mcap_path.read_bytes())
    # chunk record: opcode, length, start and end times, size, crc, compression, records
    at = index.chunk_start_offset + 1 + 8 + 8 + 8 + 8 + 4 + 4 + 8  # compression ""
    seen = 0
    while True:
        opcode = data[at]
        (length,) = struct.unpack_from("<Q", data, at + 1)
        if opcode == 0x05:  # a message
            if seen == message:
                data[at + 1 : at + 9] = b"\xff" * 8
                break
            seen += 1
        at += 9 + length
    mcap_path.write_bytes(bytes(data))
    return sum(summary.statistics.channel_message_counts.values())


@pytest.fixture(scope="module")
def damaged_drive(tmp_path_factory):
    """The 8 s drive (three MCAP chunks, with its metadata.yaml) with a damaged record: the
    10th message of the second chunk. Returns (bag, messages in the undamaged file)."""
    bag = tmp_path_factory.mktemp("damaged") / "bag"
    write_sample_bag(bag, seed=4, duration=8.0)
    total = damage_a_message(next(bag.glob("*.mcap")), chunk=1, message=10)
    return bag, total


def test_a_damaged_record_loses_the_rest_of_its_chunk_only(damaged_drive, capsys):
    """rosbags fails part-way (its reader's error, not ours): the bag is read again with
    the streaming reader, which keeps the chunks before and after, and the damaged chunk's
    messages before the record; nothing is yielded twice; the note says what was lost."""
    from mcap.reader import make_reader

    from alpamayo_ros.bag.reader import Bag

    bag, total = damaged_drive
    with next(bag.glob("*.mcap")).open("rb") as handle:
        chunks = make_reader(handle).get_summary().chunk_indexes
    assert len(chunks) == 3
    with Bag(bag) as reader:
        assert reader.truncation == ""  # rosbags opened it: its index is intact
        topics = list(reader.topics)
        got = list(reader.messages(topics))
        note = reader.truncation
    assert not any(isinstance(m, Exception) for _, _, m in got)
    keys = [(topic, t) for topic, t, _ in got]
    assert len(set(keys)) == len(keys)  # none twice
    assert [t for _, t in keys] == sorted(t for _, t in keys)  # as rosbags began them
    lost = total - len(got)
    assert 0 < lost < total / 3, (lost, total)  # at most the second chunk's rest
    last = max(t for _, t, _ in got)
    assert last == pytest.approx(max(c.message_end_time for c in chunks) * 1e-9)  # chunk 3
    assert note.startswith("damaged data (")
    assert "read again record by record" in note and "damaged after 10 messages" in note
    assert "the rest of the chunk skipped" in note
    with Bag(bag) as reader:  # a second pass, as inspect-bag and replay make: the same
        poses = reader.read_ego_poses()
        assert len(list(reader.messages(topics))) == len(got)
    assert len(poses) > 0


def test_inspect_and_replay_of_a_damaged_bag_say_what_was_recovered(
    damaged_drive, tmp_path, capsys
):
    import json

    bag, _ = damaged_drive
    assert main(["inspect-bag", str(bag), "--out", str(tmp_path / "i")]) == 0
    assert "note: damaged data (" in capsys.readouterr().out
    out = tmp_path / "out"
    argv = ["replay", str(bag), "--out", str(out), "--samples", "1",
            "--max-reasoning-tokens", "2", "--flow-steps", "1", "--duration", "2"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bag_truncation"].startswith("damaged data (") and summary["plans"] > 0
    report = (out / "report.html").read_text()
    assert "bag read in part" in report and "the rest of the chunk skipped" in report


def test_make_sample_bag_refuses_a_bad_duration_and_keeps_the_earlier_bag(tmp_path, capsys):
    """--force replaces a bag only once the new one is written: a refused duration leaves
    the earlier bag as it was, and no partial folder behind."""
    bag = tmp_path / "bag"
    assert main(["make-sample-bag", str(bag), "--duration", "2"]) == 0
    before = {p.name: p.read_bytes() for p in bag.iterdir()}
    for value in ("nan", "0", "1e9"):
        err = one_line_error(capsys, ["make-sample-bag", str(bag), "--duration", value, "--force"])
        assert "duration must be 1 to 3600 s, got" in err, err
    assert {p.name: p.read_bytes() for p in bag.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]
    assert main(["make-sample-bag", str(bag), "--duration", "3", "--force"]) == 0
    assert {p.name: p.read_bytes() for p in bag.iterdir()} != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]
    # the data file is named for the bag, as rosbags names it in a folder of that name (it
    # was named for the hidden staging folder: bag/.bag.partial-PID.mcap)
    names = sorted(p.name for p in bag.iterdir())
    assert names == ["bag.mcap", "coc_annotations.jsonl", "metadata.yaml", "scenario.json"]
    assert "relative_file_paths:\n  - bag.mcap\n" in (bag / "metadata.yaml").read_text()


@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999"])
def test_make_sample_bag_refuses_a_seed_numpy_cannot_take(seed, tmp_path, capsys):
    """-1: numpy's 'expected non-negative integer'; 99999999999: a traceback (the start
    stamp's seconds past int32)."""
    err = one_line_error(capsys, ["make-sample-bag", str(tmp_path / "d"), "--seed", seed])
    assert f"seed must be a whole number from 0 to 4294967295, got {seed}" in err
    assert not (tmp_path / "d").exists()


def test_large_sample_seeds_start_inside_the_stamps_range(tmp_path):
    scn = write_sample_bag(tmp_path / "d", seed=4294967295, duration=1.0)
    assert scn.duration == 1.0
    with Bag(tmp_path / "d") as bag:
        assert 1.7e9 <= bag.start_time < 2**31


@pytest.mark.parametrize(
    "argv",
    [
        ["make-sample-bag", "{f}", "--force"],
        ["make-tiny-checkpoint", "{f}", "--force"],
        ["build-dataset", "BAG", "--annotations", "A", "--out", "{f}"],
        ["train-sft", "CK", "DS", "--out", "{f}"],
        ["train-grpo", "CK", "DS", "--out", "{f}"],
        ["inspect-bag", "{drive}", "--out", "{f}"],
        ["train-demo", "--work", "{f}", "--out", "{f}.d"],
        ["train-demo", "--out", "{f}", "--work", "{f}.d"],
    ],
)
def test_an_output_folder_that_is_a_file_is_refused_and_the_file_kept(
    argv, drive, tmp_path, capsys
):
    """A mistyped --out naming a file: make-sample-bag --force, build-dataset, train-sft and
    train-grpo replaced it with their folder (a dataset's index.json became a checkpoint
    folder, the file hidden as .index.json.old-PID); make-tiny-checkpoint and inspect-bag
    were errno's words (inspect-bag after reading the whole bag)."""
    f = tmp_path / "index.json"
    f.write_text('{"shards": 1}')
    argv = [a.replace("{f}", str(f)).replace("{drive}", str(drive)) for a in argv]
    err = one_line_error(capsys, argv)
    assert f"the output {f} is a file, not a folder" in err
    assert f.read_text() == '{"shards": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["replay", "{bag}", "--out", "{bag}"], "the bag"),
        (["replay", "{bag}", "--out", "{root}"], "the bag"),
        (["build-dataset", "{bag}", "--annotations", "{notes}", "--out", "{root}"], "the annot"),
        (["train-sft", "CK", "{bag}", "--out", "{bag}"], "the dataset"),
        (["train-grpo", "{bag}", "DS", "--out", "{root}"], "the checkpoint"),
        (["evaluate", "CK", "{notes}", "--out", "{notes}"], "the dataset"),
        (["train-demo", "--work", "{bag}", "--out", "{root}"], "the work folder"),
    ],
)
def test_an_output_that_would_replace_an_input_is_refused(argv, what, tmp_path, capsys):
    """`replay BAG --out BAG` replaced the drive with its report (an output folder is
    replaced whole), as did an --out holding the input."""
    root = tmp_path / "drives"
    bag = root / "d0"
    write_sample_bag(bag, seed=1, duration=2.0)
    notes = bag / "coc_annotations.jsonl"
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    names = {"{bag}": str(bag), "{root}": str(root), "{notes}": str(notes)}
    argv = [names.get(a, a) for a in argv]
    err = one_line_error(capsys, argv)
    assert f"would replace {what}" in err and "name another folder" in err
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_evaluate_checks_its_output_file_before_evaluating(tmp_path, capsys, monkeypatch):
    """--out in a missing folder failed with errno's words after the whole evaluation."""
    import alpamayo_ros.training.dataset as dataset

    def never(*_):
        raise AssertionError("the samples were read before --out was checked")

    monkeypatch.setattr(dataset, "iter_samples", never)
    for out, said in (
        (tmp_path / "no" / "m.json", f"its folder {tmp_path / 'no'} does not exist"),
        (tmp_path, f"the output {tmp_path} is a folder, not a file"),
    ):
        assert said in one_line_error(capsys, ["evaluate", "CK", "DS", "--out", str(out)])


def test_make_tiny_checkpoint_does_not_replace_a_checkpoint_unasked(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["make-tiny-checkpoint", str(ckpt), "--seed", "1"]) == 0
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    assert main(["make-tiny-checkpoint", str(ckpt), "--seed", "2"]) == 2
    assert "exists and is not empty; pass --force" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before
    assert main(["make-tiny-checkpoint", str(ckpt), "--seed", "2", "--force"]) == 0
    after = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    assert after.keys() == before.keys() and after != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


@pytest.mark.parametrize("command", ["make-sample-bag", "make-tiny-checkpoint"])
def test_an_output_folder_that_cannot_be_made_is_one_line_naming_it(command, tmp_path, capsys):
    """Before: "[Errno 17] File exists: ..." or "[Errno 2] ... '.NAME.partial-PID'", the
    hidden staging folder's name instead of the output's."""
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "out"
    err = one_line_error(capsys, [command, str(target)])
    assert f"cannot write the output folder {target}: {tmp_path / 'afile'} is a file" in err
    assert "partial" not in err and "Errno" not in err
