"""Reading what is left of rosbag2 sqlite3 files that SQLite refuses.

A recorder that loses power, or a copy cut short, leaves a `.db3` whose end is missing;
SQLite then calls the whole file malformed ("database disk image is malformed") and Python's
sqlite3 has no recovery API, so nothing of the drive could be read. The file's pages are
still there: this reads them as SQLite's file format defines them
(https://www.sqlite.org/fileformat2.html), without SQLite. Every table b-tree leaf page
(type 13) is parsed; its rows are told apart by their shape, as rosbag2 writes them:
topics (id, name '/...', type, serialization_format, offered_qos_profiles[, hash]), message
definitions (id, topic_type, encoding, definition[, hash]) and messages (id, topic_id,
timestamp, data blob). A row's data that continues on overflow pages is followed along its
chain; one that runs past the end of the file, or into a page that is not an overflow page
any more, is lost and counted. Rows are read in time order.

rosbag2's `resilient` storage preset writes in SQLite's WAL mode: committed pages go to a
write-ahead log beside the file (`<name>.db3-wal`) and reach the file itself only at a
checkpoint (every ~1000 pages, and when the recorder closes). A recorder killed mid-drive
leaves the last seconds in the log alone, which readers that open the file immutable
(rosbags) never see: a real `ros2 bag record -s sqlite3 --storage-preset-profile resilient`
killed after 9 s kept 199 of its 605 messages only there. The log's frames are read as the
format defines them: those with the log's salts and a valid running checksum, up to the
last commit; each page's newest committed version there replaces the file's.
"""

from __future__ import annotations

import logging
import mmap
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.typesys.store import Typestore

from alpamayo_ros.bag.mcap_stream import ros2msg_types
from alpamayo_ros.messages.inputs import BadMessage

log = logging.getLogger(__name__)

MAGIC = b"SQLite format 3\x00"
TABLE_LEAF = 13
WAL_MAGIC = (0x377F0682, 0x377F0683)  # checksums of little- / big-endian 32-bit words
WAL_HEADER, FRAME_HEADER = 32, 24  # bytes


class SalvageError(ValueError):
    """The file is not an SQLite database at all (its header)."""


@dataclass
class SalvageSummary:
    """What one pass over the files found: topic -> type, time range (ns), messages read,
    and messages lost (their data past the end of the file, or damaged)."""

    topics: dict[str, str]
    start_ns: int
    end_ns: int
    messages: int
    lost: int
    pages: int  # whole pages in the files
    wal_pages: int = 0  # of them, pages read from write-ahead logs (their newest versions)
    stopped: None = None  # as StreamSummary: SQLite pages have no record cut in half
    damaged: tuple[str, ...] = ()


def _varint(buf: Any, pos: int) -> tuple[int, int]:
    """SQLite's variable-length integer at pos: (value, next position)."""
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


def _column(buf: bytes, pos: int, serial: int) -> tuple[Any, int]:
    """The value of serial type `serial` at pos in a record body: (value, next position)."""
    if serial == 0:
        return None, pos
    if serial in (8, 9):  # the integers 0 and 1, stored in the type alone
        return serial - 8, pos
    sizes = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}
    if serial in sizes:
        n = sizes[serial]
        return int.from_bytes(buf[pos : pos + n], "big", signed=True), pos + n
    if serial == 7:
        return None, pos + 8  # a float: rosbag2 stores none
    n = (serial - 12) // 2
    raw = buf[pos : pos + n]
    if len(raw) != n:
        raise ValueError("column runs past the record")
    if serial % 2:
        return raw.decode("utf-8", errors="replace"), pos + n
    return bytes(raw), pos + n


def _record(payload: bytes, complete: bool = True) -> tuple[list[int], list[Any]]:
    """An SQLite record (header of serial types, then the values): (serial types, values).
    complete False: `payload` may be the record's first bytes only (a cell's part on its
    page); the values are those that lie whole in it."""
    header_size, pos = _varint(payload, 0)
    serials = []
    while pos < header_size:
        serial, pos = _varint(payload, pos)
        if serial in (10, 11):
            raise ValueError("reserved serial type")
        serials.append(serial)
    values, pos = [], header_size
    for serial in serials:
        try:
            value, pos = _column(payload, pos, serial)
        except ValueError:
            if complete:
                raise
            break
        if pos > len(payload):
            if complete:
                raise ValueError("record runs past its payload")
            break
        values.append(value)
    return serials, values


@dataclass(frozen=True)
class _Row:
    rowid: int
    serials: list[int]  # the columns' SQLite serial types (>= 12 even: a blob)
    values: list[Any]  # all columns, or (read on its page only) the leading ones


def wal_path(db3: Path) -> Path:
    """Where SQLite keeps `db3`'s write-ahead log."""
    return db3.with_name(db3.name + "-wal")


def _wal_checksum(data: Any, offset: int, size: int, fmt: str, s0: int, s1: int) -> tuple[int, int]:
    """SQLite's WAL checksum of `size` bytes at offset (a multiple of 8), continued from
    (s0, s1); fmt: the 32-bit words' byte order, ">" or "<"."""
    words = struct.unpack_from(f"{fmt}{size // 4}I", data, offset)
    for a, b in zip(words[0::2], words[1::2], strict=True):
        s0 = (s0 + a + s1) & 0xFFFFFFFF
        s1 = (s1 + b + s0) & 0xFFFFFFFF
    return s0, s1


@dataclass
class WalFrames:
    """The committed content of a write-ahead log: page number -> byte offset of that page's
    newest committed version in the log, and the database's size in pages after the last
    commit (0: no commit in the log)."""

    pages: dict[int, int]
    db_pages: int
    frames: int  # valid frames read (committed or not)

    @classmethod
    def read(cls, data: Any, page_size: int) -> WalFrames:
        """The log's frames in `data` (bytes or mmap) for a database of `page_size` bytes a
        page; empty when the log's header is not valid for it."""
        none = cls({}, 0, 0)
        if len(data) < WAL_HEADER:
            return none
        magic, version, size, _, salt1, salt2, c0, c1 = struct.unpack_from(">8I", data, 0)
        if magic not in WAL_MAGIC or version != 3007000 or size != page_size:
            return none
        fmt = ">" if magic & 1 else "<"
        s = _wal_checksum(data, 0, 24, fmt, 0, 0)
        if s != (c0, c1):
            return none
        pages: dict[int, int] = {}
        pending: dict[int, int] = {}
        db_pages = frames = 0
        at = WAL_HEADER
        while at + FRAME_HEADER + page_size <= len(data):
            number, commit, f1, f2, c0, c1 = struct.unpack_from(">6I", data, at)
            if (f1, f2) != (salt1, salt2) or number == 0:
                break  # a frame of an earlier generation of the log, or none
            s = _wal_checksum(data, at, 8, fmt, *s)
            s = _wal_checksum(data, at + FRAME_HEADER, page_size, fmt, *s)
            if s != (c0, c1):
                break  # torn or damaged: nothing after it counts
            frames += 1
            pending[number] = at + FRAME_HEADER
            if commit:
                pages.update(pending)
                pending.clear()
                db_pages = commit
            at += FRAME_HEADER + page_size
        return cls(pages, db_pages, frames)


class _Db3:
    """One .db3 file's pages (memory-mapped), read as SQLite's format defines them, with the
    committed pages of its write-ahead log, when it has one, in place of the file's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("rb")
        size = path.stat().st_size
        if size < 100:
            self._file.close()
            raise SalvageError(f"{path}: {size} bytes: not an SQLite database")
        self.data: Any = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self.wal: Any = b""
        if self.data[:16] != MAGIC:
            self.close()
            raise SalvageError(f"{path}: not an SQLite database (its first bytes)")
        page = int.from_bytes(self.data[16:18], "big")
        self.page_size = 65536 if page == 1 else page
        if self.page_size < 512 or self.page_size & (self.page_size - 1):
            self.close()
            raise SalvageError(f"{path}: page size {self.page_size} in its header")
        self.usable = self.page_size - self.data[20]
        self.file_pages = size // self.page_size  # a last page cut in half is not read
        self.pages = self.file_pages
        self.frames = WalFrames({}, 0, 0)
        log_path = wal_path(path)
        if log_path.is_file() and log_path.stat().st_size > WAL_HEADER:
            with log_path.open("rb") as f:
                self.wal = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self.frames = WalFrames.read(self.wal, self.page_size)
            if self.frames.db_pages:
                self.pages = self.frames.db_pages

    def close(self) -> None:
        if hasattr(self, "data"):
            self.data.close()
        if isinstance(self.wal, mmap.mmap):
            self.wal.close()
        self._file.close()

    def page(self, number: int) -> tuple[Any, int] | None:
        """(buffer, byte offset) of page `number`'s content: its newest committed version in
        the log, else the file's; None for a page neither holds (past a cut file's end)."""
        if not 1 <= number <= self.pages:
            return None
        at = self.frames.pages.get(number)
        if at is not None:
            return self.wal, at
        if number > self.file_pages:
            return None
        return self.data, (number - 1) * self.page_size

    def rows(self) -> Iterator[tuple[_Row | None, int, int]]:
        """(row, page, cell) of every cell of every table leaf page; row None when its
        payload is lost (its overflow chain leaves the file) or is no record."""
        for number in range(1, self.pages + 1):
            where = self.page(number)
            if where is None:
                continue
            buf, start = where
            head = start + (100 if number == 1 else 0)
            if buf[head] != TABLE_LEAF:
                continue
            cells = int.from_bytes(buf[head + 3 : head + 5], "big")
            for k in range(cells):
                at = head + 8 + 2 * k
                offset = int.from_bytes(buf[at : at + 2], "big")
                if not head + 8 + 2 * cells <= start + offset < start + self.usable:
                    continue  # not a cell of this page: a page that only looks like a leaf
                yield self.cell(buf, start + offset, whole=False), number, k

    def cell(self, buf: Any, pos: int, whole: bool = True) -> _Row | None:
        """The table-leaf cell at byte pos of buf: its rowid and columns (None: lost or no
        row). whole False: its overflow chain is checked but not copied, and the columns are
        those on its page (a message's header fields; its data, when large, not)."""
        try:
            size, pos = _varint(buf, pos)
            rowid, pos = _varint(buf, pos)
            payload = self._payload(buf, pos, size, whole)
            if payload is None:
                return None
            return _Row(rowid, *_record(payload, complete=whole))
        except (ValueError, IndexError, UnicodeError):
            return None

    def _payload(self, buf: Any, pos: int, size: int, whole: bool = True) -> bytes | None:
        """A cell's payload of `size` bytes starting at pos of buf, its overflow chain
        followed (whole False: only its part on this page is returned)."""
        u = self.usable
        most = u - 35
        if size <= most:
            return bytes(buf[pos : pos + size])
        least = (u - 12) * 32 // 255 - 23
        local = least + (size - least) % (u - 4)
        if local > most:
            local = least
        parts = [bytes(buf[pos : pos + local])]
        left = size - local
        page = int.from_bytes(buf[pos + local : pos + local + 4], "big")
        seen = set()
        while left > 0:
            where = self.page(page)
            if where is None or page in seen:
                return None  # the chain leaves the file (cut) or loops (damaged)
            seen.add(page)
            data, start = where
            take = min(left, u - 4)
            if whole:
                parts.append(bytes(data[start + 4 : start + 4 + take]))
            left -= take
            page = int.from_bytes(data[start : start + 4], "big")
        return b"".join(parts)


def committed_wal_pages(db3: Path) -> int:
    """How many pages the write-ahead log beside `db3` holds committed and not yet
    checkpointed into it (0: no log, an empty or invalid one, or a file that is no SQLite
    database: its readers say so)."""
    if not wal_path(db3).is_file():
        return 0
    try:
        db = _Db3(db3)
    except (SalvageError, OSError):
        return 0
    try:
        return len(db.frames.pages)
    finally:
        db.close()


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


class SalvagedDb3:
    """The messages of rosbag2 .db3 files read from their pages (see the module text).
    `summary` comes from one pass at construction; messages() reads them in time order."""

    def __init__(self, files: Sequence[Path], store: Typestore) -> None:
        self.files = list(files)
        self.store = store
        self._index: list[tuple[int, int, int, int, int, int]] = []  # t, file, rowid, ...
        self._topics: dict[tuple[int, int], tuple[str, str]] = {}  # (file, id) -> topic, type
        self.summary = self._scan()

    def _scan(self) -> SalvageSummary:
        definitions: dict[str, str] = {}
        messages: list[tuple[int, int, int, int, int, int]] = []
        lost = pages = wal_pages = 0
        for f, path in enumerate(self.files):
            db = _Db3(path)
            try:
                pages += db.pages
                wal_pages += len(db.frames.pages)
                for row, page, cell in db.rows():
                    if row is None:
                        lost += 1
                        continue
                    v, kinds = row.values, row.serials
                    blob = len(kinds) == 4 and kinds[3] >= 12 and kinds[3] % 2 == 0
                    if blob and len(v) >= 3 and v[0] is None:  # messages: id, topic, time
                        if isinstance(v[1], int) and isinstance(v[2], int):
                            messages.append((v[2], f, row.rowid, v[1], page, cell))
                    elif len(v) >= 5 and v[0] is None and all(map(_is_text, v[1:5])):
                        if v[1].startswith("/"):  # topics: name, type, format, qos[, hash]
                            self._topics[(f, row.rowid)] = (v[1], v[2])
                        elif v[2] == "ros2msg":  # message_definitions: type, encoding, text
                            definitions.setdefault(v[1], v[3])
            finally:
                db.close()
        self._register(definitions)
        kept = [m for m in messages if (m[1], m[3]) in self._topics]
        lost += len(messages) - len(kept)
        kept.sort()
        self._index = kept
        topics = dict(sorted(self._topics.values()))
        start, end = (kept[0][0], kept[-1][0]) if kept else (0, 0)
        return SalvageSummary(topics, start, end, len(kept), lost, pages, wal_pages)

    def _register(self, definitions: dict[str, str]) -> None:
        """The files' own message definitions (Iron and later write them) for types the
        typestore lacks."""
        new: dict[str, Any] = {}
        for name, text in definitions.items():
            if name in self.store.types or not text:
                continue
            try:
                new.update(ros2msg_types(name, text))
            except Exception as err:  # unparsable: that topic's messages are bad
                log.warning("message definition %s unreadable: %s", name, err)
        if new:
            self.store.register({k: v for k, v in new.items() if k not in self.store.types})

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, float, Any]]:
        """(topic, receive time s, message or BadMessage) in time order."""
        wanted = set(topics)
        dbs = [_Db3(p) for p in self.files]
        try:
            for t_ns, f, _, topic_id, page, cell in self._index:
                topic, msgtype = self._topics[(f, topic_id)]
                if topic not in wanted:
                    continue
                row = self._cell(dbs[f], page, cell)
                t = t_ns * 1e-9
                if row is None:
                    yield topic, t, BadMessage(f"{topic} at {t:.3f} s: its data is unreadable")
                    continue
                try:
                    msg = self.store.deserialize_cdr(row.values[3], msgtype)
                except Exception as err:
                    msg = BadMessage(f"{topic} at {t:.3f} s: cannot deserialise ({err})")
                yield topic, t, msg
        finally:
            for db in dbs:
                db.close()

    @staticmethod
    def _cell(db: _Db3, page: int, cell: int) -> _Row | None:
        where = db.page(page)
        assert where is not None  # the scan found the cell there
        buf, start = where
        head = start + (100 if page == 1 else 0)
        at = head + 8 + 2 * cell
        return db.cell(buf, start + int.from_bytes(buf[at : at + 2], "big"))
