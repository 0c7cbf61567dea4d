"""How faithful two-lane plans are to full plans: ADE/FDE of both against the logged motion.

    python bench/lanes_faithfulness.py --work out/demo [--pandaset ../shared/data/pandaset_seq002]

Replays the demo's 12 held-out drives (made by bench/eval_demo.py or train-demo in --work)
and the PandaSet drive with the demo checkpoint, once per planning mode, on the simulated
schedule of fixed latencies (--latency-ms, default 300,60: the engine issue's GPU targets),
so the result does not depend on this machine's speed or load. Prints per source and mode
the displacement errors (mean over model plans, with their count), model plans per second of
bag time and the causal-chain age; --out writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpamayo_ros.bag.replay import replay_bag
from alpamayo_ros.checkpoints import DEMO_CHECKPOINT
from alpamayo_ros.cli import _lane_latency
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.planning.settings import PlannerSettings

KEYS = ("ade_1.0s", "ade_3.0s", "ade_6.4s", "fde_3.0s")


def replay_all(bags, policy, rig, mode, latency):
    per_key: dict[str, list[float]] = {k: [] for k in KEYS}
    plans = seconds = 0.0
    chain_ages: list[float] = []
    for bag in bags:
        with tempfile.TemporaryDirectory() as out:
            result = replay_bag(
                bag, policy, rig, out, PlannerSettings(seed=0), progress=False,
                realtime=True, planning_mode=mode, latency=latency,
            )  # fmt: skip
        model = [s for s in result.steps if not s.plan.is_fallback]
        for s in model:
            for k in KEYS:
                if k in s.metrics:
                    per_key[k].append(s.metrics[k])
        chain_ages += [s.plan.stamp - s.plan.chain_stamp for s in model]
        plans += len(model)
        seconds += result.bag_seconds
    return {
        **{k: {"mean_m": float(np.mean(v)), "plans": len(v)} for k, v in per_key.items() if v},
        "model_plans_per_bag_second": plans / seconds,
        "chain_age_s": {"mean": float(np.mean(chain_ages)), "max": float(np.max(chain_ages))},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="out/demo", help="folder with test_bags/ (eval_demo)")
    shared = Path(__file__).resolve().parents[2] / "shared"
    parser.add_argument("--pandaset", default=str(shared / "data" / "pandaset_seq002"))
    parser.add_argument("--latency-ms", default="300,60")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    latency = _lane_latency(args.latency_ms)
    policy = AlpamayoPolicy.from_pretrained(DEMO_CHECKPOINT)
    sources = {}
    held_out = sorted((Path(args.work) / "test_bags").iterdir())
    if held_out:
        sources["demo held-out drives"] = (held_out, CameraRig.released_default())
    pandaset = Path(args.pandaset)
    if (pandaset / "metadata.yaml").is_file():
        rig = CameraRig.from_yaml(Path(__file__).resolve().parents[1] / "config" /
                                  "pandaset_cameras.yaml")  # fmt: skip
        sources["PandaSet seq 002"] = ([pandaset], rig)
    figures = {}
    for name, (bags, rig) in sources.items():
        for mode in ("full", "two_lane"):
            figures[f"{name} / {mode}"] = fig = replay_all(bags, policy, rig, mode, latency)
            ade = " ".join(f"{k} {fig[k]['mean_m']:.3f} m ({fig[k]['plans']})"
                           for k in KEYS if k in fig)  # fmt: skip
            print(f"{name:22s} {mode:8s} {ade}; {fig['model_plans_per_bag_second']:.1f} model "
                  f"plans/s; chain age mean {fig['chain_age_s']['mean']:.2f} s, max "
                  f"{fig['chain_age_s']['max']:.2f} s", flush=True)  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
