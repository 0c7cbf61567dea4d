"""Writing an output folder so that a failed run never loses an earlier result: the run
writes into a fresh folder beside the target, which replaces the target only once the run
has finished."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_atomically(target: Path, create: bool = True) -> Iterator[Path]:
    """A fresh folder beside `target` to write into (created, or with create=False only
    named, for writers that make their folder themselves); when the block ends normally it
    replaces `target` (the old one removed only then), when it raises it is removed and
    `target` is left as it was: a failed run never loses an earlier result."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    if partial.exists():
        shutil.rmtree(partial)
    if create:
        partial.mkdir()
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
