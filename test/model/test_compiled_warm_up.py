"""The node's warm-up on the fast engine: planned on synthetic frames before the first real
plan, it compiles what the first plans, trajectory-lane plans and chains on camera frames
of that size need, so none of them compiles."""

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_after_the_warm_up_the_first_real_plans_and_chains_compile_nothing(tiny_checkpoint):
    from torch._dynamo.utils import counters

    from alpamayo_ros.core.camera_rig import CameraRig
    from alpamayo_ros.model.policy import AlpamayoPolicy
    from alpamayo_ros.planning.planner import PlanInputs, Planner
    from alpamayo_ros.planning.settings import PlannerSettings
    from alpamayo_ros.planning.warm_up import WarmUpFrames, synthetic_inputs

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    policy.configure(engine="fast", vision_cache_frames=32)
    rig = CameraRig.released_default()
    settings = PlannerSettings(num_samples=2, seed=0, max_reasoning_tokens=8, num_flow_steps=2)
    planner = Planner(policy, rig, settings)
    spec = WarmUpFrames(width=96, height=64)
    counters.clear()
    planner.warm_up(synthetic_inputs(rig, spec), two_lane=True)
    assert counters["stats"]["unique_graphs"] > 0  # the warm-up is where it compiled

    rng = np.random.default_rng(0)

    def camera_inputs(t0: float) -> PlanInputs:
        """Frames of the warm-up's size with other pixels, a car moving at 5 m/s."""
        synthetic = synthetic_inputs(rig, spec, t0=t0)
        images = tuple(
            tuple(rng.integers(0, 255, img.shape, dtype=np.uint8) for img in cam)
            for cam in synthetic.frames.images
        )
        xyz = synthetic.ego.xyz.copy()
        xyz[:, 0] = 5.0 * (synthetic.ego.stamps - t0)  # metres behind the car at t0
        ego = replace(synthetic.ego, xyz=xyz, speed=5.0)
        return PlanInputs(t0, replace(synthetic.frames, images=images), ego)

    counters.clear()
    first = camera_inputs(10.0)
    full = planner.run(first)
    assert not full.plan.fallback_reason.startswith("model error"), full.plan.fallback_reason
    assert full.chain is not None
    planner.run(camera_inputs(10.1), full.chain)
    steps = planner.reasoning_steps(camera_inputs(10.2))
    while True:
        try:
            next(steps)
        except StopIteration as done:
            assert done.value is not None
            break
    assert counters["stats"]["unique_graphs"] == 0
    assert dict(counters["recompiles"]) == {}
