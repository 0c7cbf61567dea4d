"""What crosses between the planning loop and a model: a request (frames + ego history), the
samples and result a policy returns, and the Policy protocol the model implements.

Torch-free: the planner, its worker and the nodes use these without importing a model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from alpamayo_ros.core.ego_history import EgoHistory
from alpamayo_ros.core.trajectory import UnicycleRollout


@dataclass(frozen=True)
class PlanRequest:
    """One planning input.

    images: the frame set's images, camera-major, oldest first per camera (the released
        model: 4 cameras x 4 frames), each (H, W, 3) uint8 RGB.
    ego: the ego history at t0 (positions (N, 3) metres, rotations (N, 3, 3), speed m/s).
    """

    images: tuple[np.ndarray, ...]
    ego: EgoHistory

    def __post_init__(self) -> None:
        if not self.images:
            raise ValueError("PlanRequest.images must hold at least one image")
        for i, img in enumerate(self.images):
            if not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3):
                shape = getattr(img, "shape", type(img).__name__)
                raise ValueError(f"PlanRequest.images[{i}] must be (H, W, 3) RGB, got {shape}")


@dataclass(frozen=True)
class PolicySample:
    """One sampled plan.

    reasoning: the causal-chain text; controls: (T, 2) m/s^2 and 1/m; rollout: the unicycle
    states from the core (x, y, heading, speed); xyz (T, 3) metres and rot (T, 3, 3) in the
    ego frame at t0; reasoning_complete: False when the decode hit max_reasoning_tokens
    before <|traj_future_start|>; reasoning_token_ids: the sampled text ids (up to
    <|cot_end|>); trajectory_tokens: (2T,) local ids on the discrete path; generated_ids:
    every vocabulary id the VLM produced after the prompt, through <|traj_future_start|>
    (and the 2T trajectory tokens on the discrete path), pads left out: what training
    scores (GRPO log-probabilities).
    """

    reasoning: str
    controls: np.ndarray
    rollout: UnicycleRollout
    xyz: np.ndarray
    rot: np.ndarray
    reasoning_complete: bool
    reasoning_token_ids: tuple[int, ...] = ()
    trajectory_tokens: np.ndarray | None = None
    generated_ids: tuple[int, ...] = ()


@dataclass
class PlanResult:
    """samples[b][s]: request b's sample s; timings_ms: per stage for the whole batch."""

    samples: list[list[PolicySample]]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Policy(Protocol):
    """A driving model as the planner uses it (alpamayo_ros.model.policy.AlpamayoPolicy)."""

    model_id: str

    def plan(
        self,
        requests: list[PlanRequest],
        *,
        num_samples: int = 1,
        temperature: float = 0.6,
        top_p: float = 0.98,
        max_reasoning_tokens: int = 128,
        seed: int | None = None,
        num_flow_steps: int | None = None,
        cancel: threading.Event | None = None,
    ) -> PlanResult:
        """num_samples samples per request; `cancel` set from another thread abandons it."""
        ...
