"""Loading a checkpoint peaks at about the size of its weights in the target dtype: no
float32 copy first (that needed 2x the bf16 size, ~44 GB for the released 10B). Measured in
a fresh interpreter as the peak growth of its anonymous resident memory (RssAnon, sampled
every millisecond): the safetensors files are memory-mapped, and their clean, reclaimable
file pages are not what the weights cost (nor do they count on a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from alpamayo_ros.model.tiny import make_tiny_checkpoint

PROBE = """
import json, sys, threading, time, torch
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.config import AlpamayoConfig
from alpamayo_ros.model.processor import AlpamayoProcessor

def anon():
    with open("/proc/self/status") as f:
        return int(f.read().split("RssAnon:")[1].split()[0]) * 1024

folder, dtype = sys.argv[1], sys.argv[2]
# everything but the weights first (imports, tokenizer), so the growth is the weights'
config = AlpamayoConfig.from_file(folder)
AlpamayoProcessor.from_pretrained(folder, config)
before, peak, done = anon(), [0], threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], anon())
        time.sleep(0.001)

thread = threading.Thread(target=sample)
thread.start()
policy = AlpamayoPolicy.from_pretrained(folder, dtype=dtype)
done.set()
thread.join()
size = sum(p.numel() * p.element_size() for p in policy.state_dict().values())
print(json.dumps({"growth": max(peak[0], anon()) - before, "weights": size}))
"""


@pytest.fixture(scope="module")
def medium_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("medium") / "ckpt", size="medium")


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_loading_peaks_at_the_weights_size(medium_checkpoint, dtype):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(medium_checkpoint), dtype],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["weights"] > 150e6 if dtype == "bfloat16" else probe["weights"] > 300e6
    # Peak growth within 1.15x the weights (the engine issue's target) plus 30 MB of
    # allocator and safetensors slack; a float32 build first would be >= 2x for bfloat16.
    assert probe["growth"] <= 1.15 * probe["weights"] + 30e6, probe
