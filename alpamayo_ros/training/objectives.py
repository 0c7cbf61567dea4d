"""Training objectives of the policy: supervised losses and token log-probabilities.

- `training_batch`: samples -> the processor's tensors with the target continuation (the
  causal chain, <|cot_end|>, <|traj_future_start|>, the 128 trajectory tokens,
  <|traj_future_end|>, <|im_end|>) as labels, and the normalised controls.
- `sft_losses`: cross-entropy on the text and on the trajectory tokens (prompt masked), and
  the action expert's conditional flow-matching loss on the controls, reading the VLM's KV
  cache up to <|traj_future_start|> exactly as at inference (same positions and mask).
- `token_logprobs`: per-token log-probabilities of given continuations (GRPO).
Logits are computed only where there are labels, so a long prompt costs no vocabulary-sized
activations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from alpamayo_ros.model.flow_matching import flow_matching_loss
from alpamayo_ros.model.processor import AlpamayoProcessor, PlanRequest
from alpamayo_ros.training.dataset import DamagedPart, DrivingSample

MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "mm_token_type_ids",
    "pixel_values",
    "image_grid_thw",
)


def training_batch(
    proc: AlpamayoProcessor,
    samples: list[DrivingSample],
    continuations: list[list[int]] | None = None,
) -> dict[str, torch.Tensor]:
    """Model inputs, labels, future_start (B,), controls (B, T, 2) physical and
    is_trajectory (B, L): which label positions are trajectory tokens.

    continuations: the ids to score after each prompt (default: each sample's target).
    """
    if continuations is None:
        continuations = [proc.target_ids(s.reasoning, s.tokens) for s in samples]
    requests = [PlanRequest(tuple(s.images), s.ego_history()) for s in samples]
    batch = proc(requests, continuations)
    lo = proc.traj_token_start
    labels = batch["labels"]
    batch["is_trajectory"] = (labels >= lo) & (labels < lo + proc.config.traj_vocab_size)
    batch["controls"] = torch.from_numpy(np.stack([s.controls for s in samples])).float()
    return batch


DAMAGED = "damaged_parts"  # the batch's entry listing the damaged parts it skipped


class Collator:
    """DataLoader collate_fn: a list of DrivingSamples -> training_batch (picklable, so it
    runs in the loader's worker processes). DamagedParts among them are left out of the
    batch and listed (as text) under DAMAGED, a batch of them alone holding only that."""

    def __init__(self, processor: AlpamayoProcessor) -> None:
        self.processor = processor

    def __call__(self, records: list[DrivingSample | DamagedPart]) -> dict[str, Any]:
        samples = [r for r in records if isinstance(r, DrivingSample)]
        damaged = [str(r) for r in records if isinstance(r, DamagedPart)]
        batch: dict[str, Any] = training_batch(self.processor, samples) if samples else {}
        return batch | {DAMAGED: damaged}


def _to(batch: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype) -> dict:
    out = {k: v.to(device) for k, v in batch.items()}
    out["pixel_values"] = out["pixel_values"].to(dtype)
    return out


def _forward(policy: Any, batch: dict[str, torch.Tensor], use_cache: bool):
    """The VLM's output for a batch (hidden states (B, L, H), with use_cache its cache) and
    the rotary deltas (B, 1): the policy's backbone_forward."""
    return policy.backbone_forward({k: batch[k] for k in MODEL_INPUTS}, use_cache=use_cache)


def _label_logits(policy: Any, hidden: torch.Tensor, labels: torch.Tensor):
    """Logits at the positions that predict a label: (M, V), targets (M,), and the (B, L)
    mask of those label positions."""
    target_mask = labels[:, 1:] != -100
    logits = policy.vlm.lm_head(hidden[:, :-1][target_mask])
    return logits.float(), labels[:, 1:][target_mask], target_mask


def sft_losses(
    policy: Any,
    batch: dict[str, torch.Tensor],
    flow_matching: bool = True,
    insulate_vlm: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """ce_text, ce_trajectory (mean cross-entropy of the text and trajectory labels) and
    fm (flow-matching MSE of the expert's velocity on the normalised controls).

    insulate_vlm: the expert reads a detached cache, so its loss trains the expert and the
    action projections only (the VLM learns from the cross-entropy), as in knowledge-
    insulated VLA training.
    """
    device = policy.device
    batch = _to(batch, device, policy.vlm.dtype)
    out, rope_deltas = _forward(policy, batch, use_cache=flow_matching)
    logits, targets, target_mask = _label_logits(policy, out.last_hidden_state, batch["labels"])
    per_token = F.cross_entropy(logits, targets, reduction="none")
    is_traj = batch["is_trajectory"][:, 1:][target_mask]
    zero = per_token.sum() * 0.0
    losses = {
        "ce_text": per_token[~is_traj].mean() if (~is_traj).any() else zero,
        "ce_trajectory": per_token[is_traj].mean() if is_traj.any() else zero,
    }
    if flow_matching:
        cache = out.past_key_values
        if insulate_vlm:
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys.detach(), layer.values.detach()
        if bool((batch["future_start"] < 0).any()):
            raise ValueError("every target must hold <|traj_future_start|> for the expert")
        ctx = policy.expert_context(
            cache, batch["attention_mask"], batch["future_start"], rope_deltas
        )
        x = policy.action_space.normalise(batch["controls"])
        losses["fm"] = flow_matching_loss(
            lambda xt, t: policy.expert_velocity(ctx, xt, t), x, generator=generator
        )
    return losses


def token_logprobs(
    policy: Any, batch: dict[str, torch.Tensor], temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the label tokens: logp (B, L-1) (0 where no label) and the
    mask (B, L-1) of label positions, aligned with labels[:, 1:]."""
    batch = _to(batch, policy.device, policy.vlm.dtype)
    out, _ = _forward(policy, batch, use_cache=False)
    logits, targets, target_mask = _label_logits(policy, out.last_hidden_state, batch["labels"])
    logp = torch.log_softmax(logits / temperature, dim=-1).gather(1, targets[:, None])[:, 0]
    full = torch.zeros(target_mask.shape, dtype=logp.dtype, device=logp.device)
    full[target_mask] = logp
    return full, target_mask
