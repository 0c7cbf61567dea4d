"""Shared fixtures: the real recording in ../shared/data (skipped when absent) and a tiny
checkpoint built once per test session (nothing is ever downloaded)."""

from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.core.ego_history import EgoHistory, EgoPoseBuffer, StampedPose
from alpamayo_ros.model.tiny import make_tiny_checkpoint
from alpamayo_ros.planning.requests import PlanRequest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PANDASET = SHARED_DATA / "pandaset_seq002"


@pytest.fixture
def pandaset_bag() -> Path:
    if not (PANDASET / "metadata.yaml").is_file():
        pytest.skip(f"real recording not found at {PANDASET} (shared/ is not beside the checkout)")
    return PANDASET


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


@pytest.fixture(scope="session")
def tiny_policy(tiny_checkpoint):
    from alpamayo_ros.model.policy import AlpamayoPolicy

    return AlpamayoPolicy.from_pretrained(tiny_checkpoint)


def straight_history(speed: float = 5.0) -> EgoHistory:
    buf = EgoPoseBuffer()
    for k in range(20):
        buf.add(StampedPose(0.1 * k, (speed * 0.1 * k, 0.0, 0.3), (1.0, 0.0, 0.0, 0.0)))
    return buf.history(1.9)


def make_request(seed: int = 0, shape=(540, 960), speed: float = 5.0) -> PlanRequest:
    rng = np.random.default_rng(seed)
    images = tuple(rng.integers(0, 255, (*shape, 3), dtype=np.uint8) for _ in range(16))
    return PlanRequest(images, straight_history(speed))


@pytest.fixture(scope="session")
def request_factory():
    """make_request(seed=0, shape=(540, 960), speed=5.0) -> PlanRequest."""
    return make_request


@pytest.fixture(scope="session")
def tiny_checkpoint_1_5(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny15") / "ckpt", seed=0, family="alpamayo1_5"
    )


@pytest.fixture(scope="session")
def tiny_policy_1_5(tiny_checkpoint_1_5):
    from alpamayo_ros.model.policy import AlpamayoPolicy

    return AlpamayoPolicy.from_pretrained(tiny_checkpoint_1_5)
