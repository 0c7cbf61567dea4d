"""Every GPU figure of the engine and real-time issues in one process (one device call):
the card's ceilings, then the released 10B shapes (random bf16 weights) through the eager
reference and the fast path (static KV cache, compiled decode step and expert pass, CUDA
graphs), the trajectory lane, FP8, and transformers' own generate() on the same backbone.

    python bench/gpu_suite.py --out DIR [--budget-s 480] [--skip fp8,generate_reference]
    python bench/gpu_suite.py --out DIR --only fast_full,vision_cache_lane   # + what they need
    python bench/gpu_suite.py --out DIR --tiny      # the same sections on the CPU, tiny model

Sections run in order of importance; each is timed, and one that would not fit the time
left (--budget-s, an estimate) is skipped and says so. Figures go to DIR/gpu_suite.json
after every section (a run cut short keeps what it measured) and a table is printed last.
Stage times are the policy's own (torch.cuda.synchronize around each stage).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpamayo_ros.core.encoded_image import EncodedImage
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.quantization import quantize
from alpamayo_ros.model.tiny import make_tiny_checkpoint, released_random_policy
from bench.floors import ModelSizes, plan_floors
from bench.model_latency import STAGES, jpeg_frame, make_request

RESULTS: dict[str, Any] = {}
START = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - START


def save(out: Path) -> None:
    (out / "gpu_suite.json").write_text(json.dumps(RESULTS, indent=2, default=str) + "\n")


def stats(results: list[Any]) -> dict[str, dict[str, float]]:
    out = {}
    for s in STAGES:
        v = np.asarray([r.timings_ms[s] for r in results])
        out[s] = {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)),
                  "max": float(v.max()), "n": len(v)}  # fmt: skip
    return out


def ceilings() -> dict[str, float]:
    """Device-to-device copy bandwidth (bytes read + written) and a bf16 matmul rate."""
    src = torch.randn(2**30 // 2, dtype=torch.bfloat16, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    ms = []
    for _ in range(12):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        dst.copy_(src)
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b))
    bandwidth = 2 * src.numel() * 2 / (np.median(ms[2:]) / 1000)
    del src, dst
    n = 8192
    x = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    y = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    ms = []
    for _ in range(12):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        x @ y
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b))
    flops = 2 * n**3 / (np.median(ms[2:]) / 1000)
    return {"copy_bandwidth_tb_s": bandwidth / 1e12, "bf16_matmul_tflop_s": flops / 1e12}


def run_plans(policy, request, n, warmup, **kw) -> tuple[list[Any], float, Any]:
    """n timed plans after `warmup` untimed ones; returns results, the first call's seconds
    (compilation included) and the first result."""
    t = time.perf_counter()
    first = policy.plan([request], **kw)
    first_s = time.perf_counter() - t
    for _ in range(warmup - 1):
        policy.plan([request], **kw)
    return [policy.plan([request], **kw) for _ in range(n)], first_s, first


def agreement(a, b) -> dict[str, Any]:
    """Greedy-id agreement and trajectory difference of two plans' first samples."""
    ia, ib = a.samples[0][0].reasoning_token_ids, b.samples[0][0].reasoning_token_ids
    same = 0
    for x, y in zip(ia, ib, strict=False):
        if x != y:
            break
        same += 1
    return {
        "tokens": len(ia), "same_prefix_tokens": same, "ids_equal": ia == ib,
        "max_xyz_diff_m": float(np.abs(a.samples[0][0].xyz - b.samples[0][0].xyz).max()),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections to run, besides what the others need (ceilings, "
        "build, eager_reference_plans, fast_compile)",
    )
    parser.add_argument("--tokens", type=int, default=40, help="reasoning tokens decoded")
    parser.add_argument("--flow-steps", type=int, default=10)
    parser.add_argument("--image-size", default="1920x1080")
    parser.add_argument("--schedule-s", type=float, default=20.0,
                        help="wall seconds of the two_lane_schedule section")  # fmt: skip
    parser.add_argument(
        "--tiny", action="store_true", help="tiny checkpoint on the CPU (a dry run)"
    )
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    device = "cuda" if cuda else "cpu"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def back_to_back(fn, n: int = 20) -> float:
        """ms per call of fn run n times back to back after 3 warm-up calls (GPU time
        when the host keeps ahead)."""
        for _ in range(3):
            fn()
        sync()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return 1000 * (time.perf_counter() - t) / n

    def memory(peak: bool = True) -> float | None:
        if not cuda:
            return None
        value = torch.cuda.max_memory_allocated() if peak else torch.cuda.memory_allocated()
        return value / 2**30

    def reset_peak() -> None:
        if cuda:
            torch.cuda.reset_peak_memory_stats()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))
    needed = {"ceilings", "build", "eager_reference_plans", "fast_compile"}
    torch.backends.cuda.matmul.allow_tf32 = True

    def section(name: str, estimate_s: float):
        def wrap(fn):
            if name in skip or (only and name not in only | needed):
                RESULTS[name] = {"skipped": "--skip" if name in skip else "not in --only"}
                return None
            if elapsed() + estimate_s > args.budget_s:
                RESULTS[name] = {"skipped": f"{estimate_s:.0f} s would not fit "
                                 f"({elapsed():.0f} of {args.budget_s:.0f} s used)"}  # fmt: skip
                print(f"[{elapsed():6.1f} s] {name}: skipped", flush=True)
                save(out)
                return None
            t = time.perf_counter()
            print(f"[{elapsed():6.1f} s] {name} ...", flush=True)
            try:
                value = fn()
                RESULTS[name] = value
            except Exception as exc:  # a failed section is reported, the rest still run
                RESULTS[name] = {"error": f"{type(exc).__name__}: {exc}"}
                traceback.print_exc()
                value = None
            if isinstance(RESULTS[name], dict):
                RESULTS[name]["section_s"] = time.perf_counter() - t
            print(f"[{elapsed():6.1f} s] {name}: {json.dumps(RESULTS[name], default=str)[:600]}",
                  flush=True)  # fmt: skip
            save(out)
            return value

        return wrap

    import transformers

    RESULTS["environment"] = {
        "device": torch.cuda.get_device_name(0) if cuda else "CPU", "torch": torch.__version__,
        "transformers": transformers.__version__, "cuda": torch.version.cuda,
        "image": args.image_size, "reasoning_tokens": args.tokens, "flow_steps": args.flow_steps,
    }  # fmt: skip
    print(RESULTS["environment"], flush=True)
    roof = (section("ceilings", 10)(ceilings) if cuda else None) or {"copy_bandwidth_tb_s": 3.0,
                                                 "bf16_matmul_tflop_s": 790.0}  # fmt: skip

    state: dict[str, Any] = {}

    @section("build", 60)
    def build():
        reset_peak()
        t = time.perf_counter()
        if args.tiny:
            folder = make_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny")
            policy = AlpamayoPolicy.from_pretrained(folder)
        else:
            policy = released_random_policy(device, torch.bfloat16, "sdpa")
        sync()
        state["policy"] = policy
        w, h = (int(v) for v in args.image_size.split("x"))
        state["request"] = make_request(np.random.default_rng(0), (w, h))
        sizes = ModelSizes.of(policy)
        state["sizes"] = sizes
        inputs = policy.processor([state["request"]])
        state["prompt_tokens"] = int(inputs["input_ids"].shape[1])
        state["patches"] = int(inputs["image_grid_thw"].prod(dim=-1).sum())
        return {"build_s": time.perf_counter() - t, "text_params": sizes.text,
                "vision_params": sizes.vision, "expert_params": sizes.expert,
                "prompt_tokens": state["prompt_tokens"], "vision_patches": state["patches"],
                "weights_gib": memory(peak=False)}  # fmt: skip

    if "policy" not in state:
        save(out)
        return 1
    policy, request = state["policy"], state["request"]
    base = dict(num_samples=1, max_reasoning_tokens=args.tokens, num_flow_steps=args.flow_steps)

    def floors(tokens: int) -> dict[str, float]:
        f = plan_floors(state["sizes"], 2, state["prompt_tokens"], state["patches"], tokens,
                        args.flow_steps, bandwidth=roof["copy_bandwidth_tb_s"] * 1e12,
                        flops=roof["bf16_matmul_tflop_s"] * 1e12)  # fmt: skip
        return {"prefill": f.prefill_ms, "reasoning": f.reasoning_ms, "trajectory": f.trajectory_ms}

    @section("eager_full", 40)
    def eager_full():
        reset_peak()
        res, first_s, first = run_plans(policy, request, 4, 1, seed=0, temperature=0.6, **base)
        state["chain"] = list(first.samples[0][0].reasoning_token_ids)
        s = stats(res)
        return {"stages": s, "first_call_s": first_s, "floors_ms": floors(args.tokens),
                "ms_per_token": s["reasoning"]["p50"] / args.tokens,
                "peak_gib": memory()}  # fmt: skip

    @section("eager_reference_plans", 20)
    def eager_reference():
        # greedy full plan and a forced-chain plan: what the fast path must reproduce
        chain = state.get("chain") or list(range(1000, 1000 + args.tokens))
        state["chain"] = chain
        state["eager_greedy"] = policy.plan([request], seed=1, temperature=0.0, **base)
        state["eager_lane"] = policy.plan([request], seed=1, reasoning_ids=[chain], **base)
        return {"chain_tokens": len(chain)}

    def kernel_tables(engine_name: str, file_name: str) -> dict[str, Any]:
        """GPU time per kernel of one trajectory-lane plan with 10 and with 1 Euler steps:
        the difference over 9 is one expert pass; the 1-step plan is mostly prefill."""
        from torch.profiler import ProfilerActivity, profile

        def kernels(steps: int) -> dict[str, float]:
            kw = dict(base, num_flow_steps=steps)
            lane_kw = dict(seed=0, reasoning_ids=[state["chain"]], engine=engine_name, **kw)
            policy.plan([request], **lane_kw)
            activity = ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU
            with profile(activities=[activity]) as prof:
                policy.plan([request], **lane_kw)
            out: dict[str, float] = {}
            for e in prof.key_averages():
                ms = (e.self_device_time_total if cuda else e.self_cpu_time_total) / 1000.0
                if ms > 0:
                    out[e.key[:110]] = out.get(e.key[:110], 0.0) + ms
            return out

        ten, one = kernels(10), kernels(1)
        per_step = {k: (ten.get(k, 0.0) - one.get(k, 0.0)) / 9 for k in set(ten) | set(one)}
        top_step = sorted(per_step.items(), key=lambda kv: -kv[1])[:20]
        top_one = sorted(one.items(), key=lambda kv: -kv[1])[:25]
        text = [f"== engine {engine_name}: one expert pass (ms of GPU time) ==",
                f"total {sum(per_step.values()):.2f}"]  # fmt: skip
        text += [f"{v:8.3f}  {k}" for k, v in top_step]
        text += ["== 1-step lane plan: prefill + 1 pass ==", f"total {sum(one.values()):.2f}"]
        text += [f"{v:8.3f}  {k}" for k, v in top_one]
        (out / file_name).write_text("\n".join(text) + "\n")
        print("\n".join(text), flush=True)
        return {"expert_pass_gpu_ms": sum(per_step.values()),
                "one_step_plan_gpu_ms": sum(one.values()),
                "top_expert": top_step[:8], "top_prefill": top_one[:10]}  # fmt: skip

    @section("kernel_profile", 40)
    def kernel_profile():
        return kernel_tables("eager", "kernels.txt")

    @section("fast_compile", 150)
    def fast_compile():
        # what engine "fast" sets: grouped attention for decode and expert, the prefill's
        # norms and MLPs compiled, the decode step and the expert pass as CUDA graphs
        policy.configure(engine="fast")
        assert policy.default_engine == "static"
        t = time.perf_counter()
        fallback = None
        try:
            policy.plan([request], seed=0, temperature=0.6, engine="static", **base)
        except Exception as exc:  # the per-token functions failed: measure the rest without
            traceback.print_exc()
            fallback = f"{type(exc).__name__}: {exc}"
            policy.graph_decode = False
            policy.plan([request], seed=0, temperature=0.6, engine="static", **base)
        first = time.perf_counter() - t
        t = time.perf_counter()
        policy.plan([request], seed=0, temperature=0.6, engine="static", **base)
        second = time.perf_counter() - t
        t = time.perf_counter()
        policy.plan([request], seed=0, reasoning_ids=[state["chain"]], engine="static", **base)
        lane_first = time.perf_counter() - t
        t = time.perf_counter()  # the reasoning lane's first chain (from the lane's prompt)
        for _ in policy.reason_steps(request, max_tokens=args.tokens, seed=0):
            pass
        chain_first = time.perf_counter() - t
        return {"first_plan_s": first, "second_plan_s": second, "first_lane_s": lane_first,
                "first_chain_s": chain_first, "graph_decode": policy.graph_decode,
                "graph_decode_error": fallback}  # fmt: skip

    compiled = isinstance(RESULTS.get("fast_compile"), dict) and "error" not in RESULTS.get(
        "fast_compile", {"error": 1}
    )
    engine = "static" if compiled else "eager"

    @section("fast_full", 30)
    def fast_full():
        reset_peak()
        res, _, _ = run_plans(
            policy, request, 10, 1, seed=0, temperature=0.6, engine=engine, **base
        )
        s = stats(res)
        return {"engine": engine, "stages": s, "floors_ms": floors(args.tokens),
                "ms_per_token": s["reasoning"]["p50"] / args.tokens,
                "ratio_to_floor": {k: s[k]["p50"] / v for k, v in floors(args.tokens).items()},
                "peak_gib": memory()}  # fmt: skip

    @section("fast_agreement", 20)
    def fast_agreement():
        greedy = policy.plan([request], seed=1, temperature=0.0, engine=engine, **base)
        lane = policy.plan([request], seed=1, reasoning_ids=[state["chain"]], engine=engine, **base)
        return {"greedy_vs_eager": agreement(state["eager_greedy"], greedy),
                "lane_vs_eager_lane": agreement(state["eager_lane"], lane)}  # fmt: skip

    @section("lane", 40)
    def lane():
        res, _, _ = run_plans(policy, request, 60, 2, seed=0, reasoning_ids=[state["chain"]],
                              engine=engine, **base)  # fmt: skip
        totals = np.asarray([r.timings_ms["total"] for r in res])
        return {"engine": engine, "stages": stats(res),
                "plans_per_s_back_to_back": float(1000.0 / totals.mean()),
                "over_100ms": int((totals > 100).sum())}  # fmt: skip

    @section("decode_step", 90)
    def decode_step():
        """The plan's per-token functions replayed back to back (no host work between:
        their GPU time): the VLM step with the decode bookkeeping (_static_advance, what a
        plan runs), the bare VLM step (_static_step, the reasoning lane's), the sampling
        before the draw plus the draw; and the plan's wall time per token: what is left
        is host time per token. Then full plans alternating between model.static_decode
        (graph_decode) and the loop around the bare step (what the static engine did
        before): ms per token of each, same run."""
        from alpamayo_ros.model.kv_cache import crop_cache
        from alpamayo_ros.model.sampling import draw, sample_token

        plan = policy.plan([request], seed=0, temperature=0.6, engine=engine, **base)
        wall = plan.timings_ms["reasoning"] / args.tokens
        if "plan" not in policy._static_caches:
            return {"wall_ms_per_token": wall, "note": "no static cache (eager engine)"}
        chosen = policy.graph_decode  # False: static_decode failed in fast_compile
        arms = [(True, "graph_decode"), (False, "step_alone")][0 if chosen else 1 :]
        per_token: dict[str, list[float]] = {key: [] for _, key in arms}
        for i in range(10):  # the first of each compiles or warms up: dropped
            for flag, key in arms:
                policy.graph_decode = flag
                r = policy.plan([request], seed=0, temperature=0.6, engine=engine, **base)
                tokens = max(len(r.samples[0][0].generated_ids), 1)
                if i:
                    per_token[key].append(r.timings_ms["reasoning"] / tokens)
        policy.graph_decode = chosen
        ab = {k: float(np.median(v)) for k, v in per_token.items()}
        cache = policy._static_caches["plan"][1]
        buffers = policy._decode_buffers.get("plan")
        length = int(cache.get_seq_length())
        slots = cache.get_max_length()
        tok = torch.zeros((1, 1), dtype=torch.long, device=device)
        mask = torch.zeros((1, slots), dtype=torch.long, device=device)
        mask[:, : length + 1] = 1
        pos = torch.full((3, 1, 1), length, dtype=torch.long, device=device)
        rope = torch.zeros((1, 1), dtype=torch.long, device=device)

        def step():
            policy._static_step(tok, mask, pos, cache)
            crop_cache(cache, length)

        def advance():
            policy._static_advance(tok[:, 0], buffers, cache, rope)
            crop_cache(cache, length)

        with torch.inference_mode():
            advance_ms = back_to_back(advance) if chosen else None
            step_ms = back_to_back(step)
            logits = policy._static_step(tok, mask, pos, cache).clone()
            crop_cache(cache, length)
            banned = policy._chain_mask(logits.shape[-1], device)
            gen = policy._generator(0)
            if chosen:  # the compiled sampling, then the draw
                sample_ms = back_to_back(
                    lambda: draw(policy._static_sampling(logits, banned, 0.6, 0.98), gen)
                )
            else:  # the reference loop's: chain mask and sampling, eager
                sample_ms = back_to_back(
                    lambda: sample_token(policy._chain_logits(logits), 0.6, 0.98, gen)
                )
        return {"wall_ms_per_token": wall, "ms_per_token_p50": ab,
                "advance_back_to_back_ms": advance_ms,
                "step_back_to_back_ms": step_ms, "sampling_and_draw_ms": sample_ms,
                "host_gap_ms": wall - (advance_ms or step_ms) - sample_ms,
                "floor_ms_per_token": floors(1)["reasoning"]}  # fmt: skip

    @section("fast_kernel_profile", 40)
    def fast_kernel_profile():
        return kernel_tables(engine, "kernels_fast.txt")

    @section("attention_sdpa", 150)
    def attention_sdpa():
        """The same fast path with transformers' SDPA for decode and expert (last session's
        fast path, recompiled): what the grouped kernel changed, measured in the same run."""
        policy.set_attention("sdpa")
        t = time.perf_counter()
        policy.plan([request], seed=0, temperature=0.6, engine=engine, **base)
        policy.plan([request], seed=0, reasoning_ids=[state["chain"]], engine=engine, **base)
        first_s = time.perf_counter() - t
        full, _, _ = run_plans(policy, request, 6, 1, seed=0, temperature=0.6, engine=engine,
                               **base)  # fmt: skip
        lanes, _, _ = run_plans(policy, request, 20, 1, seed=0, reasoning_ids=[state["chain"]],
                                engine=engine, **base)  # fmt: skip
        policy.set_attention("grouped")
        s = stats(full)
        return {"recompile_s": first_s, "full": s, "lane": stats(lanes),
                "ms_per_token": s["reasoning"]["p50"] / args.tokens}  # fmt: skip

    @section("lane_eager", 20)
    def lane_eager():
        res, _, _ = run_plans(policy, request, 4, 1, seed=0, reasoning_ids=[state["chain"]],
                              **base)  # fmt: skip
        return {"stages": stats(res)}

    @section("lane_5_steps", 20)
    def lane_5():
        kw = dict(base, num_flow_steps=5)
        res, _, _ = run_plans(policy, request, 30, 2, seed=0, reasoning_ids=[state["chain"]],
                              engine=engine, **kw)  # fmt: skip
        return {"engine": engine, "stages": stats(res)}

    def cycling_requests(n: int, jpeg: bool = False) -> list[Any]:
        """n consecutive 10 Hz frame sets: per camera the 3 newest frames kept (the same
        arrays), one new frame each cycle (a pool of 12 per camera, evicted before reuse).
        jpeg: camera-like JPEG frames (EncodedImage) that the model decodes."""
        w, h = (int(v) for v in args.image_size.split("x"))
        rng = np.random.default_rng(1)

        def frame() -> Any:
            if jpeg:
                return jpeg_frame(rng, (w, h))
            return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)

        pool = [[frame() for _ in range(12)] for _ in range(4)]
        out = []
        for k in range(n):
            images = tuple(pool[c][(k + j) % 12] for c in range(4) for j in range(4))
            out.append(dataclasses.replace(request, images=images))
        return out

    @section("vision_cache_lane", 40)
    def vision_cache_lane():
        policy.enable_vision_cache(32)
        reqs = cycling_requests(52)
        res = []
        for i, r in enumerate(reqs):
            plan = policy.plan([r], seed=i, reasoning_ids=[state["chain"]], engine=engine, **base)
            if i >= 2:
                res.append(plan)
        totals = np.asarray([r.timings_ms["total"] for r in res])
        cache = policy.vision_cache
        policy.enable_vision_cache(0)
        return {"stages": stats(res), "hits": cache.hits, "misses": cache.misses,
                "over_100ms": int((totals > 100).sum()), "engine": engine}  # fmt: skip

    @section("prefill_fusion", 30)
    def prefill_fusion():
        """Lane plans (forced chain: prefill and expert, no decode) with the decoder layers
        fused (model.fused_layers, what compile_prefill sets) and with transformers' own
        layer forward (eager), alternating, same run: what the fusion saves in the
        prefill. The fused forwards are put back as they were (the same objects, so
        graphs captured over them still apply)."""
        layers = policy.vlm.model.language_model.layers
        saved = [layer.__dict__.get("forward") for layer in layers]
        if not all(saved):
            return {"skipped": "layers not fused (compile_prefill not run)"}
        kw = dict(base, reasoning_ids=[state["chain"]], engine=engine)
        results: dict[str, list[Any]] = {"fused": [], "eager_layers": []}
        try:
            for i in range(12):
                for name in results:
                    for layer, forward in zip(layers, saved, strict=True):
                        if name == "fused":
                            layer.forward = forward
                        else:
                            layer.__dict__.pop("forward", None)
                    plan = policy.plan([request], seed=i, **kw)
                    if i >= 2:
                        results[name].append(plan)
        finally:
            for layer, forward in zip(layers, saved, strict=True):
                layer.forward = forward
        return {name: stats(res) for name, res in results.items()}

    @section("stacked_projections", 120)
    def stacked_projections():
        """Lane plans and full plans with q/k/v and gate/up as one product each
        (model.stacked_projections, what engine "fast" sets) and as separate products
        (separate_products: the same weights), alternating, same run. The first plans of
        each kind recompile (dynamo guards on the stacks): not timed."""
        from alpamayo_ros.model.stacked_projections import separate_products

        with separate_products(policy) as groups:
            if not groups:
                return {"skipped": "nothing stacked (stack_projections not run)"}
        lane_kw = dict(base, reasoning_ids=[state["chain"]], engine=engine)
        full_kw = dict(base, temperature=0.6, engine=engine)
        results: dict[str, dict[str, list[Any]]] = {
            "stacked": {"lane": [], "full": []},
            "separate": {"lane": [], "full": []},
        }
        for i in range(8):
            for name, res in results.items():
                with contextlib.ExitStack() as stack:
                    if name == "separate":
                        stack.enter_context(separate_products(policy))
                    lane_plan = policy.plan([request], seed=i, **lane_kw)
                    full_plan = policy.plan([request], seed=i, **full_kw) if i % 2 else None
                if i >= 2:
                    res["lane"].append(lane_plan)
                    if full_plan is not None:
                        res["full"].append(full_plan)
        out: dict[str, Any] = {"groups": groups}
        for name, res in results.items():
            full = stats(res["full"])
            out[name] = {"lane": stats(res["lane"]), "full": full,
                         "ms_per_token": full["reasoning"]["p50"] / args.tokens}  # fmt: skip
        return out

    @section("jpeg_decode", 20)
    def jpeg_decode():
        """16 camera-like JPEGs of the bench size: OpenCV on one CPU core (what the node's
        callbacks do per message with image_decode arrival) against model.frame_decoding
        on the device (one nvJPEG batch: image_decode model), and how far their pixels
        differ (nvJPEG's inverse DCT and upsampling are not libjpeg's)."""
        from alpamayo_ros.model.frame_decoding import FrameDecoder, decodes_jpeg_on

        w, h = (int(v) for v in args.image_size.split("x"))
        rng = np.random.default_rng(2)
        frames = [jpeg_frame(rng, (w, h)) for _ in range(16)]
        cpu_ms = []
        for _ in range(3):
            t = time.perf_counter()
            for f in frames:
                EncodedImage(f.data, f.full_size).decode()  # a fresh frame: nothing kept
            cpu_ms.append(1000 * (time.perf_counter() - t))
        decoder, device_ms = FrameDecoder(), []
        for i in range(11):
            fresh = [EncodedImage(f.data, f.full_size) for f in frames]
            sync()
            t = time.perf_counter()
            out = decoder(fresh, device)
            sync()
            if i:  # the first call initialises the decoder
                device_ms.append(1000 * (time.perf_counter() - t))
        diffs = [(o.cpu().int() - torch.from_numpy(np.asarray(f)).permute(2, 0, 1).int()).abs()
                 for o, f in zip(out[:4], frames[:4], strict=True)]  # fmt: skip
        return {"decodes_on_device": decodes_jpeg_on(device),
                "kb_per_frame": float(np.mean([len(f.data) for f in frames]) / 1024),
                "opencv_cpu_ms_16_frames": float(np.median(cpu_ms)),
                "frame_decoding_ms_16_frames": float(np.median(device_ms)),
                "on_device": decoder.on_device, "on_cpu": decoder.on_cpu,
                "device_failures": decoder.device_failures,
                "pixel_diff_mean": float(np.mean([d.float().mean().item() for d in diffs])),
                "pixel_diff_max": int(max(d.max().item() for d in diffs))}  # fmt: skip

    @section("jpeg_fast_full", 30)
    def jpeg_fast_full():
        """The fast full plan with the 16 frames as JPEGs the model decodes (compare
        fast_full's preprocess stage: decoded arrays uploaded)."""
        w, h = (int(v) for v in args.image_size.split("x"))
        jpeg_request = make_request(np.random.default_rng(0), (w, h), jpeg=True)
        res, _, _ = run_plans(
            policy, jpeg_request, 10, 1, seed=0, temperature=0.6, engine=engine, **base
        )
        return {"engine": engine, "stages": stats(res)}

    @section("jpeg_vision_cache_lane", 50)
    def jpeg_vision_cache_lane():
        """The trajectory lane at 10 Hz as the node runs it with image_decode auto on a GPU:
        JPEG frames, the vision cache on (4 new frames per cycle decoded and encoded), at
        the suite's flow steps and at 5 (the engine issue's setting)."""
        policy.enable_vision_cache(32)
        reqs = cycling_requests(52, jpeg=True)
        out: dict[str, Any] = {"engine": engine}
        for steps in (args.flow_steps, 5):
            kw = dict(base, num_flow_steps=steps)
            res = []
            for i, r in enumerate(reqs[:26]):
                plan = policy.plan([r], seed=i, reasoning_ids=[state["chain"]], engine=engine,
                                   **kw)  # fmt: skip
                if i >= 2:
                    res.append(plan)
            reqs = reqs[26:]
            totals = np.asarray([r.timings_ms["total"] for r in res])
            out[f"{steps}_steps"] = {"stages": stats(res),
                                     "over_100ms": int((totals > 100).sum())}  # fmt: skip
        cache = policy.vision_cache
        policy.enable_vision_cache(0)
        out.update(hits=cache.hits, misses=cache.misses)
        return out

    @section("two_lane_schedule", 20 + 1.5 * args.schedule_s)
    def two_lane_schedule():
        """The planner node's schedule in wall time: a 10 Hz input set (one new frame per
        camera each cycle, the vision cache on) submitted to the worker in two_lane mode
        (one thread, the lanes cooperative: reasoning steps only while no input waits), for
        --schedule-s seconds; what would be published, the dropped cycles, the chain ages."""
        from alpamayo_ros.core.camera_rig import CameraRig
        from alpamayo_ros.core.ego_history import EgoPoseBuffer, StampedPose
        from alpamayo_ros.core.frame_buffer import FrameSet
        from alpamayo_ros.nodes.parameters import PLANNER_PARAMS, defaults
        from alpamayo_ros.planning.planner import PlanInputs, Planner
        from alpamayo_ros.planning.settings import PlannerSettings
        from alpamayo_ros.planning.worker import PlanningWorker

        rig = CameraRig.released_default()
        settings = PlannerSettings(num_samples=1, max_reasoning_tokens=args.tokens,
                                   num_flow_steps=args.flow_steps, seed=0)  # fmt: skip
        policy.enable_vision_cache(32)
        reuses = policy.prefix_reuses
        published: list[tuple[float, Any]] = []  # (wall s, plan)
        node = defaults(PLANNER_PARAMS)  # the planner node's stale-chain settings
        worker = PlanningWorker(Planner(policy, rig, settings),
                                lambda o: published.append((time.monotonic(), o.plan)),
                                planning_mode="two_lane", max_chain_age=node["max_chain_age"],
                                stale_chain_slice=node["stale_chain_slice"])  # fmt: skip
        cycles = round(args.schedule_s * 10)
        reqs = cycling_requests(cycles)
        poses = EgoPoseBuffer()
        pose_steps = 0  # poses at 10 Hz from 0 s, 8 m/s straight ahead
        start = time.monotonic()
        submitted: dict[float, float] = {}  # t0 -> wall s of submission
        for k in range(cycles):
            t0 = round(2.0 + 0.1 * k, 3)  # input time; the wall clock runs alongside
            while 0.1 * pose_steps <= t0 + 1e-9:
                t = 0.1 * pose_steps
                poses.add(StampedPose(t, (8.0 * t, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
                pose_steps += 1
            images = reqs[k].images
            frames = FrameSet(
                t0, rig.names, tuple(tuple(images[4 * c : 4 * c + 4]) for c in range(4)),
                np.array([[t0 - 0.1 * (3 - f) for f in range(4)] for _ in range(4)]),
            )  # fmt: skip
            time.sleep(max(0.0, start + 0.1 * k - time.monotonic()))
            submitted[t0] = time.monotonic()
            worker.submit(PlanInputs(t0, frames, poses.history(t0)))
        worker.wait_idle(30.0)
        worker.stop()
        policy.enable_vision_cache(0)
        wall = time.monotonic() - start
        model = [(w, p) for w, p in published if not p.is_fallback]
        ages = [w - submitted[round(p.stamp, 3)] for w, p in model]
        chain_ages = [p.stamp - p.chain_stamp for _, p in model if np.isfinite(p.chain_stamp)]
        lanes: dict[str, int] = {}
        for _, p in model:
            lanes[p.lane] = lanes.get(p.lane, 0) + 1

        def pct(v: list[float]) -> dict[str, float]:
            return ({"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)),
                     "max": float(np.max(v))} if v else {})  # fmt: skip

        return {"seconds": args.schedule_s, "cycles": cycles, "published": len(published),
                "model_plans": len(model), "plans_per_s": len(published) / wall,
                "dropped_cycles": worker.dropped, "chains_refreshed": worker.chains,
                "chains_from_the_lane_prompt": policy.prefix_reuses - reuses,
                "reasoning_steps_before_waiting_inputs": worker.stale_steps,
                "lanes": lanes, "plan_age_at_publish_s": pct(ages),
                "chain_age_s": pct(chain_ages),
                "stop_reasons": sorted({p.fallback_reason.split(":")[0]
                                        for _, p in published if p.is_fallback})}  # fmt: skip

    @section("fast_full_cached", 150)
    def fast_full_cached():
        reqs = cycling_requests(14)
        t = time.perf_counter()
        policy.plan([reqs[0]], seed=0, temperature=0.6, engine=engine, **base)
        first_s = time.perf_counter() - t
        res = []
        for i, r in enumerate(reqs[1:]):
            plan = policy.plan([r], seed=i, temperature=0.6, engine=engine, **base)
            if i >= 2:
                res.append(plan)
        greedy = policy.plan([request], seed=1, temperature=0.0, engine=engine, **base)
        s = stats(res)
        ratios = {k: s[k]["p50"] / v for k, v in floors(args.tokens).items()}
        return {"first_plan_s": first_s, "stages": s,
                "ms_per_token": s["reasoning"]["p50"] / args.tokens,
                "greedy_vs_eager": agreement(state["eager_greedy"], greedy),
                "ratio_to_floor": ratios}  # fmt: skip

    @section("generate_reference", 150)
    def generate_reference():
        vlm = policy.vlm
        rng = np.random.default_rng(0)
        vocab = vlm.config.text_config.vocab_size
        ids = torch.tensor(rng.integers(vocab // 100, vocab // 2, (1, 3000)), device=device)
        mask = torch.ones_like(ids)
        new = args.tokens
        ref: dict[str, Any] = {}

        def timed(fn, n):
            ts = []
            for _ in range(n):
                sync()
                t = time.perf_counter()
                fn()
                sync()
                ts.append(1000 * (time.perf_counter() - t))
            return float(np.median(ts))

        with torch.inference_mode():
            prefill = timed(lambda: vlm(input_ids=ids, attention_mask=mask, use_cache=True,
                                        logits_to_keep=1), 3)  # fmt: skip
            gen = dict(input_ids=ids, attention_mask=mask, max_new_tokens=new,
                       min_new_tokens=new, do_sample=False)  # fmt: skip
            dyn = timed(lambda: vlm.generate(**gen), 2)
            ref["prefill_3000_ms"] = prefill
            ref["dynamic_ms_per_token"] = (dyn - prefill) / new
            RESULTS["generate_reference"] = dict(ref)
            save(out)
            t = time.perf_counter()
            vlm.generate(**gen, cache_implementation="static")
            ref["static_compile_first_s"] = time.perf_counter() - t
            vlm.generate(**gen, cache_implementation="static")
            static = timed(lambda: vlm.generate(**gen, cache_implementation="static"), 3)
            ref["static_compiled_ms_per_token"] = (static - prefill) / new
        ref["floor_ms_per_token"] = floors(1)["reasoning"]
        return ref

    def quantized(kind: str) -> int:
        """quantize(); on the CPU dry run (--tiny) the same layers without the GPU check."""
        if cuda:
            return quantize(policy, kind)
        from alpamayo_ros.model.float8 import to_float8

        policy.quantization = kind
        return to_float8(policy.vlm.model.language_model, prefill_only=kind == "fp8_prefill")

    def fp8_figures(name: str, lane_first_s: float) -> dict[str, Any]:
        """The 10 Hz vision-cache lane and full plans of the quantized policy (the decode
        step recompiles: its linear layers changed)."""
        policy.enable_vision_cache(32)
        reqs = cycling_requests(42)
        lanes = [policy.plan([r], seed=i, reasoning_ids=[state["chain"]], engine=engine, **base)
                 for i, r in enumerate(reqs)][2:]  # fmt: skip
        policy.enable_vision_cache(0)
        lane_first = policy.plan(
            [request], seed=1, reasoning_ids=[state["chain"]], engine=engine, **base
        )
        result: dict[str, Any] = {
            "lane_first_plan_s": lane_first_s, "vision_cache_lane": stats(lanes),
            "lane_vs_bf16_eager_lane": agreement(state["eager_lane"], lane_first),
        }  # fmt: skip
        RESULTS[name] = dict(result, partial="lane only so far")
        save(out)
        t = time.perf_counter()
        greedy = policy.plan([request], seed=1, temperature=0.0, engine=engine, **base)
        result["full_first_plan_s"] = time.perf_counter() - t
        full, _, _ = run_plans(policy, request, 6, 1, seed=0, temperature=0.6, engine=engine,
                               **base)  # fmt: skip
        s = stats(full)
        result["full"] = s
        result["ms_per_token"] = s["reasoning"]["p50"] / args.tokens
        result["greedy_vs_bf16_eager"] = agreement(state["eager_greedy"], greedy)
        return result

    @section("fp8_weight_gemv", 40)
    def fp8_weight_gemv():
        """model.fp8_weight_gemv (quantization fp8's decode-step products) on the language
        model's shapes, one row and six: its time against bf16 F.linear and row-wise FP8
        _scaled_mm (what fp8 decode steps ran before), the bytes it reads per second, and
        its largest error against the torch reference (relative to the largest output)."""
        from alpamayo_ros.model.float8 import _rowwise
        from alpamayo_ros.model.fp8_weight_gemv import reference, weight_only

        cfg = policy.config.vlm_config.text_config
        d, f = cfg.hidden_size, cfg.intermediate_size
        q_out = cfg.num_attention_heads * cfg.head_dim
        kv_out = cfg.num_key_value_heads * cfg.head_dim
        shapes = {"q_proj": (q_out, d), "k_proj": (kv_out, d), "o_proj": (d, q_out),
                  "gate_proj": (f, d), "down_proj": (d, f)}  # fmt: skip

        def timed(fn) -> float:
            return back_to_back(fn, 50)

        dt = torch.bfloat16 if cuda else torch.float32
        out: dict[str, Any] = {}
        for name, (n_out, k_in) in shapes.items():
            w = torch.randn(n_out, k_in, device=device, dtype=dt) * 0.02
            wq, scale = _rowwise(w)
            scale = scale.t().contiguous()
            for m in (1, 6):
                x = torch.randn(m, k_in, device=device, dtype=dt)
                y, ref = weight_only(x, wq, scale), reference(x, wq, scale)
                xq, xs = _rowwise(x)
                row = {
                    "fp8_weight_ms": timed(functools.partial(weight_only, x, wq, scale)),
                    "bf16_linear_ms": timed(functools.partial(torch.nn.functional.linear, x, w)),
                    "max_rel_error": float(
                        (y.float() - ref.float()).abs().max() / ref.float().abs().max()
                    ),
                }
                if cuda:
                    scaled = functools.partial(
                        torch._scaled_mm, xq, wq.t(), scale_a=xs, scale_b=scale, out_dtype=dt
                    )
                    row["scaled_mm_ms"] = timed(scaled)
                row["fp8_weight_tb_s"] = n_out * k_in / row["fp8_weight_ms"] / 1e9
                out[f"{name}_{m}_rows"] = row
        return out

    @section("autotune", 240)
    def autotune():
        """The decode step and the expert pass recompiled with inductor's max-autotune (GEMM
        kernels picked by benchmarking candidates: the expert's 64-row products ran at ~40 %
        of the copy bandwidth on cuBLAS; CUDA graphs kept), against reduce-overhead's
        fast_full and vision_cache_lane figures above. Put back to reduce-overhead after."""
        mode = "max-autotune" if cuda else "default"
        try:
            torch._dynamo.reset()
            policy.compile_decode(mode)
            policy.compile_expert(mode)
            t = time.perf_counter()
            policy.plan([request], seed=0, temperature=0.6, engine=engine, **base)
            first_s = time.perf_counter() - t
            full, _, _ = run_plans(policy, request, 8, 1, seed=0, temperature=0.6,
                                   engine=engine, **base)  # fmt: skip
            lanes, _, _ = run_plans(policy, request, 12, 2, seed=0,
                                    reasoning_ids=[state["chain"]], engine=engine,
                                    **dict(base, num_flow_steps=5))  # fmt: skip
            s = stats(full)
            return {"mode": mode, "first_plan_s": first_s, "full": s, "lane_5_steps": stats(lanes),
                    "ms_per_token": s["reasoning"]["p50"] / args.tokens}  # fmt: skip
        finally:
            torch._dynamo.reset()
            policy.compile_decode("reduce-overhead" if cuda else "default")
            policy.compile_expert("reduce-overhead" if cuda else "default")

    @section("fp8_prefill", 150)
    def fp8_prefill():
        """quantization fp8_prefill (model.float8): FP8 products for the prefill, decode
        steps on the original weights."""
        converted = quantized("fp8_prefill")
        policy.compile_prefill()  # the FP8 projections too (activation quantisation fused)
        t = time.perf_counter()
        policy.plan([request], seed=1, reasoning_ids=[state["chain"]], engine=engine, **base)
        return dict(fp8_figures("fp8_prefill", time.perf_counter() - t), linear_layers=converted)

    @section("fp8", 150)
    def fp8():
        """quantization fp8: FP8 products for the decode steps too (here by dropping the
        fp8_prefill layers' original weights: the same FP8 weights)."""
        from alpamayo_ros.model.float8 import Float8Linear

        if policy.quantization == "none":
            quantized("fp8")
            policy.compile_prefill()
        for m in policy.modules():
            if isinstance(m, Float8Linear):
                m.weight, m.dense_rows = None, 0
        policy.quantization = "fp8"
        # compiled code forgotten: run5 measured this section without it, and the blocks,
        # past dynamo's recompile limit, ran eagerly (its fp8 lane figure is not comparable)
        torch._dynamo.reset()
        if cuda:
            torch.cuda.empty_cache()
        return fp8_figures("fp8", 0.0)

    RESULTS["total_s"] = elapsed()
    save(out)
    print("\n== summary (p50 / p99 ms) ==")
    for name in (
        "eager_full",
        "fast_full",
        "lane",
        "lane_eager",
        "lane_5_steps",
        "vision_cache_lane",
        "fast_full_cached",
        "jpeg_fast_full",
        "jpeg_vision_cache_lane",
    ):
        r = RESULTS.get(name, {})
        r = r.get(f"{args.flow_steps}_steps", r) if name == "jpeg_vision_cache_lane" else r
        if "stages" in r:
            cells = "  ".join(f"{s} {r['stages'][s]['p50']:.1f}/{r['stages'][s]['p99']:.1f}"
                              for s in STAGES)  # fmt: skip
            print(f"{name:<14} {cells}")
        else:
            print(f"{name:<14} {r}")
    for name in (
        "fast_agreement",
        "decode_step",
        "jpeg_decode",
        "prefill_fusion",
        "stacked_projections",
        "fp8_weight_gemv",
        "autotune",
        "attention_sdpa",
        "generate_reference",
        "fp8_prefill",
        "fp8",
    ):
        print(f"{name}: {json.dumps(RESULTS.get(name), default=str)[:700]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
