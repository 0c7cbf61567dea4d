"""What navigation guidance costs (Alpamayo 1.5): per-stage latency of plans with route
text at guidance weight 1 (none) and w (classifier-free guidance), and the number of vision
encoder, language-model and expert forward passes each makes.

    python bench/navigation_guidance.py                     # fresh tiny 1.5 checkpoint, CPU
    python bench/navigation_guidance.py --checkpoint DIR --device cuda --dtype bfloat16
    python bench/navigation_guidance.py --released-shapes --device cuda --dtype bfloat16

The target (issue 14): guidance costs at most one extra prefill (the prompt without the
route span, then the guided causal chain replayed through it) and doubles only the expert's
steps. Prints a table and, with --json FILE, writes the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpamayo_ros.core.cameras import ALPAMAYO1_CAMERAS
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.tiny import make_tiny_checkpoint, released_random_policy
from alpamayo_ros.planning.requests import PlanRequest
from bench.model_latency import make_request

STAGES = ("preprocess", "prefill", "reasoning", "guidance_prefill", "trajectory", "total")


def request(size: tuple[int, int], cameras: int, frames: int, nav: str) -> PlanRequest:
    """model_latency's request (noise frames, a straight 10 m/s history), cut to `cameras`
    cameras of `frames` frames, with route text."""
    full = make_request(np.random.default_rng(0), size)  # 4 cameras x 4 frames
    images = tuple(
        full.images[4 * c + 4 - frames + k] for c in range(cameras) for k in range(frames)
    )
    return dataclasses.replace(
        full, images=images, cameras=ALPAMAYO1_CAMERAS[:cameras], navigation=nav
    )


def count_passes(policy: AlpamayoPolicy) -> tuple[dict[str, int], list]:
    counts = {"vision": 0, "language_model": 0, "expert": 0}

    def hook(name):
        def fn(*_):
            counts[name] += 1

        return fn

    handles = [
        policy.vlm.model.visual.register_forward_hook(hook("vision")),
        policy.vlm.model.language_model.register_forward_hook(hook("language_model")),
        policy.expert.register_forward_hook(hook("expert")),
    ]
    return counts, handles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="Alpamayo 1.5 checkpoint (default: a tiny one)")
    parser.add_argument("--released-shapes", action="store_true", help="10B shapes, random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--weight", type=float, default=1.5, help="guidance weight w")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--reasoning-tokens", type=int, default=40)
    parser.add_argument("--flow-steps", type=int, default=10)
    parser.add_argument("--cameras", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--frames", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--image-size", default="1920x1080")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    dtype = getattr(torch, args.dtype)
    if args.released_shapes:
        policy = released_random_policy(args.device, dtype, family="alpamayo1_5")
    else:
        path = args.checkpoint or make_tiny_checkpoint(
            Path(tempfile.mkdtemp()) / "tiny15", family="alpamayo1_5"
        )
        policy = AlpamayoPolicy.from_pretrained(path, dtype=dtype, device=args.device)
    if policy.config.family != "alpamayo1_5":
        parser.error(f"{args.checkpoint} is {policy.config.family}: guidance needs Alpamayo 1.5")
    w, h = (int(v) for v in args.image_size.split("x"))
    req = request((w, h), args.cameras, args.frames, "Turn left in 30m")
    rows = {}
    for weight in (1.0, args.weight):
        kw = dict(
            num_samples=args.samples, max_reasoning_tokens=args.reasoning_tokens,
            num_flow_steps=args.flow_steps, navigation_guidance=weight, temperature=0.0,
        )  # fmt: skip
        for i in range(args.warmup):
            policy.plan([req], seed=i, **kw)
        counts, handles = count_passes(policy)
        timings: dict[str, list[float]] = {s: [] for s in STAGES}
        start = time.perf_counter()
        for i in range(args.iters):
            result = policy.plan([req], seed=i, **kw)
            for stage in STAGES:
                timings[stage].append(result.timings_ms.get(stage, 0.0))
        wall = time.perf_counter() - start
        for h in handles:
            h.remove()
        rows[weight] = {
            "p50_ms": {s: float(np.percentile(v, 50)) for s, v in timings.items()},
            "passes_per_plan": {k: v / args.iters for k, v in counts.items()},
            "plans_per_second": args.iters / wall,
        }
    base, guided = rows[1.0], rows[args.weight]
    print(f"device {args.device} {args.dtype}; {args.cameras} cameras x {args.frames} frames, "
          f"{args.samples} samples, {args.reasoning_tokens} reasoning tokens (greedy), "
          f"{args.flow_steps} flow steps, {args.iters} plans each")  # fmt: skip
    print(f"{'stage p50 [ms]':<18}{'w = 1':>10}{f'w = {args.weight:g}':>12}")
    for stage in STAGES:
        print(f"{stage:<18}{base['p50_ms'][stage]:>10.1f}{guided['p50_ms'][stage]:>12.1f}")
    print(f"{'forward passes':<18}{'w = 1':>10}{f'w = {args.weight:g}':>12}")
    for k in base["passes_per_plan"]:
        print(f"{k:<18}{base['passes_per_plan'][k]:>10.1f}{guided['passes_per_plan'][k]:>12.1f}")
    b, g = base["passes_per_plan"], guided["passes_per_plan"]
    print(
        f"guidance: +{g['vision'] - b['vision']:g} vision pass, "
        f"+{g['language_model'] - b['language_model']:g} language-model passes (the unguided "
        f"prefill and the chain replay), expert x{g['expert'] / b['expert']:g}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
