"""Shared fixtures: the real recording in ../shared/data (skipped when absent)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PANDASET = SHARED_DATA / "pandaset_seq002"


@pytest.fixture
def pandaset_bag() -> Path:
    if not (PANDASET / "metadata.yaml").is_file():
        pytest.skip(f"real recording not found at {PANDASET} (shared/ is not beside the checkout)")
    return PANDASET
