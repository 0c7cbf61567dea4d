"""What crosses between the planning loop and a model: a request (frames + ego history), the
samples and result a policy returns, and the Policy protocol the model implements.

Torch-free: the planner, its worker and the nodes use these without importing a model.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from alpamayo_ros.core.ego_history import EgoHistory
from alpamayo_ros.core.encoded_image import CameraFrame, EncodedImage
from alpamayo_ros.core.trajectory import UnicycleRollout


@dataclass(frozen=True)
class PlanRequest:
    """One planning input.

    images: the frame set's images ((H, W, 3) uint8 RGB arrays, or EncodedImages the model
        decodes), camera-major, oldest first per camera (the released model: 4 cameras x 4
        frames).
    ego: the ego history at t0 (positions (N, 3) metres, rotations (N, 3, 3), speed m/s).
    cameras: the model camera (alpamayo_ros.core.cameras) of each camera group in `images`,
        in the same order; () = Alpamayo 1's four in its order. The images split evenly
        between them. Alpamayo 1.5 prompts name each camera; any order is shown ascending
        by model index.
    navigation: route text for Alpamayo 1.5 (e.g. "Turn left in 30m"), or None.
    """

    images: tuple[CameraFrame, ...]
    ego: EgoHistory
    cameras: tuple[str, ...] = ()
    navigation: str | None = None

    def __post_init__(self) -> None:
        check_images("PlanRequest", self.images, self.cameras)
        if self.navigation is not None and not self.navigation.strip():
            raise ValueError("PlanRequest.navigation must be None or non-empty text")


def check_images(kind: str, images: tuple[CameraFrame, ...], cameras: tuple[str, ...]) -> None:
    """A request's images: at least one, each (H, W, 3), split evenly over its cameras."""
    if not images:
        raise ValueError(f"{kind}.images must hold at least one image")
    if cameras and len(images) % len(cameras):
        raise ValueError(
            f"{kind} has {len(images)} images for {len(cameras)} cameras: each camera must "
            "have the same number of frames"
        )
    for i, img in enumerate(images):
        if not (isinstance(img, np.ndarray | EncodedImage) and img.ndim == 3 and img.shape[2] == 3):
            shape = getattr(img, "shape", type(img).__name__)
            raise ValueError(f"{kind}.images[{i}] must be (H, W, 3) RGB, got {shape}")


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
        navigation_guidance: float = 1.0,
        noise_temperature: float = 1.0,
    ) -> PlanResult:
        """num_samples samples per request; `cancel` set from another thread abandons it;
        navigation_guidance: classifier-free guidance weight of requests with navigation
        text (1 = none); noise_temperature: scale of the flow sampler's initial noise."""
        ...

    def reason_steps(
        self,
        request: PlanRequest,
        temperature: float = 0.6,
        top_p: float = 0.98,
        max_tokens: int = 128,
        seed: int | None = None,
    ) -> Generator[str, None, tuple[tuple[int, ...], str, bool]]:
        """A causal chain a step at a time (the reasoning lane): yields per step, returns
        (token ids, text, complete)."""
        ...

    def ask(
        self,
        question: QuestionRequest,
        *,
        max_tokens: int = 256,
        temperature: float = 0.6,
        top_p: float = 0.98,
        seed: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Answer:
        """Answer a question about the scene (Alpamayo 1.5's VQA prompt)."""
        ...


@dataclass(frozen=True)
class QuestionRequest:
    """A question about the scene: images camera-major as in PlanRequest, their cameras,
    and the question text."""

    images: tuple[CameraFrame, ...]
    question: str
    cameras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_images("QuestionRequest", self.images, self.cameras)
        if not self.question.strip():
            raise ValueError("QuestionRequest.question must not be empty")


@dataclass(frozen=True)
class Answer:
    """text: the answer (up to <|answer_end|>); complete: False when the decode hit its
    token limit first (the text is then what was written so far); timings_ms per stage."""

    text: str
    complete: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
