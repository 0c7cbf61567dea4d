"""GRPO (group relative policy optimisation) of the policy's discrete path.

For each prompt, G rollouts (causal chain + 128 trajectory tokens, sampled), one reward per
rollout, advantages relative to the group (reward minus the group mean, over the group
std), and a clipped policy-gradient loss on every generated token with a KL penalty to a
frozen reference policy (the SFT checkpoint):

    ratio = exp(logp - logp_old)
    loss  = mean_seq mean_tok [ -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A)
                                + beta (exp(ref - logp) - (ref - logp) - 1) ]

(the k3 estimator of KL(policy || reference), as TRL's GRPOTrainer and the paper use; the
released RL used the discrete path, clip 0.2 / 0.28).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from alpamayo_ros.planning.requests import PlanRequest
from alpamayo_ros.training.dataset import DrivingSample
from alpamayo_ros.training.objectives import token_logprobs, training_batch
from alpamayo_ros.training.rewards import RewardFn
from alpamayo_ros.training.settings import GRPOSettings


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """(B, G) rewards -> (B, G) (r - mean over the group) / (std over the group + eps)."""
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True, unbiased=False)
    return (rewards - mean) / (std + eps)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference); exactly 0 where they agree."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    settings: GRPOSettings,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss above. logp, old_logp, ref_logp, mask: (N, L) token log-probabilities and
    which positions are generated tokens; advantages: (N,) one per sequence."""
    m = mask.float()
    ratio = torch.exp(logp - old_logp)
    a = advantages[:, None]
    clipped = torch.clamp(ratio, 1 - settings.clip_low, 1 + settings.clip_high)
    pg = -torch.minimum(ratio * a, clipped * a)
    kl = kl_k3(logp, ref_logp)
    per_token = pg + settings.kl_beta * kl
    tokens = m.sum(dim=1).clamp(min=1.0)
    loss = ((per_token * m).sum(dim=1) / tokens).mean()
    with torch.no_grad():
        stats = {
            "loss": float(loss),
            "kl": float(((kl * m).sum(dim=1) / tokens).mean()),
            "clip_fraction": float((((ratio - clipped).abs() > 1e-6).float() * m).sum() / m.sum()),
        }
    return loss, stats


@dataclass
class Rollouts:
    """G samples per prompt and what the rewards need, flattened prompt-major (N = B G)."""

    samples: list[DrivingSample]
    continuations: list[list[int]]
    columns: dict[str, list[Any]]


def rollout(
    policy: Any, prompts: list[DrivingSample], settings: GRPOSettings, seed: int
) -> Rollouts:
    """Sample G rollouts per prompt on the discrete path (no gradients)."""
    requests = [PlanRequest(tuple(s.images), s.ego_history()) for s in prompts]
    was_training = policy.training
    policy.eval()
    result = policy.plan(
        requests, num_samples=settings.group_size, temperature=settings.temperature,
        top_p=settings.top_p, max_reasoning_tokens=settings.max_reasoning_tokens, seed=seed,
        discrete=True, trajectory_temperature=settings.trajectory_temperature,
    )  # fmt: skip
    policy.train(was_training)
    samples, conts = [], []
    columns: dict[str, list[Any]] = {k: [] for k in ("completions", "trajectories", "v0",
                                                     "logged_xy", "agents")}  # fmt: skip
    for prompt, group in zip(prompts, result.samples, strict=True):
        for smp in group:
            samples.append(prompt)
            conts.append(list(smp.generated_ids))
            columns["completions"].append(smp.reasoning)
            columns["trajectories"].append(smp.rollout)
            columns["v0"].append(prompt.v0)
            columns["logged_xy"].append(prompt.future_xyz[:, :2])
            columns["agents"].append(prompt.agents)
    return Rollouts(samples, conts, columns)


def grpo_step(
    policy: Any,
    reference: Any,
    prompts: list[DrivingSample],
    reward_fn: RewardFn,
    optimizer: torch.optim.Optimizer,
    settings: GRPOSettings,
    seed: int = 0,
    backward: Any = None,
    logprob_fn: Any = None,
) -> dict[str, float]:
    """One GRPO iteration on a batch of prompts: rollouts, rewards, advantages, then
    `settings.updates` optimiser steps. `backward(loss)` defaults to loss.backward() and
    `logprob_fn(batch)` to token_logprobs(policy, batch) (accelerate passes its own, the
    DDP/FSDP-wrapped forward). Returns statistics for logging."""
    rolls = rollout(policy, prompts, settings, seed)
    rewards = torch.tensor(reward_fn(**rolls.columns), dtype=torch.float32)
    B, G = len(prompts), settings.group_size
    advantages = group_advantages(rewards.view(B, G)).view(-1).to(policy.device)
    batch = training_batch(policy.processor, rolls.samples, rolls.continuations)
    with torch.no_grad():
        old_logp, mask = token_logprobs(policy, batch)
        ref_logp, _ = token_logprobs(reference, batch)
    stats: dict[str, float] = {}
    for _ in range(settings.updates):
        logp, _ = logprob_fn(batch) if logprob_fn is not None else token_logprobs(policy, batch)
        loss, stats = grpo_loss(logp, old_logp, ref_logp, mask, advantages, settings)
        optimizer.zero_grad()
        (backward or (lambda x: x.backward()))(loss)
        optimizer.step()
    stats["reward_mean"] = float(rewards.mean())
    stats["reward_std_in_group"] = float(rewards.view(B, G).std(dim=1).mean())
    return stats
