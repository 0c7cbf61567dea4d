"""Bag reading without ROS: poses, images, bad messages counted, real recording."""

import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
import zstandard

from alpamayo_ros.bag.logged_drive import inspect_logged_drive
from alpamayo_ros.bag.messages import BagWriter, MessageFactory, yaw_quaternion
from alpamayo_ros.bag.reader import BadMessage, Bag, BagError, SkipCounts
from alpamayo_ros.core.camera_rig import CameraInput, CameraRig
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.messages.images import decode_image

REPO = Path(__file__).resolve().parents[2]


def write_small_drive(
    path: Path,
    storage: str = "mcap",
    corrupt_image_at: int | None = None,
    nan_pose_at: int | None = None,
) -> CameraRig:
    """3 s straight at 4 m/s: odometry + 2 cameras (compressed and raw) at 10 Hz."""
    f = MessageFactory()
    rig = CameraRig(
        (
            CameraInput("cam_a", "/cam_a/image_raw/compressed"),
            CameraInput("cam_b", "/cam_b/image_raw", encoding="raw"),
        )
    )
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :32] = (255, 0, 0)
    with BagWriter(path, store=f.store, storage=storage) as bag:
        for k in range(31):
            t = 100.0 + 0.1 * k
            pos = (4.0 * 0.1 * k, 0.0, 0.0)
            quat = yaw_quaternion(0.0)
            if k == nan_pose_at:
                pos = (math.nan, 0.0, 0.0)
            odom = f.odometry(StampedPose(t, (0.0, 0.0, 0.0), quat), speed=4.0)
            odom.pose.pose.position.x = pos[0]
            bag.write("/odom", t, odom)
            if k == corrupt_image_at:
                bad = f.compressed_image(t + 0.02, "cam_a", img)
                bad.data = np.frombuffer(b"not a jpeg", np.uint8)
                bag.write("/cam_a/image_raw/compressed", t + 0.02, bad)
            else:
                bag.write(
                    "/cam_a/image_raw/compressed",
                    t + 0.02,
                    f.compressed_image(t + 0.02, "cam_a", img),
                )
            bag.write("/cam_b/image_raw", t + 0.03, f.raw_image(t + 0.03, "cam_b", img))
    return rig


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_reads_poses_and_topics_from_both_storages(tmp_path, storage):
    write_small_drive(tmp_path / "bag", storage)
    with Bag(tmp_path / "bag") as bag:
        assert bag.topics["/odom"] == "nav_msgs/msg/Odometry"
        poses = bag.read_ego_poses("/odom")
    assert len(poses) == 31
    assert poses[-1].position[0] == pytest.approx(12.0)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_split_bag_without_its_metadata_is_read_in_recording_order(tmp_path, compressed):
    """A recorder killed while writing the 12th file of a split bag: no metadata.yaml, the
    last file cut. Its files are read as rosbag2 numbered them (drive_2 before drive_10;
    by name drive_10 and drive_11 came before drive_2, and time jumped 10 s back). With
    rosbag2's file compression the finished files are NAME_k.mcap.zstd and the one being
    written plain; they were ignored (only the cut file was read)."""
    f = MessageFactory()
    bag_dir = tmp_path / "drive"
    bag_dir.mkdir()
    for i in range(12):
        with BagWriter(tmp_path / f"part{i}", store=f.store) as part:
            for k in range(10 * i, 10 * i + 10):
                t = 100.0 + 0.1 * k
                pose = StampedPose(t, (0.4 * k, 0.0, 0.0), yaw_quaternion(0.0))
                part.write("/odom", t, f.odometry(pose))
        data = (tmp_path / f"part{i}" / f"part{i}.mcap").read_bytes()
        if compressed and i < 11:
            (bag_dir / f"drive_{i}.mcap.zstd").write_bytes(zstandard.compress(data))
        else:
            (bag_dir / f"drive_{i}.mcap").write_bytes(data)
    last = bag_dir / "drive_11.mcap"
    last.write_bytes(last.read_bytes()[: last.stat().st_size * 2 // 3])
    with Bag(bag_dir) as bag:
        stamps = [t for _, t, _ in bag.messages(["/odom"])]
        assert "no metadata.yaml" in bag.truncation
    assert stamps == sorted(stamps)
    assert 110 <= len(stamps) < 120 and stamps[0] == pytest.approx(100.0)
    if compressed:  # a file compressed alone is read as a bag too
        with Bag(bag_dir / "drive_3.mcap.zstd") as bag:
            stamps = [t for _, t, _ in bag.messages(["/odom"])]
        assert stamps == pytest.approx([103.0 + 0.1 * k for k in range(10)])


def test_an_mcap_read_front_to_back_gives_its_messages_in_time_order(tmp_path):
    """make-sample-bag's first MCAP chunk holds the drive's odometry to its end and its
    first images; the next chunks start seconds earlier than that chunk ends. Read front to
    back (the file handed over alone, without its metadata.yaml, or cut or damaged), the
    messages came in file order: 8 s of odometry, then the images from 0 s again, and the
    planning ticks had run past them (inspect-bag of the sample's .mcap: 1 of 65 ticks with
    a complete frame set, 65 from the folder). Now they come as the indexed reader gives
    them, in log-time order, and every tick is the folder's."""
    from mcap.reader import make_reader

    from alpamayo_ros.bag.sample_drive import write_sample_bag

    bag = tmp_path / "bag"
    write_sample_bag(bag, seed=2, duration=4.0)
    mcap = next(bag.glob("*.mcap"))
    with mcap.open("rb") as handle:
        chunks = make_reader(handle).get_summary().chunk_indexes
    assert len(chunks) >= 2 and chunks[0].message_end_time > chunks[1].message_start_time
    with Bag(bag) as reader:
        topics = list(reader.topics)
        indexed = [(topic, t) for topic, t, _ in reader.messages(topics)]
        assert reader.truncation == ""
    with Bag(mcap) as reader:
        streamed = [(topic, t) for topic, t, _ in reader.messages(topics)]
        assert "without its bag folder's metadata.yaml" in reader.truncation
    times = [t for _, t in streamed]
    assert times == sorted(times) and sorted(streamed) == sorted(indexed)
    rig = CameraRig.released_default()
    whole = inspect_logged_drive(bag, rig, progress=False).summary()
    alone = inspect_logged_drive(mcap, rig, progress=False).summary()
    assert whole["ticks_with_inputs"] == whole["ticks"] > 10
    for key in ("ticks", "ticks_with_inputs", "ticks_with_logged_future"):
        assert alone[key] == whole[key], key


def test_the_time_order_holds_back_at_most_its_byte_budget(tmp_path):
    """A log time damaged far into the past in the last chunk would hold every message
    before it for the time order: past max_held_bytes the earliest held goes out anyway.
    With a budget of 0 bytes nothing is held: file order, every message once."""
    from rosbags.typesys import Stores, get_typestore

    from alpamayo_ros.bag.mcap_stream import StreamedMcap
    from alpamayo_ros.bag.sample_drive import write_sample_bag

    bag = tmp_path / "bag"
    write_sample_bag(bag, seed=2, duration=4.0)
    stream = StreamedMcap([next(bag.glob("*.mcap"))], get_typestore(Stores.ROS2_JAZZY))
    topics = list(stream.summary.topics)
    ordered = [(topic, t) for topic, t, _ in stream.messages(topics)]
    stream.max_held_bytes = 0
    unheld = [(topic, t) for topic, t, _ in stream.messages(topics)]
    assert sorted(unheld) == sorted(ordered) and len(unheld) == stream.summary.messages
    assert [t for _, t in unheld] != sorted(t for _, t in unheld)  # odometry to the end first


def test_sqlite3_files_without_their_metadata_are_read_alone(tmp_path):
    """A sqlite3 recorder (Humble's default) killed mid-drive leaves NAME_k.db3 and no
    metadata.yaml; the files hold their topics and definitions, so they are read, noted.
    Before, 'not a ROS 2 bag'."""
    f = MessageFactory()
    bag_dir = tmp_path / "drive"
    bag_dir.mkdir()
    for i in range(2):
        with BagWriter(tmp_path / f"part{i}", store=f.store, storage="sqlite3") as part:
            for k in range(10 * i, 10 * i + 10):
                t = 100.0 + 0.1 * k
                pose = StampedPose(t, (0.4 * k, 0.0, 0.0), yaw_quaternion(0.0))
                part.write("/odom", t, f.odometry(pose))
        (tmp_path / f"part{i}" / f"part{i}.db3").rename(bag_dir / f"drive_{i}.db3")
    with Bag(bag_dir) as bag:
        poses = bag.read_ego_poses("/odom")
        note = bag.truncation
    assert [p.stamp for p in poses] == pytest.approx([100.0 + 0.1 * k for k in range(20)])
    assert note == (
        "no metadata.yaml (a recorder stopped without closing?): its 2 sqlite3 file(s) read "
        "alone: 20 messages over 1.9 s"
    )
    (bag_dir / "drive_0.db3").unlink()
    (bag_dir / "drive_1.db3").unlink()
    with pytest.raises(BagError, match=r"is not a ROS 2 bag: no metadata\.yaml"):
        Bag(bag_dir)


def _damage_metadata(path: Path, how: str) -> None:
    meta = path / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    info = doc["rosbag2_bagfile_information"]
    if how == "not yaml":
        meta.write_text("rosbag2_bagfile_information: [\n")
        return
    if how == "topic name":
        info["topics_with_message_count"][0]["topic_metadata"]["name"] = []
    elif how == "missing file":
        info["relative_file_paths"] = ["gone_0.mcap"]
    elif how == "file path":
        info["relative_file_paths"] = [None]
    elif how == "newer rosbag2":
        info["version"] = 99
    elif how == "compression mode":
        info["compression_mode"] = 5
    meta.write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize(
    "how",
    ["not yaml", "topic name", "missing file", "file path", "newer rosbag2", "compression mode"],
)
def test_a_bag_with_an_unusable_metadata_yaml_is_read_from_its_files(tmp_path, storage, how):
    """The data files name their own topics (MCAP channels and schemas, sqlite3 tables), so
    a damaged metadata.yaml costs nothing but a note. Before: refused ('its metadata.yaml is
    unusable'), or a TypeError traceback for a topic name that is not a string."""
    write_small_drive(tmp_path / "bag", storage)
    with Bag(tmp_path / "bag") as bag:
        whole = [(topic, t) for topic, t, _ in bag.messages(list(bag.topics))]
    _damage_metadata(tmp_path / "bag", how)
    with Bag(tmp_path / "bag") as bag:
        got = [(topic, t, m) for topic, t, m in bag.messages(list(bag.topics))]
        note = bag.truncation
    assert [(topic, t) for topic, t, _ in got] == whole
    assert not any(isinstance(m, BadMessage) for *_, m in got)
    assert "metadata.yaml" in note and "\n" not in note


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_damaged_message_definition_is_read_with_the_standard_one(tmp_path, storage):
    """One byte of Odometry's definition text damaged in the data file: rosbags checks the
    text against the type's hash and refused the whole bag (MCAP: 'cannot read the bag:
    Message type ... hash mismatch'); an sqlite3 one was read from its pages, noted as
    'SQLite refuses it'. Now the messages are read with the standard definition, noted
    with the type's name."""
    write_small_drive(tmp_path / "bag", storage)
    with Bag(tmp_path / "bag") as bag:
        whole = [(topic, t) for topic, t, _ in bag.messages(list(bag.topics))]
    data = next(p for p in (tmp_path / "bag").iterdir() if p.suffix in (".mcap", ".db3"))
    text = data.read_bytes()
    assert b"string child_frame_id" in text
    data.write_bytes(text.replace(b"string child_frame_id", b"string child_frame_iX"))
    with Bag(tmp_path / "bag") as bag:
        got = [(topic, t, m) for topic, t, m in bag.messages(list(bag.topics))]
        note = bag.truncation
    assert [(topic, t) for topic, t, _ in got] == whole
    assert not any(isinstance(m, BadMessage) for *_, m in got)
    assert note.startswith(
        "the definition of nav_msgs/msg/Odometry does not match its type hash (damaged?)"
    ), note


def test_missing_topic_lists_what_the_bag_has(tmp_path):
    write_small_drive(tmp_path / "bag")
    with Bag(tmp_path / "bag") as bag, pytest.raises(BagError, match=r"/odom \[nav_msgs"):
        bag.require(["/camera/front/image_raw/compressed"])


def test_images_decode_to_rgb_from_compressed_and_raw(tmp_path):
    rig = write_small_drive(tmp_path / "bag")
    with Bag(tmp_path / "bag") as bag:
        seen = {}
        for topic, _, msg in bag.messages(list(rig.topics)):
            enc = rig.by_topic()[topic][0].encoding
            seen[topic] = decode_image(msg, enc, topic)
    for img in seen.values():
        assert img.shape == (48, 64, 3)
        assert img[10, 5, 0] > 200 and img[10, 5, 2] < 50  # red stays red (RGB order)
        assert img[10, 50].max() < 50


@pytest.mark.parametrize("defer", [False, True])
@pytest.mark.parametrize(("h", "w"), [(0, 64), (48, 0), (1, 1), (8, 64)])
def test_an_image_too_small_to_be_a_frame_is_a_bad_message(h, w, defer):
    """An empty or tiny image (a driver's placeholder, a broken header) would otherwise
    reach the model and fail every plan its frame set joins; it is counted and skipped."""
    from alpamayo_ros.messages.images import intake_image

    f = MessageFactory()
    raw = f.raw_image(5.0, "cam", np.zeros((48, 64, 3), np.uint8))
    raw.height, raw.width, raw.step = h, w, 3 * w
    with pytest.raises(BadMessage, match=rf"/cam at 5\.000 s: a {w}x{h} image: camera images"):
        intake_image(raw, "raw", "/cam", defer)
    if h and w:
        jpeg = f.compressed_image(5.0, "cam", np.zeros((h, w, 3), np.uint8))
        with pytest.raises(BadMessage, match=rf"a {w}x{h} image"):
            intake_image(jpeg, "compressed", "/cam", defer)
    jpeg = f.compressed_image(5.0, "cam", np.zeros((16, 16, 3), np.uint8))
    assert intake_image(jpeg, "compressed", "/cam", defer).shape == (16, 16, 3)


def test_crop_takes_the_given_fractions():
    img = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    cam = CameraInput("tele", "/front", crop=(0.25, 0.25, 0.75, 0.75))
    assert cam.crop_image(img).shape == (50, 100, 3)


def test_corrupt_image_and_nan_pose_are_counted_not_fatal(tmp_path):
    rig = write_small_drive(tmp_path / "bag", corrupt_image_at=20, nan_pose_at=5)
    skipped = SkipCounts()
    with Bag(tmp_path / "bag") as bag:
        poses = bag.read_ego_poses("/odom", skipped=skipped)
    assert len(poses) == 30 and skipped.as_dict() == {"bad_pose": 1}
    report = inspect_logged_drive(tmp_path / "bag", rig, progress=False)
    assert report.skipped == {"bad_image": 1, "bad_pose": 1}
    # Ticks whose frame set needs the corrupt frame report cam_a as missing a frame.
    assert any("cam_a" in s.frames for s in report.steps)


def test_undecodable_image_error_names_topic_and_stamp():
    f = MessageFactory()
    msg = f.compressed_image(5.0, "x", np.zeros((8, 8, 3), np.uint8))
    msg.data = np.frombuffer(b"garbage", np.uint8)
    with pytest.raises(BadMessage, match=r"/front at 5\.000 s: undecodable"):
        decode_image(msg, "compressed", "/front")


def test_logged_drive_of_a_straight_constant_speed_drive(tmp_path):
    rig = write_small_drive(tmp_path / "bag")
    report = inspect_logged_drive(tmp_path / "bag", rig, progress=False)
    fitted = [s for s in report.steps if s.fit_error_max is not None]
    assert fitted, [s.future for s in report.steps]
    for s in fitted:
        assert s.speed == pytest.approx(4.0, abs=1e-3)  # official v0: ridge bias 6e-5
        assert s.fit_error_max < 0.01
        assert s.meta_actions == ("keep_speed", "go_straight")


def test_a_rig_image_size_that_is_not_the_bags_is_noted_per_camera(tmp_path):
    """The small drive's frames are 64x48: cam_a's image_size says so (no note), cam_b's
    says 1920x1080 (a note beside its own)."""
    cams = write_small_drive(tmp_path / "bag").cameras
    rig = CameraRig((
        replace(cams[0], image_size=(64, 48)),
        replace(cams[1], image_size=(1920, 1080), note="raw camera"),
    ))  # fmt: skip
    notes = inspect_logged_drive(tmp_path / "bag", rig, progress=False).camera_notes
    assert notes == {
        "cam_b": "raw camera; the rig's image_size 1920x1080 is not the 64x48 of the bag's "
        "frames (a fast engine warms up on the rig's)"
    }


def test_real_recording_inputs_and_logged_future(pandaset_bag):
    rig = CameraRig.from_dict(yaml.safe_load((REPO / "config/pandaset_cameras.yaml").read_text()))
    report = inspect_logged_drive(pandaset_bag, rig, progress=False)
    summary = report.summary()
    assert summary["ticks_with_inputs"] >= 60
    assert summary["ticks_with_logged_future"] >= 40
    assert summary["fit_error_max_m"] < 0.05  # the unicycle model represents a real drive
    assert summary["skipped"] == {}
    # A pull-away from near standstill: the first plans accelerate, straight ahead.
    first = next(s for s in report.steps if s.meta_actions)
    assert first.meta_actions == ("accelerate", "go_straight")


def test_the_logged_future_is_scored_up_to_an_odometry_gap():
    from alpamayo_ros.bag.playback import LoggedDrive
    from alpamayo_ros.core.ego_history import EgoHistorySpec, EgoPoseBuffer, StampedPose

    buf = EgoPoseBuffer(EgoHistorySpec(capacity=1000))
    for k in range(200):  # 10 s at 20 Hz, no poses between 5.0 s and 6.0 s
        t = 0.05 * k
        if not 5.0 < t < 6.0:
            buf.add(StampedPose(t, (4.0 * t, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    drive = LoggedDrive(buf, [(5.0, 1.0)])
    xy = drive.future_xy(3.0, 64, 0.1)
    assert xy is not None and len(xy) == 20  # 1 s and 2 s scored, not 3 s
    np.testing.assert_allclose(xy[-1], [8.0, 0.0], atol=1e-9)
    assert len(drive.future_xy(6.5, 64, 0.1)) == 34  # after the gap: to the log's end


def record_headers(data: bytes) -> list[int]:
    """Byte offsets of every record header (opcode, u64 length) of an uncompressed MCAP
    file, the records inside chunks included, up to the footer."""
    import struct

    heads, at = [], 8  # after the magic
    while at < len(data) - 9:
        opcode, (length,) = data[at], struct.unpack_from("<Q", data, at + 1)
        heads.append(at)
        if opcode == 0x06:  # a chunk: times, size, crc, compression, then its records
            inner = at + 9 + 8 + 8 + 8 + 4
            (name,) = struct.unpack_from("<I", data, inner)
            inner += 4 + name
            (size,) = struct.unpack_from("<Q", data, inner)
            inner, end = inner + 8, inner + 8 + size
            while inner < end:
                heads.append(inner)
                inner += 9 + struct.unpack_from("<Q", data, inner + 1)[0]
        if opcode == 0x02:  # the footer
            break
        at += 9 + length
    return heads


def test_a_misread_message_time_ends_its_chunk_and_never_sets_the_bags_span(tmp_path):
    """A record misread from damaged chunk data can carry any log time: one 154 years
    ahead made inspect-bag plan 48 billion ticks (a 363 GiB allocation, a traceback). A
    message outside its chunk's time range now ends that chunk as a damaged record does,
    and a pass of over MAX_TICKS ticks is refused naming the span."""
    import struct

    from rosbags.typesys import Stores, get_typestore

    from alpamayo_ros.bag.mcap_stream import StreamedMcap
    from alpamayo_ros.bag.playback import MAX_TICKS, tick_times
    from alpamayo_ros.bag.sample_drive import write_sample_bag

    bag = tmp_path / "bag"
    write_sample_bag(bag, seed=4, duration=4.0)
    mcap = next(bag.glob("*.mcap"))
    store = get_typestore(Stores.ROS2_JAZZY)
    intact = StreamedMcap([mcap], store).summary
    data = bytearray(mcap.read_bytes())
    in_chunks = [at for at in record_headers(bytes(data)) if data[at] == 0x05]
    at = in_chunks[len(in_chunks) // 2]  # a message record: channel u16, sequence u32, log time
    data[at + 9 + 2 + 4 : at + 9 + 2 + 4 + 8] = struct.pack("<Q", 6_569_614_778 * 10**9)
    mcap.write_bytes(bytes(data))
    damaged = StreamedMcap([mcap], store)
    assert (damaged.summary.start_ns, damaged.summary.end_ns) == (
        intact.start_ns,
        intact.end_ns,
    )
    assert 0 < damaged.summary.messages < intact.messages
    assert "outside the chunk's time range" in damaged.summary.damaged[0]
    times = [t for _, t, _ in damaged.messages(list(intact.topics))]
    assert max(times) <= intact.end_ns * 1e-9 and times == sorted(times)
    with pytest.raises(ValueError, match=r"the bag spans 4869614778 s .*damaged timestamp"):
        tick_times(1.7e9, 6_569_614_778.0, 10.0)
    assert len(tick_times(0.0, (MAX_TICKS - 1) / 10.0, 10.0)) == MAX_TICKS


def test_bytes_repeated_inside_a_chunk_lose_that_chunk_only(tmp_path):
    """8 kB inside the first MCAP chunk written twice: the chunk record's length then ends
    inside its own data, the next top-level record is garbage, and reading front to back
    stopped there, losing the intact chunks after it. Now it goes on at the next chunk
    record whose header adds up, noted."""
    from mcap.reader import make_reader

    from alpamayo_ros.bag.sample_drive import write_sample_bag

    bag = tmp_path / "bag"
    write_sample_bag(bag, seed=4, duration=4.0)
    mcap = next(bag.glob("*.mcap"))
    with mcap.open("rb") as handle:
        summary = make_reader(handle).get_summary()
    first, second = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)[:2]
    with Bag(bag) as reader:
        topics = list(reader.topics)
        whole = [(topic, t) for topic, t, _ in reader.messages(topics)]
    stored = {summary.channels[c].topic for c in second.message_index_offsets}
    in_second = [  # the second chunk's messages (its topics after its first time: a message
        (topic, t) for topic, t in whole  # of the same time may close the first chunk)
        if topic in stored and second.message_start_time + 1e6 < t * 1e9
    ]  # fmt: skip
    assert len(in_second) > 50
    data = mcap.read_bytes()
    at = first.chunk_start_offset + 12_000
    mcap.write_bytes(data[:at] + data[at : at + 8_000] + data[at:])
    (bag / "metadata.yaml").unlink()  # read front to back from the start
    with Bag(bag) as reader:
        got = [(topic, t) for topic, t, _ in reader.messages(topics)]
        note = reader.truncation
    assert "read on at the next chunk" in note, note
    assert len(got) < len(whole) and set(in_second) <= set(got)
    assert [t for _, t in got] == sorted(t for _, t in got)


def test_an_mcap_whose_summary_is_damaged_is_read_record_by_record(tmp_path):
    """The first 3 kB of an MCAP's summary section written twice (a copy gone wrong): every
    chunk is intact, but rosbags follows the footer's summary offset into the copy and
    refused the bag ('cannot read the bag: Truncated record at offset 6'); now the records
    are read front to back, all of them, noted."""
    from alpamayo_ros.bag.sample_drive import write_sample_bag

    bag = tmp_path / "bag"
    write_sample_bag(bag, seed=4, duration=4.0)
    mcap = next(bag.glob("*.mcap"))
    with Bag(bag) as reader:
        topics = list(reader.topics)
        whole = [(topic, t) for topic, t, _ in reader.messages(topics)]
    start = _summary_start(mcap)
    data = mcap.read_bytes()
    assert data[start] == 0x03  # the summary opens with the first schema record
    mcap.write_bytes(data[:start] + data[start : start + 3000] + data[start:])
    with Bag(bag) as reader:
        got = [(topic, t) for topic, t, _ in reader.messages(topics)]
        note = reader.truncation
    assert got == whole
    assert note.startswith("damaged data (AnyReaderError: Truncated record") and (
        "read again record by record" in note
    ), note


def _summary_start(mcap: Path) -> int:
    """Byte where an MCAP's summary section starts (its footer's summary_start)."""
    import struct

    data = mcap.read_bytes()
    footer = data[-8 - 1 - 8 - 20 :]  # opcode, length, summary_start, summary_offset_start, crc
    return struct.unpack("<Q", footer[9:17])[0]


def test_damaged_record_headers_are_read_noted_or_refused_in_one_line(tmp_path):
    """60 copies of a drive, each with one record header's length or opcode overwritten:
    every one is read (whole, or with a note saying what was lost) or refused with a
    BagError, never another exception."""
    import random
    import shutil
    import struct

    from alpamayo_ros.bag.playback import read_logged_drive
    from alpamayo_ros.bag.sample_drive import write_sample_bag
    from alpamayo_ros.core.ego_history import EgoHistorySpec

    base = tmp_path / "base"
    write_sample_bag(base, seed=4, duration=4.0)
    mcap = next(base.glob("*.mcap"))
    data = mcap.read_bytes()
    heads = record_headers(data)
    assert len(heads) > 100
    rng = random.Random(13)
    outcomes: Counter[str] = Counter()
    bag = tmp_path / "bag"
    shutil.copytree(base, bag)
    for _ in range(60):
        damaged = bytearray(data)
        at = rng.choice(heads)
        if rng.random() < 0.5:
            lengths = (0, 1, 2**63, 2**64 - 1, rng.randrange(1, 10**7))
            damaged[at + 1 : at + 9] = struct.pack("<Q", rng.choice(lengths))
        else:
            damaged[at] = rng.randrange(256)
        (bag / mcap.name).write_bytes(bytes(damaged))
        try:
            with Bag(bag) as reader:
                read_logged_drive(reader, "/odom", EgoHistorySpec(), SkipCounts())
                list(reader.messages(list(reader.topics)))
                outcomes["noted" if reader.truncation else "read"] += 1
        except BagError:
            outcomes["refused"] += 1
    assert outcomes["noted"] > 0 and sum(outcomes.values()) == 60, outcomes
