"""Outputs replace what was there only when complete, and only folders replace folders."""

from pathlib import Path

import pytest

from alpamayo_ros.core.atomic_output import (
    staging_folder,
    write_text_atomically,
    written_atomically,
)


def test_a_text_file_is_replaced_only_by_a_complete_one(tmp_path, monkeypatch):
    out = tmp_path / "metrics.json"
    out.write_text("earlier")
    real = Path.write_text

    def cut(self, text, *args, **kwargs):
        real(self, text[:3])
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", cut)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomically(out, "the new metrics")
    monkeypatch.undo()
    assert out.read_text() == "earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no partial file left
    write_text_atomically(out, "the new metrics")
    assert out.read_text() == "the new metrics"


def test_a_file_is_never_replaced_by_an_output_folder(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep")
    with pytest.raises(OSError, match="is a file, not a folder"):
        with written_atomically(f):
            pass
    with pytest.raises(OSError, match="is a file, not a folder"):
        staging_folder(f)
    assert f.read_text() == "keep" and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_folder_is_replaced_only_when_the_block_completes(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with written_atomically(target) as partial:
            (partial / "new.txt").write_text("new")
            raise RuntimeError("failed run")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with written_atomically(target) as partial:
        (partial / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
