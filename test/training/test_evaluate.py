"""Evaluation: an oracle that plans what the driver did, and says what the annotation says,
scores zero error and full consistency; the constant-velocity baseline does not."""

from dataclasses import replace

import numpy as np
import pytest

from alpamayo_ros.core.metrics import constant_velocity_xy
from alpamayo_ros.core.trajectory import UnicycleSpec, integrate
from alpamayo_ros.planning.requests import PlanResult, PolicySample
from alpamayo_ros.training.evaluate import evaluate_policy


class Oracle:
    """Plans each sample's logged future (its fitted controls) with its annotated text."""

    def __init__(self, samples) -> None:
        # t0 alone can repeat across drives: the speed tells them apart
        self.by_t0 = {(round(s.t0, 6), round(s.v0, 6)): s for s in samples}

    def plan(self, requests, num_samples=1, **_):
        out = []
        for req in requests:
            s = self.by_t0[(round(req.ego.t0, 6), round(req.ego.speed, 6))]
            roll = integrate(s.controls, s.v0, UnicycleSpec(integration="trapezoid"))
            xyz, rot = roll.to_xyz_rot()
            out.append([PolicySample(s.reasoning, s.controls, roll, xyz, rot, True)] * num_samples)
        return PlanResult(out, {})


def test_constant_velocity():
    xy = constant_velocity_xy(10.0, 64, 0.1)
    assert xy[9] == pytest.approx([10.0, 0.0]) and np.all(xy[:, 1] == 0)


def test_oracle_scores_zero_and_full_consistency(samples):
    report = evaluate_policy(Oracle(samples), samples, num_samples=2, batch_size=4)
    assert report.samples == len(samples)
    assert report.model["ade_3.0s"] < 0.05 and report.model["fde_6.4s"] < 0.05
    # braking scenes: keeping the speed is far off
    assert report.constant_velocity["ade_3.0s"] > 10 * report.model["ade_3.0s"]
    assert report.consistency == 1.0 and report.annotation_agreement == 1.0
    assert report.examples and report.examples[0]["reasoning"] == samples[0].reasoning


def test_a_dataset_is_evaluated_a_batch_at_a_time(dataset, samples):
    """`evaluate` decoded every sample of the dataset into one list before the first plan
    (~100 MB a full-HD sample): now the samples are decoded as they are evaluated, a batch
    at a time, with the same report."""
    from alpamayo_ros.training.dataset import iter_samples

    drawn: list[int] = []

    def counted():
        for k, sample in enumerate(iter_samples(dataset, stride=2)):
            drawn.append(k)
            yield sample

    oracle = Oracle(samples)
    seen: list[int] = []
    plan = oracle.plan
    oracle.plan = lambda requests, **kw: seen.append(len(drawn)) or plan(requests, **kw)
    report = evaluate_policy(oracle, counted(), num_samples=2, batch_size=4)
    assert seen[0] == 4 and seen == sorted(seen) and report.samples == len(samples[::2])
    whole = evaluate_policy(Oracle(samples), samples[::2], num_samples=2, batch_size=4)
    assert report.as_dict() == whole.as_dict()


def test_the_planners_evaluation_scores_samples_held_at_standstill(samples):
    """A policy braking through zero: scored as the planner publishes it (stopped, the same
    path until the stop), and as drawn (rolling backwards) with hold_at_standstill off."""
    from alpamayo_ros.planning.settings import PlannerSettings
    from alpamayo_ros.training.evaluate import evaluate_as_planner

    class Braking:
        def plan(self, requests, num_samples=1, **_):
            controls = np.tile([-6.0, 0.0], (64, 1))
            out = []
            for req in requests:
                roll = integrate(controls, req.ego.speed, UnicycleSpec(integration="trapezoid"))
                xyz, rot = roll.to_xyz_rot()
                out.append([PolicySample("Stop: x.", controls, roll, xyz, rot, True)])
            return PlanResult(out, {})

    settings = PlannerSettings(num_samples=1, seed=0)
    held = evaluate_as_planner(Braking(), samples, settings)
    drawn = evaluate_as_planner(Braking(), samples, replace(settings, hold_at_standstill=False))
    assert held.samples == drawn.samples == len(samples)
    assert held.model["ade_1.0s"] == pytest.approx(drawn.model["ade_1.0s"], rel=0.2)
    assert held.model["fde_6.4s"] < drawn.model["fde_6.4s"] - 10.0  # not 100 m backwards
