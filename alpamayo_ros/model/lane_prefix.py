"""A trajectory-lane plan's prompt, kept for the reasoning lane.

In two_lane mode the trajectory lane reads, every cycle, the newest frames and ego history
followed by the newest chain (teacher-forced); the reasoning lane then writes a fresh chain
on the newest inputs, which starts with a prefill of the very same prompt: the frames, the
history and everything up to <|cot_start|>. Attention is causal, so the prompt's keys and
values in the lane's cache do not depend on the chain after them. The runtime keeps them
(with the next-token logits at the prompt's last position, asked of the same forward pass)
in a cache of its own, and a reasoning lane starting on the same inputs starts from there:
on an H200 that prefill was 110-140 ms of a chain's GPU time (bench/results), which one
GPU shares with the trajectory lane.

Same inputs means: the same frame objects (held here, so their ids cannot be reused) with
unchanged pixels (model.vision_cache's fingerprint), and the same prompt token ids
(history tokens, cameras, navigation text).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from alpamayo_ros.core.encoded_image import CameraFrame
from alpamayo_ros.model.vision_cache import fingerprint


@dataclass(frozen=True)
class LanePrefix:
    """The prompt of one trajectory-lane request: its frames (references) and their
    fingerprints, its token ids (1, L), the next-token logits after it (1, V) and the
    multimodal rotary deltas (1, 1); its keys and values are in the runtime's "prefix"
    static cache."""

    frames: tuple[CameraFrame, ...]
    prints: tuple[bytes, ...]
    prompt_ids: torch.Tensor
    logits: torch.Tensor
    rope_deltas: torch.Tensor

    @classmethod
    def of(cls, frames, prompt_ids, logits, rope_deltas) -> LanePrefix:
        return cls(
            tuple(frames), tuple(fingerprint(f) for f in frames), prompt_ids.clone(),
            logits.clone(), rope_deltas.clone(),
        )  # fmt: skip

    def matches(self, frames, prompt_ids: torch.Tensor) -> bool:
        """Whether a prompt of these frames and token ids (1, L) is this one."""
        frames = tuple(frames)
        return (
            len(frames) == len(self.frames)
            and all(a is b for a, b in zip(frames, self.frames, strict=True))
            and all(fingerprint(f) == p for f, p in zip(frames, self.prints, strict=True))
            and prompt_ids.shape == self.prompt_ids.shape
            and bool(torch.equal(prompt_ids.to(self.prompt_ids.device), self.prompt_ids))
        )
