"""Reading what is left of a truncated MCAP file: a recorder killed mid-drive leaves an MCAP
without its summary and end magic, which indexed readers (rosbags) refuse. The `mcap`
library's non-seeking StreamReader reads records in file order up to the first incomplete
one, so every complete chunk is recovered; messages are deserialised with the rosbags
typestore, extended with the file's own message definitions (its ros2msg schemas).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.typesys.msg import get_types_from_msg
from rosbags.typesys.store import Typestore

from alpamayo_ros.messages.inputs import BadMessage

log = logging.getLogger(__name__)

SEPARATOR = "=" * 80 + "\n"


@dataclass
class StreamSummary:
    """What one pass over the files found: topic -> type, time range (ns), messages read,
    and where reading stopped (file, byte, total bytes; None when a file ended cleanly)."""

    topics: dict[str, str]
    start_ns: int
    end_ns: int
    messages: int
    stopped: tuple[Path, int, int, str] | None


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
        self.summary = self._scan()

    def _records(self, path: Path) -> Iterator[Any]:
        """The file's records; stops (recording where) at the first it cannot read."""
        size = path.stat().st_size
        with path.open("rb") as handle:
            reader = StreamReader(handle, emit_chunks=False)
            try:
                yield from reader.records
            except Exception as err:  # EndOfFile, a cut record, a bad chunk: stop there
                self._stopped = (path, handle.tell(), size, f"{type(err).__name__}: {err}")

    def _scan(self) -> StreamSummary:
        topics: dict[str, str] = {}
        start, end, count = None, None, 0
        self._stopped = None
        new_types: dict[str, Any] = {}
        for path in self.files:
            schemas: dict[int, str] = {}
            for record in self._records(path):
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
                elif isinstance(record, Message):
                    count += 1
                    start = record.log_time if start is None else min(start, record.log_time)
                    end = record.log_time if end is None else max(end, record.log_time)
        if new_types:
            self.store.register({k: v for k, v in new_types.items() if k not in self.store.types})
        return StreamSummary(topics, start or 0, end or 0, count, self._stopped)

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, float, Any]]:
        """(topic, receive time s, message or BadMessage) in file order."""
        wanted = set(topics)
        for path in self.files:
            schemas: dict[int, str] = {}
            channels: dict[int, tuple[str, str]] = {}
            for record in self._records(path):
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
                elif isinstance(record, Message):
                    topic, msgtype = channels.get(record.channel_id, ("", ""))
                    if topic not in wanted:
                        continue
                    t = record.log_time * 1e-9
                    try:
                        msg = self.store.deserialize_cdr(bytes(record.data), msgtype)
                    except Exception as err:
                        msg = BadMessage(f"{topic} at {t:.3f} s: cannot deserialise ({err})")
                    yield topic, t, msg
