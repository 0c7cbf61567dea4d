"""Per-stage latency (p50/p99) and peak memory of AlpamayoPolicy.plan().

    python bench/model_latency.py                              # tiny checkpoint, CPU
    python bench/model_latency.py --checkpoint DIR --device cuda --dtype bfloat16
    python bench/model_latency.py --released-shapes --device cuda --dtype bfloat16 --json out.json

Every stage is also reported against its hardware floor (bench/floors.py: H100 defaults,
--bandwidth / --peak-tflops for another card), and with --json written to a file.

--released-shapes builds the released 10B shapes (Qwen3-VL-8B backbone + 2.3B expert) with
random weights directly on the device: the latency of the real model, not its outputs.
Inputs: 4 cameras x 4 frames of 1920x1080 noise (resized by the processor as released; --jpeg:
camera-like JPEGs the model decodes) and a straight ego history at 10 m/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpamayo_ros.core.ego_history import EgoPoseBuffer, StampedPose
from alpamayo_ros.core.encoded_image import EncodedImage
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.quantization import QUANTIZATIONS, quantize
from alpamayo_ros.model.tiny import make_tiny_checkpoint, released_random_policy
from alpamayo_ros.planning.requests import PlanRequest
from bench.floors import H100_BANDWIDTH, H100_BF16_FLOPS, ModelSizes, plan_floors

STAGES = ("preprocess", "prefill", "reasoning", "trajectory", "total")


def jpeg_frame(rng: np.random.Generator, size: tuple[int, int], quality: int = 90) -> EncodedImage:
    """A (W, H) = size camera-like JPEG: smooth shapes plus fine grain (~150-400 KB at
    full HD and quality 90, as camera JPEGs are; noise would compress ~10x worse)."""
    w, h = size
    coarse = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img = cv2.add(img, rng.integers(0, 12, (h, w, 3), dtype=np.uint8))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return EncodedImage.from_jpeg(buf.tobytes(), "bench frame")


def make_request(
    rng: np.random.Generator, size: tuple[int, int], jpeg: bool = False
) -> PlanRequest:
    """16 frames of (W, H) = size: noise arrays, or with `jpeg` camera-like JPEGs the model
    decodes (on its device where it can: model.frame_decoding)."""
    buf = EgoPoseBuffer()
    for k in range(20):
        buf.add(StampedPose(0.1 * k, (1.0 * k, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    images: tuple = tuple(
        jpeg_frame(rng, size) if jpeg else rng.integers(0, 255, (size[1], size[0], 3), np.uint8)
        for _ in range(16)
    )
    return PlanRequest(images, buf.history(1.9))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="checkpoint folder (default: a fresh tiny one)")
    parser.add_argument("--released-shapes", action="store_true", help="10B shapes, random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--samples", type=int, default=6, help="trajectory samples per plan")
    parser.add_argument("--reasoning-tokens", type=int, default=40, help="tokens decoded")
    parser.add_argument("--flow-steps", type=int, default=None, help="default: the config's")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--image-size", default="1920x1080", help="camera frame WxH")
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "flash_attention_2"])
    parser.add_argument(
        "--compile-expert",
        action="store_true",
        help="torch.compile the static engine's expert pass (CUDA graphs)",
    )
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=H100_BANDWIDTH / 1e12,
        help="memory bandwidth for the floors, TB/s (H100: 3.0 measured)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_BF16_FLOPS / 1e12,
        help="dense peak for the floors, TFLOP/s (H100 bf16: 989)",
    )
    parser.add_argument("--json", help="write the figures (stages, floors, ratios) here")
    parser.add_argument(
        "--engine",
        default="eager",
        choices=["eager", "static", "fast"],
        help="decode engine (static: fixed-shape StaticCache steps; fast: what the planner's "
        "engine: fast sets, configure(engine='fast'): static, grouped attention, compiled)",
    )
    parser.add_argument(
        "--compile-decode",
        action="store_true",
        help="torch.compile the static engine's decode step (CUDA graphs)",
    )
    parser.add_argument(
        "--quant",
        default="none",
        choices=QUANTIZATIONS,
        help="model.float8 (fp8_prefill: decode on the original weights)",
    )
    parser.add_argument(
        "--vision-cache", type=int, default=0, help="frames kept by the vision cache (0: off)"
    )
    parser.add_argument(
        "--jpeg",
        action="store_true",
        help="frames as camera-like JPEGs the model decodes (nvJPEG on CUDA with torchvision)",
    )
    args = parser.parse_args()

    dtype = getattr(torch, args.dtype)
    t = time.perf_counter()
    if args.released_shapes:
        policy = released_random_policy(args.device, dtype, args.attn)
    else:
        folder = args.checkpoint
        if folder is None:
            folder = make_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny")
        policy = AlpamayoPolicy.from_pretrained(
            folder, dtype=dtype, device=args.device, attn_implementation=args.attn
        )
    mode = "reduce-overhead" if args.device.startswith("cuda") else "default"
    if (args.compile_decode or args.compile_expert) and args.engine != "static":
        parser.error("--compile-decode and --compile-expert need --engine static")
    if args.engine == "fast":
        policy.configure("fast", args.vision_cache, args.quant)
    elif args.quant != "none":
        quantize(policy, args.quant)
    if args.vision_cache:
        policy.enable_vision_cache(args.vision_cache)
    if args.compile_decode:
        policy.compile_decode(mode)
    if args.compile_expert:
        policy.compile_expert(mode)
    load_s = time.perf_counter() - t
    params = sum(p.numel() for p in policy.parameters())
    size = tuple(int(v) for v in args.image_size.split("x"))
    rng = np.random.default_rng(0)
    request = make_request(rng, (size[0], size[1]), jpeg=args.jpeg)

    # Force a fixed number of reasoning tokens: random weights rarely emit the stop token.
    times: dict[str, list[float]] = {s: [] for s in STAGES}
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for i in range(args.warmup + args.iters):
        result = policy.plan(
            [request],
            num_samples=args.samples,
            seed=i,
            max_reasoning_tokens=args.reasoning_tokens,
            num_flow_steps=args.flow_steps,
            temperature=0.6,
            engine=None if args.engine == "fast" else args.engine,
        )
        if i >= args.warmup:
            for s in STAGES:
                times[s].append(result.timings_ms[s])

    print(f"model: {policy.model_id} ({params / 1e9:.3f} B parameters), loaded in {load_s:.1f} s")
    device_name = (
        torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    )
    print(
        f"device: {args.device} ({device_name}), dtype {args.dtype}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    steps = args.flow_steps or policy.config.flow_matching.num_inference_steps
    print(
        f"input: 16 frames {args.image_size}{' JPEG' if args.jpeg else ''}; "
        f"{args.samples} samples; up to "
        f"{args.reasoning_tokens} reasoning tokens; {steps} flow steps; {args.iters} runs"
    )
    print(f"{'stage':<12}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for s in STAGES:
        v = np.asarray(times[s])
        p50, p99 = np.percentile(v, [50, 99])
        print(f"{s:<12}{p50:10.1f}{p99:10.1f}{v.mean():10.1f}")
    print(f"plans/s (1 request, {args.samples} samples): {1000.0 / np.median(times['total']):.2f}")
    peak_gib = None
    if args.device.startswith("cuda"):
        peak_gib = torch.cuda.max_memory_allocated() / 2**30
        print(f"peak GPU memory: {peak_gib:.2f} GiB")

    inputs = policy.processor([request])
    prompt_tokens = int(inputs["input_ids"].shape[1])
    patches = int(inputs["image_grid_thw"].prod(dim=-1).sum())
    sizes = ModelSizes.of(policy)
    floors = plan_floors(
        sizes, torch.finfo(dtype).bits / 8, prompt_tokens, patches, args.reasoning_tokens,
        steps, bandwidth=args.bandwidth * 1e12, flops=args.peak_tflops * 1e12,
    )  # fmt: skip
    p50 = {s: float(np.percentile(times[s], 50)) for s in STAGES}
    ratios = floors.ratios(p50)
    print(
        f"floors at {args.bandwidth:g} TB/s and {args.peak_tflops:g} TFLOP/s "
        f"({prompt_tokens} prompt tokens, {patches} vision patches):"
    )
    for stage in ("prefill", "reasoning", "trajectory"):
        floor = getattr(floors, f"{stage}_ms")
        print(f"  {stage:<11} floor {floor:8.1f} ms; p50 {p50[stage]:8.1f} ms = "
              f"{ratios.get(stage, float('nan')):.1f}x")  # fmt: skip
    if args.json:
        doc = {
            "args": vars(args),
            "model": policy.model_id,
            "parameters": {"text": sizes.text, "vision": sizes.vision, "expert": sizes.expert},
            "device": device_name,
            "torch": torch.__version__,
            "prompt_tokens": prompt_tokens,
            "vision_patches": patches,
            "p50_ms": p50,
            "p99_ms": {s: float(np.percentile(times[s], 99)) for s in STAGES},
            "floors_ms": {k.removesuffix("_ms"): v for k, v in vars(floors).items()},
            "ratio_to_floor": ratios,
            "peak_gpu_gib": peak_gib,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
