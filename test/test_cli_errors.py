"""Unusable inputs give one line naming the file and what is wrong, exit code 2, no
traceback (--debug shows it)."""

import shutil

import pytest

from alpamayo_ros.bag.sample_drive import write_sample_bag
from alpamayo_ros.cli import main


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    path = tmp_path_factory.mktemp("drive") / "bag"
    write_sample_bag(path, seed=1, duration=2.0)
    return path


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_a_folder_without_metadata_is_not_a_bag(tmp_path, capsys):
    (tmp_path / "notes.mcap").write_text("hello")
    err = one_line_error(capsys, ["inspect-bag", str(tmp_path)])
    assert "is not a ROS 2 bag: no metadata.yaml" in err


def test_a_truncated_mcap_is_named_as_such(drive, tmp_path, capsys):
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(drive / "metadata.yaml", cut)
    data = next(drive.glob("*.mcap")).read_bytes()
    (cut / next(drive.glob("*.mcap")).name).write_bytes(data[: len(data) // 2])
    err = one_line_error(capsys, ["inspect-bag", str(cut)])
    assert "MCAP file truncated" in err and str(cut) in err
    with pytest.raises(RuntimeError, match="truncated") as raised:  # --debug: a traceback
        main(["--debug", "inspect-bag", str(cut)])
    assert "end magic" in str(raised.value.__cause__)  # with the reader's own error


def test_a_truncated_checkpoint_is_named_before_planning(drive, tiny_checkpoint, tmp_path, capsys):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50_000])
    argv = ["replay", str(drive), "--model", str(broken), "--out", str(tmp_path / "out")]
    err = one_line_error(capsys, argv)
    assert "model.safetensors: cannot read the checkpoint file: truncated or corrupt" in err
