"""Peak memory of reading a full-HD training dataset: ShardDataset's shuffle buffer and
`evaluate` (the figures in the README's Training section and the closing note).

    python bench/dataset_memory.py --out bench/results/dataset-memory.json
    PYTHONPATH=OTHER_CHECKOUT python bench/dataset_memory.py ...   # the same on other code

Writes a synthetic drive at --width x --height (default 1920x1080, 9 s) and its dataset
(one shard) into --work, then in a fresh process each: iterates ShardDataset (shuffle,
buffer 512) and runs `alpamayo-ros evaluate` with a tiny checkpoint, reporting peak
resident memory (VmHWM), wall time and, for the iteration, the time to the first
sample. The code measured is what `alpamayo_ros` imports as (PYTHONPATH decides).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ)  # as given (opencv's import adds its lib64 to LD_LIBRARY_PATH)
# Peak resident memory of this process alone: VmHWM. (ru_maxrss survives execve: a child
# of this bench reported the bench's own peak from building the dataset, 847 MB.)
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"

ITERATE = f"""
import json, sys, time
from alpamayo_ros.training.dataset import ShardDataset
start = time.perf_counter(); first = None; n = 0
for record in ShardDataset(sys.argv[1], shuffle=True, buffer=512, seed=0):
    n += 1
    first = time.perf_counter() - start if first is None else first
print(json.dumps({{"records": n, "first_s": first, "wall_s": time.perf_counter() - start,
                  "peak_rss_mb": {PEAK}}}))
"""

EVALUATE = f"""
import json, sys, time
from alpamayo_ros.cli import main
start = time.perf_counter()
code = main(["evaluate", sys.argv[1], sys.argv[2], "--out", sys.argv[3]])
print(json.dumps({{"exit": code, "wall_s": time.perf_counter() - start,
                  "peak_rss_mb": {PEAK}}}))
"""


def run(code: str, *args: str) -> dict:
    """The JSON line a fresh Python process running `code` prints last (run from "/", so
    that the package comes from PYTHONPATH or the installed one, not the current folder)."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=ENV, check=True, cwd="/")  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument("--work", type=Path, default=Path("out/dataset_memory"))
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--duration", type=float, default=9.0, help="s of drive")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from alpamayo_ros.bag.sample_drive import write_sample_bag
    from alpamayo_ros.core.camera_rig import CameraRig
    from alpamayo_ros.model.tiny import make_tiny_checkpoint
    from alpamayo_ros.training.dataset import build_dataset

    work = args.work
    bag, data, ckpt = work / "drive", work / "data", work / "tiny"
    if not bag.exists():
        write_sample_bag(bag, seed=11, kind="lead_brake", duration=args.duration,
                         width=args.width, height=args.height)  # fmt: skip
    build = build_dataset([bag], bag / "coc_annotations.jsonl", data,
                          CameraRig.released_default(), per_shard=256, progress=False)  # fmt: skip
    if not ckpt.exists():
        make_tiny_checkpoint(ckpt)
    result = {
        "frames": f"{args.width}x{args.height}",
        "samples": build.samples,
        "shard_mb": sum(p.stat().st_size for p in data.glob("*.tar")) / 1e6,
        "code": ENV.get("PYTHONPATH") or "the installed alpamayo_ros",
        "load_average": os.getloadavg(),
        "shard_dataset": run(ITERATE, str(data)),
        "evaluate": run(EVALUATE, str(ckpt), str(data), str(work / "metrics.json")),
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
