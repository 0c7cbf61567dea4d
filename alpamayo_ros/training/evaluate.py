"""Open-loop evaluation of a policy on dataset samples, against a constant-velocity baseline.

For each sample the policy draws `num_samples` plans and the one the planner would publish
is chosen with the planner's rule (`sample_choice`); we measure its ADE/FDE to the logged
future at 1 s, 3 s and 6.4 s, the same for a constant-velocity baseline (straight ahead at
the speed at t0), and the reasoning-action consistency: whether the meta-actions its text
states match those of its trajectory (`consistency`; `sample_consistency` is the same over
every sample drawn, before any choice), and whether they match the annotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alpamayo_ros.core.meta_actions import (
    LONGITUDINAL,
    extract_meta_actions,
    is_consistent,
    meta_actions_in_text,
)
from alpamayo_ros.core.metrics import constant_velocity_xy, displacement_metrics
from alpamayo_ros.planning.planner import choose_sample, held_sample, self_consistent
from alpamayo_ros.planning.requests import PlanRequest
from alpamayo_ros.planning.settings import PlannerSettings, SampleChoice
from alpamayo_ros.training.dataset import DrivingSample


@dataclass
class EvalReport:
    """Means over samples: ADE/FDE (m) of the model and of the constant-velocity baseline,
    consistency (fraction of plans whose text matches their own trajectory) and agreement
    with the annotated longitudinal action."""

    samples: int = 0
    model: dict[str, float] = field(default_factory=dict)
    constant_velocity: dict[str, float] = field(default_factory=dict)
    consistency: float = 0.0
    sample_consistency: float = 0.0
    annotation_agreement: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "model": self.model,
            "constant_velocity": self.constant_velocity,
            "consistency": self.consistency,
            "sample_consistency": self.sample_consistency,
            "annotation_agreement": self.annotation_agreement,
            "examples": self.examples,
        }


def _chunks(samples: Iterable[DrivingSample], size: int) -> Iterator[list[DrivingSample]]:
    chunk: list[DrivingSample] = []
    for sample in samples:
        chunk.append(sample)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def evaluate_policy(
    policy: Any,
    samples: Iterable[DrivingSample],
    num_samples: int = 1,
    batch_size: int = 8,
    seed: int = 0,
    max_reasoning_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    num_flow_steps: int | None = None,
    examples: int = 8,
    sample_choice: SampleChoice = "consistent",
    hold_at_standstill: bool = False,
) -> EvalReport:
    """Plan every sample and score it (see the module docstring). `samples` may be a
    generator: they are read batch_size at a time (iter_samples decodes a dataset's one at a
    time). hold_at_standstill: the samples held at standstill as the planner publishes them
    (planning.planner.held_sample)."""
    model_metrics: list[dict[str, float]] = []
    cv_metrics: list[dict[str, float]] = []
    consistent, agree, sample_flags = [], [], []
    report = EvalReport()
    start = 0
    for chunk in _chunks(samples, batch_size):
        requests = [PlanRequest(tuple(s.images), s.ego_history()) for s in chunk]
        result = policy.plan(
            requests, num_samples=num_samples, temperature=temperature, top_p=top_p,
            max_reasoning_tokens=max_reasoning_tokens, seed=seed + start,
            num_flow_steps=num_flow_steps,
        )  # fmt: skip
        for sample, group in zip(chunk, result.samples, strict=True):
            if hold_at_standstill:
                group = [held_sample(smp) for smp in group]
            xy = np.stack([smp.rollout.xy for smp in group])
            flags = self_consistent(group, sample.v0)
            sample_flags.extend(flags.tolist())
            chosen = choose_sample(xy, sample_choice, flags)
            smp = group[chosen]
            true_xy = sample.future_xyz[:, :2]
            model_metrics.append(displacement_metrics(xy, true_xy, chosen=chosen))
            cv = constant_velocity_xy(sample.v0, len(true_xy))
            cv_metrics.append(displacement_metrics(cv[None], true_xy))
            roll = smp.rollout
            extracted = extract_meta_actions(roll.speed, roll.heading, roll.y, sample.v0, roll.dt)
            stated = meta_actions_in_text(smp.reasoning)
            consistent.append(is_consistent(stated, extracted))
            annotated = [a for a in sample.meta_actions if a in LONGITUDINAL]
            agree.append(bool(annotated) and annotated[0] in stated)
            if len(report.examples) < examples:
                report.examples.append(
                    {
                        "key": sample.key, "reasoning": smp.reasoning,
                        "annotation": sample.reasoning, "trajectory_actions": list(extracted),
                        "ade_3.0s": model_metrics[-1].get("ade_3.0s"),
                        "cv_ade_3.0s": cv_metrics[-1].get("ade_3.0s"),
                    }
                )  # fmt: skip
        start += len(chunk)
    report.samples = start
    keys = sorted({k for m in model_metrics for k in m})
    report.model = {k: float(np.mean([m[k] for m in model_metrics if k in m])) for k in keys}
    cv_keys = sorted({k for m in cv_metrics for k in m if not k.startswith("min_")})
    report.constant_velocity = {
        k: float(np.mean([m[k] for m in cv_metrics if k in m])) for k in cv_keys
    }
    report.consistency = float(np.mean(consistent)) if consistent else 0.0
    report.sample_consistency = float(np.mean(sample_flags)) if sample_flags else 0.0
    report.annotation_agreement = float(np.mean(agree)) if agree else 0.0
    return report


def evaluate_as_planner(
    policy: Any, samples: list[DrivingSample], settings: PlannerSettings | None = None
) -> EvalReport:
    """evaluate_policy with the planner's sampling settings and sample choice (by default
    the planner node's and the replay's defaults): the plans users would see."""
    s = settings or PlannerSettings()
    return evaluate_policy(
        policy, samples, num_samples=s.num_samples, temperature=s.temperature, top_p=s.top_p,
        max_reasoning_tokens=s.max_reasoning_tokens, num_flow_steps=s.num_flow_steps,
        sample_choice=s.sample_choice, seed=0 if s.seed is None else s.seed,
        hold_at_standstill=s.hold_at_standstill,
    )  # fmt: skip
