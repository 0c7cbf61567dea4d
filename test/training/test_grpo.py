"""GRPO: group advantages, the KL term, and one step that favours the preferred rollouts."""

import copy

import numpy as np
import pytest
import torch

from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.tiny import make_tiny_checkpoint
from alpamayo_ros.training.grpo import (
    GRPOSettings,
    group_advantages,
    grpo_loss,
    grpo_step,
    kl_k3,
    rollout,
)
from alpamayo_ros.training.objectives import token_logprobs, training_batch


def test_group_advantages_hand_computed():
    rewards = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    adv = group_advantages(rewards, eps=0.0 + 1e-12)
    assert adv[0].tolist() == pytest.approx([-1.0, 1.0])  # mean 2, std 1
    assert adv[1].tolist() == pytest.approx([0.0, 0.0])  # no preference within the group


def test_kl_is_zero_when_policy_is_reference_and_positive_otherwise():
    logp = torch.log(torch.tensor([[0.2, 0.5]]))
    assert torch.all(kl_k3(logp, logp) == 0)
    assert torch.all(kl_k3(logp, logp + 0.3) > 0)
    mask = torch.ones_like(logp, dtype=torch.bool)
    _, stats = grpo_loss(logp, logp, logp, mask, torch.tensor([1.0]), GRPOSettings())
    assert stats["kl"] == 0.0 and stats["clip_fraction"] == 0.0


def test_clipping_limits_the_ratio():
    old = torch.zeros(1, 1)
    mask = torch.ones(1, 1, dtype=torch.bool)
    s = GRPOSettings(kl_beta=0.0)
    # ratio e^1 = 2.72 with a positive advantage: the objective is capped at (1 + 0.28) A
    loss, stats = grpo_loss(torch.ones(1, 1), old, old, mask, torch.tensor([1.0]), s)
    assert float(loss) == pytest.approx(-1.28) and stats["clip_fraction"] == 1.0


def test_one_step_raises_the_preferred_rollouts_log_probability(samples, tmp_path):
    policy = AlpamayoPolicy.from_pretrained(make_tiny_checkpoint(tmp_path / "ckpt", seed=2))
    reference = copy.deepcopy(policy)
    prompts = samples[:2]
    settings = GRPOSettings(group_size=4, max_reasoning_tokens=6, kl_beta=0.04)
    target = prompts[0].future_xyz[:, :2]

    def reward(trajectories, **_):  # prefer plans close to a known trajectory
        return [-float(np.linalg.norm(r.xy - target, axis=-1).mean()) for r in trajectories]

    # The same seed gives the same rollouts inside grpo_step.
    rolls = rollout(policy, prompts, settings, seed=7)
    scores = np.array(reward(rolls.columns["trajectories"])).reshape(2, 4)
    best = [4 * b + int(np.argmax(scores[b])) for b in range(2)]
    worst = [4 * b + int(np.argmin(scores[b])) for b in range(2)]
    batch = training_batch(policy.processor, rolls.samples, rolls.continuations)

    def seq_logp(model):
        with torch.no_grad():
            logp, mask = token_logprobs(model, batch)
        return (logp * mask).sum(dim=1)

    before = seq_logp(policy)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    stats = grpo_step(policy, reference, prompts, reward, optimizer, settings, seed=7)
    assert stats["kl"] == 0.0  # the first update starts from the reference
    after = seq_logp(policy)
    assert torch.all(after[best] > before[best]), (before[best], after[best])
    assert torch.all(after[worst] < before[worst]), (before[worst], after[worst])
