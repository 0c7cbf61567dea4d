"""rosbag2 sqlite3 files that SQLite refuses (cut short, damaged) read from their pages
(bag.sqlite_salvage): the same messages as SQLite gives for the whole file, what is left of
a cut one in time order, and a one-line error (never a traceback) for anything else."""

import shutil
import sqlite3

import numpy as np
import pytest

from alpamayo_ros.bag.reader import Bag, BagError
from alpamayo_ros.bag.sample_drive import write_sample_bag
from alpamayo_ros.bag.sqlite_salvage import SalvagedDb3
from alpamayo_ros.messages.inputs import BadMessage


@pytest.fixture(scope="module")
def sqlite_drive(tmp_path_factory):
    """A 4 s sample drive in sqlite3 storage: JPEG frames of several pages each (overflow
    chains), odometry, tf, camera_info."""
    bag = tmp_path_factory.mktemp("sqlite") / "bag"
    write_sample_bag(bag, seed=2, duration=4.0, storage="sqlite3")
    return bag


def sqlite_rows(db3):
    """(topic, timestamp ns, data) of every message, as SQLite reads them, in time order."""
    with sqlite3.connect(db3) as con:
        return con.execute(
            "SELECT topics.name, messages.timestamp, messages.data FROM messages "
            "JOIN topics ON topics.id = messages.topic_id ORDER BY messages.timestamp, messages.id"
        ).fetchall()


def test_the_pages_give_what_sqlite_gives(sqlite_drive):
    from rosbags.typesys import Stores, get_typestore

    db3 = next(sqlite_drive.glob("*.db3"))
    rows = sqlite_rows(db3)
    assert max(len(data) for _, _, data in rows) > 2 * 4096  # overflow chains in play
    salvaged = SalvagedDb3([db3], get_typestore(Stores.ROS2_JAZZY))
    assert salvaged.summary.messages == len(rows) and salvaged.summary.lost == 0
    with Bag(sqlite_drive) as bag:
        assert salvaged.summary.topics == bag.topics
    got = list(salvaged.messages(list(salvaged.summary.topics)))
    assert [(t, s) for t, s, _ in got] == [(t, ns * 1e-9) for t, ns, _ in rows]
    store = get_typestore(Stores.ROS2_JAZZY)
    for (_, _, msg), (_, _, data) in zip(got, rows, strict=True):
        assert not isinstance(msg, BadMessage)
        assert bytes(store.serialize_cdr(msg, msg.__msgtype__)) == data


@pytest.mark.parametrize("kept", [0.3, 0.6, 0.9])
def test_a_cut_db3_is_read_from_its_pages(sqlite_drive, tmp_path, kept):
    """Before: "database disk image is malformed", nothing read."""
    db3 = next(sqlite_drive.glob("*.db3"))
    rows = sqlite_rows(db3)
    cut = tmp_path / "bag"
    shutil.copytree(sqlite_drive, cut)
    data = db3.read_bytes()
    (cut / db3.name).write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(sqlite3.DatabaseError):
        sqlite_rows(cut / db3.name)
    with Bag(cut) as bag:
        got = list(bag.messages(list(bag.topics)))
        note = bag.truncation
    assert note.startswith("SQLite refuses it (database disk image is malformed): read from its")
    assert f"{len(got)} messages over" in note
    stamps = [t for _, t, _ in got]
    assert stamps == sorted(stamps) and not any(isinstance(m, BadMessage) for *_, m in got)
    # what is recovered is what was recorded: a part of the whole, the earliest part first
    whole = {(topic, ns * 1e-9) for topic, ns, _ in rows}
    assert {(topic, t) for topic, t, _ in got} <= whole
    assert len(rows) * kept * 0.5 < len(got) <= len(rows)
    images = [m for topic, _, m in got if topic.endswith("compressed")]
    assert images and all(bytes(m.data[:2]) == b"\xff\xd8" for m in images)  # JPEG data


def test_the_replay_plans_a_cut_sqlite3_drive(sqlite_drive, tmp_path, capsys):
    import json

    from alpamayo_ros.cli import main

    db3 = next(sqlite_drive.glob("*.db3"))
    cut = tmp_path / "bag"
    shutil.copytree(sqlite_drive, cut)
    (cut / db3.name).write_bytes(db3.read_bytes()[: db3.stat().st_size * 7 // 10])
    out = tmp_path / "out"
    argv = ["replay", str(cut), "--out", str(out), "--samples", "1",
            "--max-reasoning-tokens", "2", "--flow-steps", "1", "--duration", "1.5"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "read from its pages" in summary["bag_truncation"] and summary["model_plans"] > 0
    assert "note: SQLite refuses it" in capsys.readouterr().out


def test_damaged_db3_files_never_give_a_traceback(sqlite_drive, tmp_path):
    """Random bytes overwritten in 12 copies, all but the first also cut: each is read
    (whole, or with a note) or refused in one line naming the bag."""
    db3 = next(sqlite_drive.glob("*.db3"))
    data = db3.read_bytes()
    rng = np.random.default_rng(7)
    outcomes = set()
    for i in range(12):
        damaged = bytearray(data)
        for at in rng.integers(0, len(data), size=8):
            damaged[at : at + 16] = rng.integers(0, 256, size=16, dtype=np.uint8).tobytes()
        copy = tmp_path / f"bag{i}"
        shutil.copytree(sqlite_drive, copy)
        (copy / db3.name).write_bytes(bytes(damaged[: len(data) - i * 997]))
        try:
            with Bag(copy) as bag:
                n = sum(1 for _ in bag.messages(list(bag.topics)))
                outcomes.add("note" if bag.truncation else "whole")
                assert n > 0
        except BagError as err:
            assert str(copy) in str(err) and "\n" not in str(err)
            outcomes.add("refused")
    assert "note" in outcomes  # the cut copies (all but the first) read from their pages


def test_a_file_that_is_no_sqlite_database_is_one_line(sqlite_drive, tmp_path):
    copy = tmp_path / "bag"
    shutil.copytree(sqlite_drive, copy)
    db3 = next(copy.glob("*.db3"))
    db3.write_bytes(b"not a database at all " * 100)
    with pytest.raises(BagError, match=r"cannot read the bag") as err, Bag(copy):
        pass
    assert "\n" not in str(err.value)
