"""A small synthetic dataset built once per session from two short drives."""

from pathlib import Path

import pytest

from alpamayo_ros.bag.sample_drive import write_sample_bag
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.training.dataset import build_dataset, load_samples


@pytest.fixture(scope="session")
def drives(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("drives")
    paths = []
    for name, seed, kind in (("lead", 11, "lead_brake"), ("ped", 12, "pedestrian")):
        write_sample_bag(root / name, seed=seed, kind=kind, duration=9.0, width=160, height=90)
        paths.append(root / name)
    return paths


@pytest.fixture(scope="session")
def dataset(drives, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    notes = root / "annotations.jsonl"
    notes.write_text("".join((d / "coc_annotations.jsonl").read_text() for d in drives))
    build_dataset(drives, notes, root / "shards", CameraRig.released_default(), per_shard=8,
                  progress=False)  # fmt: skip
    return root / "shards"


@pytest.fixture(scope="session")
def samples(dataset):
    return load_samples(dataset)
