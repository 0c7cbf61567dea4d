"""Held-out metrics of the demo checkpoint (the numbers in the README and the closing note).

    python bench/eval_demo.py                         # the shipped alpamayo_ros/demo_checkpoint
    python bench/eval_demo.py --checkpoint DIR --work out/demo

Regenerates the held-out synthetic drives (seeds 5000-5011, never used in training; reused
when already in --work), builds their dataset, plans every evaluated sample once (greedy
reasoning, one flow-matching sample) and prints ADE/FDE against the constant-velocity
baseline and the reasoning-action consistency. Deterministic on a given machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpamayo_ros.checkpoints import DEMO_CHECKPOINT
from alpamayo_ros.cli import _print_eval
from alpamayo_ros.training.demo import DemoSettings, evaluate_demo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT))
    parser.add_argument("--work", default="out/demo", help="folder of the held-out drives")
    parser.add_argument("--out", help="write the metrics as JSON here")
    args = parser.parse_args()
    start = time.perf_counter()
    metrics = evaluate_demo(args.checkpoint, Path(args.work), DemoSettings())
    _print_eval(metrics)
    print(f"({time.perf_counter() - start:.0f} s, checkpoint {args.checkpoint})")
    if args.out:
        Path(args.out).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
