"""Reading ROS 2 bags (sqlite3 or MCAP; Humble and Jazzy definitions) without ROS.

Messages are read with rosbags' AnyReader; definitions come from the bag when it carries
them and from the Jazzy typestore otherwise. A truncated MCAP (a recorder killed
mid-drive: no summary, no end magic, often no metadata.yaml) is read up to its last
complete chunk instead (bag.mcap_stream), with a warning saying what was recovered
(`Bag.truncation`); so is one whose damaged records make rosbags fail part-way through
(read again with that reader, which skips the rest of a damaged chunk). A .db3 that SQLite
refuses (cut short: "database disk image is malformed") is read from its pages instead
(bag.sqlite_salvage), said the same way. Converters here
turn messages into core values and raise BadMessage (counted by callers, never fatal) for
malformed ones.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.typesys import Stores, get_typestore

from alpamayo_ros.bag.mcap_stream import StreamedMcap, open_mcap
from alpamayo_ros.bag.sqlite_salvage import SalvagedDb3, SalvageError, committed_wal_pages
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.messages.inputs import (
    BadMessage,
    pose_from_odometry,
    poses_from_tf,
    stamp_seconds,
)

__all__ = [
    "BadMessage",
    "Bag",
    "BagError",
    "SkipCounts",
    "pose_from_odometry",
    "poses_from_tf",
    "stamp_seconds",
]

log = logging.getLogger(__name__)


class BagError(RuntimeError):
    """The bag cannot serve the request (missing path, missing topics, ...)."""


@dataclass
class SkipCounts:
    """Inputs counted and skipped, by reason (reported in summaries)."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        if self.counts[reason] <= 3:
            log.warning("skipped (%s): %s", reason, detail)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def unreadable_bag(path: Path, err: Exception) -> str:
    """One line saying what is wrong with a bag that rosbags cannot open."""
    text = str(err)
    if "end magic is invalid" in text:
        what = "MCAP file truncated (a recorder stopped without closing it?)"
    elif "magic is invalid" in text:
        what = "a data file is not MCAP (nor a complete one)"
    elif "metadata" in text.lower():
        what = f"its metadata.yaml is unusable ({text})"
    else:
        what = text
    return f"{path}: cannot read the bag: {what}"


# What rosbags says of a metadata.yaml it cannot use (damaged, from a newer rosbag2, naming
# files that are not there): the bag's data files are then read alone. (A bag whose
# metadata says its messages are not CDR is refused as before.)
METADATA_ERRORS = ("metadata", "YAML", "Some database files are missing", "Compression format",
                   "Storage plugin", "Rosbag2 version")  # fmt: skip
MCAP_MAGIC = b"\x89MCAP0\r\n"
# What rosbags says of an MCAP whose index or summary it cannot follow (a damaged record
# header, a cut or shifted summary) or whose messages need the order it takes from them:
# the records themselves may all be there, so the file is read record by record.
MCAP_STRUCTURE_ERRORS = ("Truncated record", "Chunk size mismatch", "Chunk checksum mismatch",
                         "Unexpected record", "Invalid MCAP footer", "Invalid MCAP summary",
                         "Invalid message record length", "Invalid chunk record length",
                         "Compressed data exceeds", "not in timestamp order")  # fmt: skip
# What ego motion is read from (read_ego_poses).
ODOMETRY_TYPES = ("nav_msgs/msg/Odometry", "tf2_msgs/msg/TFMessage")


def split_order(path: Path) -> tuple[Any, ...]:
    """Sort key of a bag's data files in recording order: rosbag2 numbers the files of a
    split bag NAME_0.mcap, NAME_1.mcap, ..., NAME_10.mcap (by name, _10 would come before _2),
    so runs of digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def mcap_files(path: Path) -> list[Path]:
    """The MCAP files of a folder in recording order (or the file itself), those that start
    as MCAP: NAME_k.mcap, and NAME_k.mcap.zstd (a split that rosbag2 compressed whole when
    it moved on to the next one)."""
    if path.is_dir():
        files = sorted([*path.glob("*.mcap"), *path.glob("*.mcap.zstd")], key=split_order)
    else:
        files = [path]
    out = []
    for f in files:
        try:
            with open_mcap(f) as handle:
                starts = handle.read(len(MCAP_MAGIC)) == MCAP_MAGIC
        except zstandard.ZstdError:  # not zstd data
            starts = False
        if starts:
            out.append(f)
    return out


def sqlite_reason(err: Exception) -> str:
    """What SQLite said of a file rosbags could not open, without rosbags' wording."""
    text = str(err)
    return text.rsplit(": ", 1)[-1] if "database" in text else text


class Bag:
    """An open bag: topic listing, time range, and typed message iteration.

    truncation: "" for a complete bag; else what was recovered from a truncated or damaged
    MCAP (read up to its last complete chunk, past its damaged records), from sqlite3 files
    without their metadata.yaml or from the pages of ones SQLite refuses, and why it was
    read that way. It may be set part-way
    through a pass over the messages (when rosbags meets a damaged record): read it after the
    pass.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.truncation = ""
        self._stream: StreamedMcap | SalvagedDb3 | None = None
        self._why_stream = ""
        if not self.path.exists():
            raise BagError(f"bag not found: {self.path}")
        if self.path.is_file() and self.path.name.endswith((".mcap", ".mcap.zstd")):
            self._why_stream = "an MCAP file without its bag folder's metadata.yaml"
            return
        sources = [self.path]
        self._without_metadata = ""  # sqlite3 files read without metadata.yaml: why
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            why = "no metadata.yaml (a recorder stopped without closing?)"
            if mcap_files(self.path):
                self._why_stream = why
                return
            # rosbags reads sqlite3 files alone: each holds its topics and definitions
            sources = sorted(self.path.glob("*.db3"), key=split_order)
            if not sources:
                raise BagError(
                    f"{self.path} is not a ROS 2 bag: no metadata.yaml in it (a bag folder "
                    "holds metadata.yaml beside its .mcap or .db3 files)"
                )
            self._without_metadata = f"{why}: its {len(sources)} sqlite3 file(s) read alone"
        try:
            self._reader = AnyReader(sources, default_typestore=get_typestore(Stores.ROS2_JAZZY))
        except AnyReaderError as err:  # what rosbags reads here is metadata.yaml
            if not self._metadata_fallback(err):
                raise BagError(unreadable_bag(self.path, err)) from err

    def _metadata_fallback(self, err: Exception) -> bool:
        """A bag folder whose metadata.yaml rosbags refuses (damaged, or naming files that
        are not there): set up to read its data files alone, as without metadata.yaml (MCAP
        files name their channels and schemas, sqlite3 files their topics and definitions).
        False when there is no metadata to blame or no data file to read."""
        if not self.path.is_dir() or self._without_metadata:
            return False
        why = f"its metadata.yaml is unusable ({' '.join(str(err).split())[:200]})"
        if mcap_files(self.path):
            self._why_stream = why
            return True
        sources = sorted(self.path.glob("*.db3"), key=split_order)
        if not sources:
            return False
        self._without_metadata = f"{why}: its {len(sources)} sqlite3 file(s) read alone"
        try:
            self._reader = AnyReader(sources, default_typestore=get_typestore(Stores.ROS2_JAZZY))
        except AnyReaderError as again:
            raise BagError(unreadable_bag(self.path, again)) from again
        return True

    def __enter__(self) -> Bag:
        if self._why_stream:
            self._open_stream(self._why_stream)
            return self
        logged = sum(committed_wal_pages(f) for f in self._db3_files())
        if logged:  # rosbags opens sqlite3 files immutable: it would not see these pages
            why = (
                f"{logged} committed pages of its sqlite3 files only in their write-ahead "
                "logs (rosbag2's resilient preset"
            )
            if self._without_metadata:
                why = f"{self._without_metadata}; {why})"
            else:
                why = f"{why}; a recorder stopped without closing?)"
            self._salvage(why)
            return self
        try:
            self._reader.open()
        except AnyReaderError as err:
            if "end magic is invalid" in str(err) and mcap_files(self.path):
                why = "MCAP file truncated (a recorder stopped without closing it?)"
                self._open_stream(why, err)
                return self
            if any(m in str(err) for m in METADATA_ERRORS) and self._metadata_fallback(err):
                return self.__enter__()  # now reading the data files alone
            if "hash mismatch" in str(err):  # a definition whose text was damaged: rosbags
                # checks it against the type's hash; the stream reader and the page reader
                # read the types they know with their own definitions
                named = re.search(r"type '([^']+)'", str(err))
                what = named.group(1) if named else "a message type"
                why = f"the definition of {what} does not match its type hash (damaged?)"
                if mcap_files(self.path):
                    self._open_stream(why, err, how="read record by record")
                    return self
            else:
                why = f"SQLite refuses it ({sqlite_reason(err)})"
            if self._db3_files():
                self._salvage(why, err)
                return self
            if any(m in str(err) for m in MCAP_STRUCTURE_ERRORS) and mcap_files(self.path):
                self._damaged(err)
                return self
            raise BagError(unreadable_bag(self.path, err)) from err
        except Exception as err:  # a damaged index or summary: rosbags raises many kinds
            self._damaged(err)
            return self
        odd = [c for c in self._reader.connections
               if not isinstance(c.topic, str) or not isinstance(c.msgtype, str)]  # fmt: skip
        if odd:  # a damaged metadata.yaml: the files name their own topics
            self._reader.close()
            why = (
                f"its metadata.yaml is unusable (a topic {odd[0].topic!r} of type "
                f"{odd[0].msgtype!r})"
            )
            if mcap_files(self.path):
                self._open_stream(why, how="read from its MCAP files alone")
            elif self._db3_files():
                self._salvage(why)
            else:
                raise BagError(f"{self.path}: cannot read the bag: {why}")
            return self
        if self._without_metadata:
            count = sum(c.msgcount for c in self._reader.connections)
            seconds = (self._reader.end_time - self._reader.start_time) * 1e-9
            self.truncation = f"{self._without_metadata}: {count} messages over {seconds:.1f} s"
            log.warning("%s: %s", self.path, self.truncation)
        return self

    def _open_stream(
        self,
        why: str,
        cause: Exception | None = None,
        how: str = "read up to the last complete chunk",
    ) -> None:
        files = mcap_files(self.path)
        if not files:
            raise BagError(f"{self.path}: cannot read the bag: not an MCAP file")
        self._stream = StreamedMcap(files, get_typestore(Stores.ROS2_JAZZY))
        summary = self._stream.summary
        if not summary.messages:
            raise BagError(
                f"{self.path}: {why}, and no complete message could be recovered"
            ) from cause
        seconds = (summary.end_ns - summary.start_ns) * 1e-9
        where = ""
        if summary.stopped is not None:
            file, _, size, _ = summary.stopped
            where = f"; {file.name} ({size} bytes) ends inside a record, which was dropped"
        where += "".join(f"; {line}" for line in summary.damaged)
        self.truncation = (
            f"{why}: {how}: {summary.messages} messages over {seconds:.1f} s recovered{where}"
        )
        log.warning("%s: %s", self.path, self.truncation)

    def _db3_files(self) -> list[Path]:
        """The bag's sqlite3 files, in rosbag2's split order."""
        if self.path.is_file():
            return [self.path] if self.path.suffix == ".db3" else []
        return sorted(self.path.glob("*.db3"), key=split_order)

    def _salvage(self, why: str, cause: Exception | None = None) -> None:
        """Read the bag's .db3 files from their pages (bag.sqlite_salvage); BagError when
        no message is left in them."""
        try:
            salvaged = SalvagedDb3(self._db3_files(), get_typestore(Stores.ROS2_JAZZY))
        except SalvageError as err:
            raise BagError(f"{self.path}: cannot read the bag: {err}") from cause
        summary = salvaged.summary
        if not summary.messages:
            raise BagError(
                f"{self.path}: {why}, and no complete message could be recovered from its "
                f"{summary.pages} pages"
            ) from cause
        self._stream = salvaged
        seconds = (summary.end_ns - summary.start_ns) * 1e-9
        plural = "s" if summary.lost != 1 else ""
        lost = f"; {summary.lost} message{plural} lost (data past the file's end, or damaged)"
        self.truncation = (
            f"{why}: read from its pages: {summary.messages} messages over {seconds:.1f} s "
            f"recovered{lost if summary.lost else ''}"
        )
        log.warning("%s: %s", self.path, self.truncation)

    def _damaged(self, err: Exception) -> None:
        """rosbags failed part-way through the bag (a damaged record): read it from now on
        with the streaming reader, which skips what is damaged, or an sqlite3 bag from its
        pages (BagError where the bag has neither, or nothing can be recovered)."""
        said = f": {err}" if str(err) else ""  # MemoryError: a length beyond any file
        what = f"damaged data ({type(err).__name__}{said})"
        if not mcap_files(self.path):
            if self._db3_files():
                self._salvage(what, err)
                return
            raise BagError(f"{self.path}: cannot read the bag: {what}") from err
        self._open_stream(what, err, how="read again record by record")

    def __exit__(self, *exc: object) -> None:
        if self._stream is None:
            self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type, e.g. {'/odom': 'nav_msgs/msg/Odometry'}."""
        if self._stream is not None:
            return dict(self._stream.summary.topics)
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def start_time(self) -> float:
        if self._stream is not None:
            return self._stream.summary.start_ns * 1e-9
        return self._reader.start_time * 1e-9

    @property
    def end_time(self) -> float:
        if self._stream is not None:
            return self._stream.summary.end_ns * 1e-9
        return self._reader.end_time * 1e-9

    def require(self, topics: Sequence[str]) -> None:
        """Raise BagError listing the bag's topics when any of `topics` is absent."""
        missing = [t for t in topics if t not in self.topics]
        if missing:
            have = "\n  ".join(f"{t} [{ty}]" for t, ty in sorted(self.topics.items()))
            raise BagError(f"topics not in {self.path}: {missing}\nthe bag has:\n  {have}")

    def require_inputs(
        self, rig: CameraRig, odometry: str | None = None, others: Sequence[str] = ()
    ) -> None:
        """require() the rig's topics, `odometry` and `others`; then BagError naming the
        camera when a topic holds another message type than its `encoding` says, or the
        odometry topic when it holds neither nav_msgs/Odometry nor tf (each was a traceback
        per message)."""
        self.require([*rig.topics, *([odometry] if odometry else []), *others])
        for cam in rig.cameras:
            problem = cam.type_problem(self.topics[cam.topic], str(self.path))
            if problem is not None:
                raise BagError(problem)
        if odometry and self.topics[odometry] not in ODOMETRY_TYPES:
            raise BagError(
                f"odometry topic {odometry} holds {self.topics[odometry]} in {self.path}; "
                f"ego motion is read from {' or '.join(ODOMETRY_TYPES)}"
            )

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, float, Any]]:
        """(topic, receive time in s, deserialised message) in bag order.

        A message that fails to deserialise is yielded as a BadMessage instance instead.
        """
        if self._stream is not None:
            yield from self._stream.messages(topics)
            return
        conns = [c for c in self._reader.connections if c.topic in set(topics)]
        # rosbags yields in time order, so were this pass to fail, what it yielded is every
        # readable message before `last` and, at `last`, the topics in `at_last`.
        last, at_last = -math.inf, set[str]()
        try:
            for conn, t_ns, raw in self._reader.messages(connections=conns):
                try:
                    msg = self._reader.deserialize(raw, conn.msgtype)
                except Exception as err:  # rosbags raises several kinds for corrupt data
                    msg = BadMessage(
                        f"{conn.topic} at {t_ns * 1e-9:.3f} s: cannot deserialise ({err})"
                    )
                t = t_ns * 1e-9
                if t != last:
                    last, at_last = t, set()
                at_last.add(conn.topic)
                yield conn.topic, t, msg
        except Exception as err:  # a damaged record: rosbags raises many kinds
            self._damaged(err)  # this and later passes go on with the streaming reader
            assert self._stream is not None
            for topic, t, msg in self._stream.messages(topics):
                if t > last or (t == last and topic not in at_last):
                    yield topic, t, msg

    def read_ego_poses(
        self,
        source: str = "/odom",
        parent: str = "odom",
        child: str = "base_link",
        skipped: SkipCounts | None = None,
    ) -> list[StampedPose]:
        """All ego poses of the bag from an Odometry topic, or from /tf when source is a
        TFMessage topic (parent->child). Malformed messages are counted in `skipped`."""
        self.require([source])
        skipped = skipped if skipped is not None else SkipCounts()
        is_tf = self.topics[source] == "tf2_msgs/msg/TFMessage"
        poses: list[StampedPose] = []
        for topic, _, msg in self.messages([source]):
            try:
                if isinstance(msg, BadMessage):
                    raise msg
                if is_tf:
                    poses.extend(poses_from_tf(msg, parent, child, topic))
                else:
                    poses.append(pose_from_odometry(msg, topic))
            except BadMessage as err:
                skipped.add("bad_pose", str(err))
        if not poses:
            raise BagError(f"no usable ego pose on {source} in {self.path}")
        if any(not math.isfinite(p.stamp) for p in poses):
            raise BagError(f"non-finite stamps on {source}")
        return poses
