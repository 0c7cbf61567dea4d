"""Reading what is left of a truncated or damaged MCAP file.

A recorder killed mid-drive leaves an MCAP without its summary and end magic, which
indexed readers (rosbags) refuse; a damaged record (a bad disk, a copy cut short and
patched) makes them fail mid-read. The `mcap` library's non-seeking StreamReader reads the
file's records in order up to the first one whose framing is broken, so every complete
chunk before it is recovered; inside a chunk, records are read one by one and a damaged
one ends that chunk only (the records before it are kept, reading goes on with the next
chunk), and a chunk whose checksum does not match its data is noted. Messages are
deserialised with the rosbags typestore, extended with the file's own message definitions
(its ros2msg schemas). Files rosbag2 compressed whole (compression_mode file:
NAME_k.mcap.zstd, one per finished split) are decompressed as they are read.

Messages come out in log-time order, as an indexed reader gives them: MCAP does not order
chunks by time (make-sample-bag writes a drive's odometry before its images, so its first
chunk spans the whole drive), and the planning loop steps through a bag by time. A message
is held back only until no later chunk (known from the first pass) can hold an earlier one.
"""

from __future__ import annotations

import heapq
import logging
import math
import mmap
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import zstandard
from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import StreamReader, get_chunk_data_stream
from rosbags.typesys.msg import get_types_from_msg
from rosbags.typesys.store import Typestore

from alpamayo_ros.messages.inputs import BadMessage

log = logging.getLogger(__name__)

SEPARATOR = "=" * 80 + "\n"
CHUNK_START, CHUNK_END = object(), object()  # _records' markers around a chunk's records
# Most message data held back for the time order: past it the earliest held goes out
# anyway (a damaged log time far in the past would otherwise hold the rest of the bag).
MAX_HELD_BYTES = 512 * 2**20


@dataclass
class StreamSummary:
    """What one pass over the files found: topic -> type, time range (ns), messages read,
    where reading stopped (file, byte, total bytes, why; None when every file ended
    cleanly) and the damaged chunks (one line each: file, byte, what was lost)."""

    topics: dict[str, str]
    start_ns: int
    end_ns: int
    messages: int
    stopped: tuple[Path, int, int, str] | None
    damaged: tuple[str, ...] = ()


def open_mcap(path: Path) -> BinaryIO:
    """A bag data file to read front to back: MCAP as it is, or an MCAP rosbag2 compressed
    whole (NAME_k.mcap.zstd) decompressed as it is read."""
    handle = path.open("rb")
    if path.name.endswith(".zstd"):
        return zstandard.ZstdDecompressor().stream_reader(handle, closefd=True)
    return handle


def ros2msg_types(name: str, text: str) -> dict[str, Any]:
    """The definitions of an MCAP ros2msg schema: the type itself, then each dependency
    after a line of '=' and 'MSG: pkg/Type'."""
    parts = text.split(SEPARATOR)
    types: dict[str, Any] = dict(get_types_from_msg(parts[0], name))
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        dep = head.removeprefix("MSG: ").strip()
        if "/msg/" not in dep:
            pkg, _, short = dep.partition("/")
            dep = f"{pkg}/msg/{short}"
        types.update(get_types_from_msg(body, dep))
    return types


class StreamedMcap:
    """The messages of MCAP files read front to back, stopping at the first incomplete
    record (a truncated file). `summary` comes from one pass at construction."""

    def __init__(self, files: Sequence[Path], store: Typestore) -> None:
        self.files = list(files)
        self.store = store
        self._stopped: tuple[Path, int, int, str] | None = None
        self._damaged: list[str] = []
        # per unit holding messages (a chunk, or a message outside chunks), in file order:
        # the earliest log time (ns) of the units after it
        self._later_start: list[float] = []
        self._channels: dict[Path, dict[int, tuple[str, str]]] = {}
        self.max_held_bytes = MAX_HELD_BYTES
        self.summary = self._scan()

    def _records(self, path: Path) -> Iterator[Any]:
        """The file's records, a chunk's unpacked between CHUNK_START and CHUNK_END; at the
        first top-level record it cannot read, it goes on at the next intact chunk record
        after it (noted in `damaged`) or, where there is none, stops (recording where); each
        damaged chunk is noted (see the module)."""
        size = path.stat().st_size
        with open_mcap(path) as handle:
            seekable = not path.name.endswith(".zstd")
            reader = StreamReader(handle, emit_chunks=True)
            good = 0  # where the last complete top-level record ended
            while True:
                try:
                    for record in reader.records:
                        if isinstance(record, Chunk):
                            yield CHUNK_START
                            yield from self._chunk_records(path, handle.tell(), record)
                            yield CHUNK_END
                        else:
                            yield record
                        good = handle.tell()
                    return
                except Exception as err:  # EndOfFile, a cut record, a bad length
                    at = next_chunk_record(path, good + 1) if seekable and good else None
                    if at is None:
                        self._stopped = (path, handle.tell(), size, f"{type(err).__name__}: {err}")
                        return
                    self._damaged.append(
                        f"{path.name}: bytes {good}-{at} unreadable "
                        f"({type(err).__name__}: {err}); read on at the next chunk"
                    )
                    handle.seek(at)
                    reader = StreamReader(handle, skip_magic=True, emit_chunks=True)
                    good = at

    def _chunk_records(self, path: Path, end: int, chunk: Chunk) -> Iterator[Any]:
        """The records of a chunk that ends at byte `end` of `path`, up to the first damaged
        one (noted, with the chunk's time range, in the summary's `damaged`)."""
        span = f"{chunk.message_start_time * 1e-9:.3f}-{chunk.message_end_time * 1e-9:.3f} s"
        where = f"{path.name}, chunk ending at byte {end} ({span})"
        try:
            stream, length = get_chunk_data_stream(chunk)
        except Exception as err:  # undecompressable: the whole chunk is lost
            self._damaged.append(f"{where}: unreadable ({type(err).__name__}: {err})")
            return
        data = stream.read(length)
        if chunk.uncompressed_crc and zlib.crc32(data) != chunk.uncompressed_crc:
            self._damaged.append(f"{where}: checksum mismatch, its messages may be corrupt")
        stream = ReadDataStream(BytesIO(data))
        count = 0
        try:
            while stream.count < length:
                record = _chunk_record(stream, length)
                if isinstance(record, Message) and not (
                    chunk.message_start_time <= record.log_time <= chunk.message_end_time
                ):  # misread data (a damaged record before it): it and what follows
                    raise ValueError(
                        f"a message logged at {record.log_time * 1e-9:.3f} s, outside the "
                        "chunk's time range"
                    )
                if record is not None:
                    count += isinstance(record, Message)
                    yield record
        except Exception as err:  # a damaged record: the rest of this chunk is lost
            self._damaged.append(
                f"{where}: damaged after {count} messages ({type(err).__name__}: {err}); "
                "the rest of the chunk skipped"
            )

    def _scan(self) -> StreamSummary:
        topics: dict[str, str] = {}
        start, end, count = None, None, 0
        self._stopped = None
        self._damaged = []
        new_types: dict[str, Any] = {}
        units = _Units()
        for path in self.files:
            schemas: dict[int, str] = {}
            # every channel of the file: after a damaged stretch its messages may come
            # before the summary's copy of their channel record
            channels = self._channels.setdefault(path, {})
            for record in self._records(path):
                units.see(record)
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                    known = record.name in self.store.types or record.name in new_types
                    if record.encoding == "ros2msg" and not known:
                        try:
                            new_types.update(ros2msg_types(record.name, record.data.decode()))
                        except Exception as err:  # unparsable: that topic's messages are bad
                            log.warning("schema %s unreadable: %s", record.name, err)
                elif isinstance(record, Channel):
                    topics[record.topic] = schemas.get(record.schema_id, "")
                    channels[record.id] = (record.topic, topics[record.topic])
                elif isinstance(record, Message):
                    count += 1
                    start = record.log_time if start is None else min(start, record.log_time)
                    end = record.log_time if end is None else max(end, record.log_time)
        self._later_start = units.later_starts()
        if new_types:
            self.store.register({k: v for k, v in new_types.items() if k not in self.store.types})
        return StreamSummary(
            topics, start or 0, end or 0, count, self._stopped, tuple(self._damaged)
        )

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, float, Any]]:
        """(topic, receive time s, message or BadMessage) in log-time order (see the
        module text: each message is held until no later unit can hold an earlier one)."""
        self._damaged = []  # noted by the scan (summary.damaged): not again each pass
        wanted = set(topics)
        held: list[tuple[int, int, str, str, bytes]] = []  # (log ns, seq, topic, type, data)
        held_bytes = 0
        units = _Units()
        for path in self.files:
            schemas: dict[int, str] = {}
            channels = dict(self._channels.get(path, {}))  # id -> (topic, type), from the scan
            for record in self._records(path):
                if units.see(record):  # a unit ended: what no later unit precedes goes out
                    starts = self._later_start  # from the scan, which saw the same records
                    later = starts[units.count - 1] if units.count <= len(starts) else math.inf
                    while held and held[0][0] < later:
                        held_bytes -= len(held[0][-1])
                        yield self._message(*heapq.heappop(held))
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
                elif isinstance(record, Message):
                    topic, msgtype = channels.get(record.channel_id, ("", ""))
                    if topic in wanted:
                        item = (record.log_time, units.seen, topic, msgtype, bytes(record.data))
                        heapq.heappush(held, item)
                        held_bytes += len(item[-1])
                        while held_bytes > self.max_held_bytes:
                            held_bytes -= len(held[0][-1])
                            yield self._message(*heapq.heappop(held))
        while held:
            yield self._message(*heapq.heappop(held))

    def _message(self, t_ns: int, _: int, topic: str, msgtype: str, data: bytes) -> tuple:
        t = t_ns * 1e-9
        try:
            msg = self.store.deserialize_cdr(data, msgtype)
        except Exception as err:
            msg = BadMessage(f"{topic} at {t:.3f} s: cannot deserialise ({err})")
        return topic, t, msg


class _Units:
    """Counts the units of a record sequence that hold messages (a chunk, or a message
    outside chunks) and the earliest log time of each."""

    def __init__(self) -> None:
        self.starts: list[int] = []  # earliest log time (ns) per finished unit
        self.count = 0  # finished units
        self.seen = 0  # messages seen, for a stable order among equal log times
        self._open: int | None = None  # earliest log time of the open chunk's messages
        self._in_chunk = False

    def see(self, record: Any) -> bool:
        """Note a record of _records (or a chunk marker); True when it finished a unit."""
        if record is CHUNK_START:
            self._in_chunk = True
            return False
        if record is CHUNK_END:
            self._in_chunk, start, self._open = False, self._open, None
            return start is not None and self._finish(start)
        if not isinstance(record, Message):
            return False
        self.seen += 1
        if self._in_chunk:
            self._open = record.log_time if self._open is None else min(self._open, record.log_time)
            return False
        return self._finish(record.log_time)

    def _finish(self, start: int) -> bool:
        self.starts.append(start)
        self.count += 1
        return True

    def later_starts(self) -> list[float]:
        """Per finished unit: the earliest start of the units after it (inf for the last)."""
        out: list[float] = [math.inf] * len(self.starts)
        for i in range(len(self.starts) - 2, -1, -1):
            out[i] = min(out[i + 1], self.starts[i + 1])
        return out


def next_chunk_record(path: Path, start: int) -> int | None:
    """Byte offset of the first chunk record at or after `start` whose header is consistent
    (its length inside the file, its fields adding up to it, a known compression), or None."""
    compressions = (b"", b"zstd", b"lz4")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(bytes([Opcode.CHUNK]), start)
        while at >= 0 and at + 53 <= len(data):
            (length,) = struct.unpack_from("<Q", data, at + 1)
            (name,) = struct.unpack_from("<I", data, at + 37)
            if at + 9 + length <= len(data) and name <= 4:
                kind = data[at + 41 : at + 41 + name]
                (records,) = struct.unpack_from("<Q", data, at + 41 + name)
                if kind in compressions and records == length - (8 + 8 + 8 + 4 + 4 + name + 8):
                    return at
            at = data.find(bytes([Opcode.CHUNK]), at + 1)
    return None


def _chunk_record(stream: ReadDataStream, length: int) -> Any:
    """The next record of a chunk's data (Schema, Channel, Message; None for another kind,
    skipped). ValueError when its length runs past the chunk's end (a damaged record)."""
    opcode = stream.read1()
    size = stream.read8()
    if size > length - stream.count:
        raise ValueError(f"a record of {size} bytes in {length - stream.count} left")
    start = stream.count
    if opcode == Opcode.MESSAGE:
        record: Any = Message.read(stream, size)
    elif opcode == Opcode.CHANNEL:
        record = Channel.read(stream)
    elif opcode == Opcode.SCHEMA:
        record = Schema.read(stream)
    else:
        stream.read(size)
        return None
    if stream.count - start != size:
        raise ValueError(f"a record read {stream.count - start} of its {size} bytes")
    return record
