"""Writing an output folder so that a failed run never loses an earlier result: the run
writes into a fresh folder beside the target, which replaces the target only once the run
has finished."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def written_atomically(target: Path, create: bool = True) -> Iterator[Path]:
    """A fresh folder to write into (created, or with create=False only named, for writers
    that make their folder themselves); when the block ends normally it replaces `target`
    (the old one removed only then), when it raises it is removed and `target` is left as it
    was: a failed run never loses an earlier result.

    The fresh folder has `target`'s own name, inside a hidden folder beside `target`, so a
    writer that names files after their folder (rosbags: FOLDER/FOLDER.mcap) names them as
    it would have named them in `target`. A `target` that is a file is refused (OSError):
    only a folder is ever replaced."""
    refuse_a_file(target)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
    except OSError as err:
        raise OSError(f"cannot write the output folder {target}: {_why(target, err)}") from err
    partial = staging / target.name
    if create:
        partial.mkdir()
    try:
        yield partial
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        _replace(target, partial)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def refuse_a_file(target: Path) -> None:
    """OSError where `target`, an output folder, is an existing file (or a link to one):
    an output never replaces a file, which is likely a mistyped --out (a dataset's
    index.json was replaced by a checkpoint folder)."""
    if target.exists() and not target.is_dir():
        raise OSError(f"the output {target} is a file, not a folder: name a folder")


def _why(target: Path, err: OSError) -> str:
    """What stops a folder being made at `target`, in words (not the staging folder's name
    that the OSError carries)."""
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file"
            break
    return err.strerror or str(err)


def _replace(target: Path, new: Path) -> None:
    """The folder `new` takes `target`'s place; the old `target` (if any) is removed only
    once `new` is in place."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def staging_folder(target: Path) -> Path:
    """Where a long run that writes as it goes (training: logs, step checkpoints) writes:
    `target` itself where it does not exist or is empty, else `<target>.incomplete` beside
    it, which finish_staging moves into place once the run has finished. A failed run leaves
    `target` untouched and what it wrote in the staging folder, for a look. Decides only:
    the caller creates the folder (prepare_staging). A `target` that is a file: OSError."""
    refuse_a_file(target)
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return target
    return target.with_name(f"{target.name}.incomplete")


def prepare_staging(work: Path, target: Path) -> None:
    """Create the staging folder `work` for `target` (see staging_folder), emptied of what
    an earlier failed run left there."""
    if work != target and work.exists():
        log.warning("removing %s, the incomplete output of an earlier run", work)
        shutil.rmtree(work)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot write the output folder {target}: {_why(work, err)}") from err


def finish_staging(work: Path, target: Path) -> None:
    """The finished run's staging folder `work` replaces `target` (nothing to do where the
    run wrote into `target` itself)."""
    if work != target:
        _replace(target, work)


def check_output_file(path: Path) -> None:
    """OSError naming what stops `path` being written as a file: a folder there, or a
    folder to hold it that is missing or is a file. Checked before a long run, so it does
    not fail at its end."""
    if path.is_dir():
        raise OSError(f"the output {path} is a folder, not a file: name a file")
    parent = path.parent
    if not parent.is_dir():
        missing = "is a file" if parent.exists() else "does not exist"
        raise OSError(f"cannot write {path}: its folder {parent} {missing}")
    if not os.access(parent, os.W_OK):
        raise OSError(f"cannot write {path}: its folder {parent} is not writable")


def write_text_atomically(path: Path, text: str) -> None:
    """`text` into the file `path`, written beside it and moved into place: an earlier
    file there is replaced only by a complete one."""
    check_output_file(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def refuse_replacing_inputs(out: Path, inputs: list[tuple[str, str | Path | None]]) -> None:
    """OSError where the output `out`, which is replaced whole, is one of the run's inputs
    or a folder holding one (`inputs`: (what it is, its path), None skipped): `replay BAG
    --out BAG` replaced the drive with its report."""
    target = out.resolve()
    for what, path in inputs:
        if path is None:
            continue
        source = Path(path).resolve()
        if not source.exists():  # a hub id, the shipped demo model: nothing to lose
            continue
        if source == target or target in source.parents:
            raise OSError(
                f"the output {out} would replace {what} {path} (an output is replaced "
                "whole): name another folder"
            )
