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


def killed_resilient_recording(sqlite_drive, out, restart_log=False):
    """The drive as rosbag2's resilient preset (SQLite WAL mode) leaves it when its recorder
    is killed: messages before the half-way time checkpointed into the .db3, the rest in
    commits of 20 messages that only the write-ahead log beside it holds. restart_log: the
    log checkpointed once more three quarters of the way, so its newest commits overwrite
    its first frames and the older generation's frames are left after them.
    -> (bag folder, messages' (topic, time s) as SQLite reads them)."""
    work = out.parent / f"{out.name}_work"
    shutil.copytree(sqlite_drive, work)
    db3 = next(work.glob("*.db3"))
    con = sqlite3.connect(db3, isolation_level=None)
    (mid,) = con.execute("SELECT (MIN(timestamp) + MAX(timestamp)) / 2 FROM messages").fetchone()
    later = con.execute("SELECT * FROM messages WHERE timestamp > ? ORDER BY id", (mid,))
    later = later.fetchall()
    con.execute("DELETE FROM messages WHERE timestamp > ?", (mid,))
    con.execute("VACUUM")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    marks = ", ".join("?" * len(later[0]))
    for k in range(0, len(later), 20):
        if restart_log and k == len(later) * 3 // 80 * 20:  # three quarters of the way
            assert con.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0] == 0
        con.execute("BEGIN")
        con.executemany(f"INSERT INTO messages VALUES ({marks})", later[k : k + 20])
        con.execute("COMMIT")
    shutil.copytree(work, out, ignore=shutil.ignore_patterns("*-shm"))  # while it is open
    con.close()
    return out, sqlite_recovers(out)


def sqlite_recovers(bag):
    """(topic, time s) of the messages SQLite itself reads from a copy of the bag's files
    (it applies the write-ahead log's committed frames)."""
    copy = bag.parent / f"{bag.name}_sqlite"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(bag, copy)
    return [(topic, ns * 1e-9) for topic, ns, _ in sqlite_rows(next(copy.glob("*.db3")))]


def bag_messages(bag):
    with Bag(bag) as b:
        got = list(b.messages(list(b.topics)))
        return [(topic, t) for topic, t, _ in got], [m for *_, m in got], b.truncation


@pytest.mark.parametrize("restart_log", [False, True])
def test_a_killed_resilient_recording_is_read_with_its_write_ahead_log(
    sqlite_drive, tmp_path, restart_log
):
    """Before: rosbags opens the .db3 immutable and silently gave its checkpointed part only
    (a real killed recording: 406 of 605 messages)."""
    from rosbags.highlevel import AnyReader

    bag, expected = killed_resilient_recording(sqlite_drive, tmp_path / "bag", restart_log)
    assert (bag / (next(bag.glob("*.db3")).name + "-wal")).stat().st_size > 0
    with AnyReader([bag]) as reader:  # what was read before
        before = sum(1 for _ in reader.messages())
    assert before < len(expected) - 20  # the last commit at least
    got, messages, note = bag_messages(bag)
    assert got == expected
    assert not any(isinstance(m, BadMessage) for m in messages)
    assert "only in their write-ahead logs (rosbag2's resilient preset" in note
    assert f"{len(expected)} messages over" in note


def test_a_cut_or_damaged_write_ahead_log_is_read_as_sqlite_recovers_it(sqlite_drive, tmp_path):
    """Up to the last commit whose frames are whole, with the log's salts and a valid
    running checksum: what SQLite itself recovers from the same files."""
    bag, whole = killed_resilient_recording(sqlite_drive, tmp_path / "bag")
    wal = bag / (next(bag.glob("*.db3")).name + "-wal")
    data = wal.read_bytes()
    counts = set()
    for i, change in enumerate(["cut 0.25", "cut 0.5", "cut 0.83", "flip 0.4", "flip 0.9"]):
        how, where = change.split()
        at = int(len(data) * float(where))
        copy = tmp_path / f"copy{i}"
        shutil.copytree(bag, copy)
        damaged = bytearray(data[:at] if how == "cut" else data)
        if how == "flip":
            damaged[at] ^= 0x5A
        (copy / wal.name).write_bytes(bytes(damaged))
        expected = sqlite_recovers(copy)
        got, _, _ = bag_messages(copy)
        assert got == expected, change
        counts.add(len(got))
    assert len(counts) >= 4 and max(counts) < len(whole)  # each change lost something
