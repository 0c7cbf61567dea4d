"""`alpamayo-ros` command line: offline tools that need no ROS install."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from alpamayo_ros.core.cameras import FAMILIES
from alpamayo_ros.core.settings_table import add_setting_flags, settings_from_args
from alpamayo_ros.cpu_threads import prefer_passive_waiting
from alpamayo_ros.nodes.parameters import (
    PLANNER_PARAMS,
    add_arguments,
    check_values,
    planner_config,
)
from alpamayo_ros.training.settings import GRPOSettings, GRPOTrainSettings, TrainSettings

# Planner parameters the replay takes from the command line (the node parameter table's).
REPLAY_PLANNER_FLAGS = (
    "num_samples", "temperature", "top_p", "max_reasoning_tokens", "num_flow_steps",
    "sample_choice", "seed", "max_input_age", "max_plan_age", "late_plan",
    "frames_per_camera", "navigation_max_age", "navigation_guidance", "noise_temperature",
    "engine", "vision_cache_frames", "quantization", "hold_at_standstill", "image_decode",
    "warm_up",
)  # fmt: skip


# The training settings given as flags (their fields' declarations in training/settings.py).
SFT_FLAGS = (
    "steps", "batch_size", "grad_accum", "lr", "warmup_steps", "weight_decay",
    "max_grad_norm", "mixed_precision", "ce_text_weight", "ce_trajectory_weight", "fm_weight",
    "insulate_vlm", "freeze_vlm", "freeze_vision", "lora_rank", "lora_alpha", "num_workers",
    "seed", "save_every", "log_every",
)  # fmt: skip
GRPO_TRAIN_FLAGS = ("steps", "prompts_per_step", "lr", "seed", "log_every", "mixed_precision")
GRPO_FLAGS = (
    "group_size", "kl_beta", "max_reasoning_tokens", "temperature", "top_p",
    "trajectory_temperature", "clip_low", "clip_high", "updates",
)  # fmt: skip


# A planner parameter file's names -> the replay's options they set (--params).
PARAMS_FILE_OPTIONS = {
    **{name: name for name in REPLAY_PLANNER_FLAGS},
    "planning_mode": "planning_mode", "max_chain_age": "max_chain_age",
    "stale_chain_slice": "stale_chain_slice", "model": "model", "device": "device",
    "dtype": "dtype", "camera_config": "cameras", "odom_topic": "odom", "rate_hz": "rate",
}  # fmt: skip


def _apply_params_file(args: argparse.Namespace, given: set[str]) -> None:
    """replay --params FILE...: the planner's settings in the node's parameter files become
    the replay's, checked as check-config checks them (every problem named; nothing runs),
    except for the options given on the command line (`given`: their dests)."""
    from alpamayo_ros.nodes.parameter_file import check_files

    checks = [c for c in check_files(args.params) if c.node == "alpamayo_planner"]
    if not checks:
        raise ValueError(f"--params {' '.join(args.params)}: no parameters for alpamayo_planner")
    (check,) = checks
    if check.problems:
        raise ValueError(
            f"--params: alpamayo_planner would refuse {' '.join(args.params)}: "
            + "; ".join(check.problems)
        )
    values = dict(check.values)
    if values.get("ego_source") == "tf":
        values["odom_topic"] = "/tf"  # the replay reads tf from the bag's /tf
    if values.get("model") == "":
        raise ValueError("--params: model is empty (the node would publish stop plans only)")
    if values.get("camera_config") == "":
        values["camera_config"] = None  # the package's rig: the released one
    for name, value in values.items():
        option = PARAMS_FILE_OPTIONS.get(name)
        if option is not None and option not in given:
            setattr(args, option, value)


def _given_options(argv: list[str] | None, command: str) -> set[str]:
    """The dests of the options given on the command line for `command` (not defaulted)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[command]._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command", "verbose", "debug", "func"}


def _check_model_inputs(
    rig, model: str | None, frames_per_camera: int, navigation: bool = False
) -> str:
    """Refuse, before anything loads, a camera rig the checkpoint cannot read, or
    navigation for a checkpoint that does not read it (the family read from config.json;
    no --model: the demo checkpoint, an Alpamayo 1). Returns the family."""
    from alpamayo_ros.checkpoints import DEMO_MODEL, model_family
    from alpamayo_ros.core.cameras import ALPAMAYO1, ALPAMAYO1_5, check_camera_layout

    family = model_family(model or DEMO_MODEL) or ALPAMAYO1
    check_camera_layout(rig.names, family, frames_per_camera)
    if navigation and family != ALPAMAYO1_5:
        raise ValueError(
            f"navigation needs an Alpamayo 1.5 checkpoint; {model or DEMO_MODEL} is {family}"
        )
    return family


def _load_rig(path: str | None):
    from alpamayo_ros.core.camera_rig import CameraRig

    if path is None:
        return CameraRig.released_default()
    return CameraRig.from_yaml(path)


def _metres(value: object) -> str:
    return f"{value:.3f} m" if isinstance(value, float) else "n/a"


def _suggest_rig(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.projection import camera_views
    from alpamayo_ros.bag.reader import Bag
    from alpamayo_ros.core.rig_suggestion import suggest_rig

    with Bag(args.bag) as bag:
        views = camera_views(bag, args.base_frame)
    for v in views:
        print(f"# {v.topic}: yaw {v.yaw_deg:.0f} deg, field of view {v.hfov_deg:.0f} deg")
    suggestion = suggest_rig(views, args.family)
    print(suggestion.to_yaml(f"{args.bag} --family {args.family}"), end="")
    return 0 if suggestion.complete else 2


def _inspect_bag(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.logged_drive import inspect_logged_drive
    from alpamayo_ros.core.atomic_output import refuse_a_file

    if args.suggest_rig:
        return _suggest_rig(args)
    rig = _load_rig(args.cameras)
    refuse_a_file(Path(args.out))  # before the bag is read through
    report = inspect_logged_drive(args.bag, rig, odom_source=args.odom, rate_hz=args.rate)
    print(
        f"{'tick [s]':>9} {'v [m/s]':>8} {'future':>7} {'fit [m]':>8} {'tokens [m]':>10}"
        "  meta-actions / problems"
    )
    t_start = report.steps[0].tick if report.steps else 0.0
    for s in report.steps:
        speed = f"{s.speed:8.2f}" if s.speed is not None else f"{'-':>8}"
        if s.fit_error_max is not None:
            print(
                f"{s.tick - t_start:9.1f} {speed} {s.horizon:6.1f}s {s.fit_error_max:8.3f} "
                f"{s.token_error_max:10.3f}  {', '.join(s.meta_actions)}"
                + ("" if s.frames == "ok" else f"  [frames: {s.frames}]")
            )
        else:
            why = s.future if s.history == "ok" else s.history
            print(f"{s.tick - t_start:9.1f} {speed} {'-':>7} {'-':>8} {'-':>10}  ({why})")
    path = report.write(Path(args.out))
    summary = report.summary()
    print(
        f"\n{summary['ticks']} ticks at {args.rate:g} Hz; {summary['ticks_with_inputs']} with a "
        f"complete frame set and ego history; {summary['ticks_with_logged_future']} with >= 1 s "
        f"of logged future ({summary['ticks_with_full_horizon']} with the full 6.4 s).\n"
        f"unicycle fit of the logged future: max error {_metres(summary['fit_error_max_m'])}; "
        f"after the trajectory tokens: {_metres(summary['token_error_max_m'])}.\n"
        f"skipped inputs: {summary['skipped'] or 'none'}"
    )
    for name, note in report.camera_notes.items():
        print(f"note: {name}: {note}")
    if report.truncation:
        print(f"note: {report.truncation}")
    print(f"report: {path}")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from alpamayo_ros.nodes.parameter_file import check_files

    # ParameterFileError (a ValueError): one line, exit 2
    checks = check_files(args.files, args.namespace)
    for check in checks:
        if check.problems:
            print(f"{check.node}: {len(check.problems)} problem(s)")
            for problem in check.problems:
                print(f"  - {problem}")
        else:
            given = "cameras" if check.node.startswith("camera config") else "parameters given"
            print(f"{check.node}: ok ({len(check.values)} {given})")
    return 1 if any(c.problems for c in checks) else 0


def _make_tiny_checkpoint(args: argparse.Namespace) -> int:
    from alpamayo_ros.core.atomic_output import refuse_a_file, written_atomically
    from alpamayo_ros.model.tiny import make_tiny_checkpoint

    out = Path(args.directory)
    refuse_a_file(out)
    if out.exists() and any(out.iterdir()) and not args.force:
        print(f"{out} exists and is not empty; pass --force to replace it", file=sys.stderr)
        return 2
    with written_atomically(out) as partial:  # an earlier checkpoint kept if this fails
        make_tiny_checkpoint(partial, seed=args.seed, pixels=args.pixels, family=args.family)
    print(
        f"wrote an untrained tiny {args.family} checkpoint (released layout, random weights) "
        f"to {out}"
    )
    return 0


def _make_sample_bag(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.sample_drive import write_sample_bag
    from alpamayo_ros.core.atomic_output import refuse_a_file, written_atomically

    out = Path(args.directory)
    refuse_a_file(out)
    if out.exists() and not args.force:
        print(f"{out} exists; pass --force to replace it", file=sys.stderr)
        return 2
    # Written beside it and moved into place when complete: a failed run leaves an earlier
    # bag of that name untouched.
    with written_atomically(out, create=False) as partial:
        scn = write_sample_bag(partial, seed=args.seed, kind=args.kind, duration=args.duration)
    print(
        f"wrote a {scn.duration:g} s synthetic drive ({scn.kind}, seed {args.seed}) to {out}: "
        "4 cameras (released names), /odom, /tf, /tf_static, camera_info; causal-chain "
        "annotations in coc_annotations.jsonl"
    )
    return 0


def _load_policy(model: str | None, device: str, dtype: str, cache: Path):
    """The policy to replay: `model`; without one, the demo checkpoint trained on synthetic
    drives (shipped with the package), or, where it is missing, an untrained tiny
    checkpoint built once in `cache`."""
    from alpamayo_ros.checkpoints import DEMO_CHECKPOINT
    from alpamayo_ros.model.policy import AlpamayoPolicy

    if model is None and (DEMO_CHECKPOINT / "config.json").is_file():
        model = str(DEMO_CHECKPOINT)
        print(
            f"no --model: using the demo checkpoint {model}, trained on synthetic drives "
            "only (it knows nothing of real roads)",
            file=sys.stderr,
        )
    if model is None:
        from alpamayo_ros.model.tiny import make_tiny_checkpoint

        model = str(cache)
        if not (cache / "config.json").is_file():
            make_tiny_checkpoint(cache)
    return AlpamayoPolicy.from_pretrained(model, dtype=dtype, device=device)


def _spare_inputs(out: str, inputs: list[tuple[str, Any]]) -> None:
    """Stop where the output (replaced whole) is an input or holds one."""
    from alpamayo_ros.core.atomic_output import refuse_replacing_inputs

    refuse_replacing_inputs(Path(out), inputs)


def _set_threads(threads: int | None) -> None:
    """torch's intra-op threads (--threads); None leaves torch's default (all cores)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def _lane_latency(text: str | None) -> Any:
    """--latency-ms FULL[,TRAJECTORY] -> LaneLatency (seconds), or None (measured)."""
    from alpamayo_ros.planning.realtime import LaneLatency

    if not text:
        return None
    try:
        values = [float(v) / 1000.0 for v in text.split(",")]
        if len(values) not in (1, 2):
            raise ValueError("one or two numbers")
        return LaneLatency(values[0], values[1] if len(values) == 2 else None)
    except ValueError as err:
        raise ValueError(f"--latency-ms {text!r}: expected FULL[,TRAJECTORY] in ms: {err}") from err


def _replay(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.replay import check_replay_inputs, replay_bag
    from alpamayo_ros.bag.report import UNTRAINED_WARNING

    _spare_inputs(args.out, [("the bag", args.bag), ("the model", args.model),
                             ("the camera config", args.cameras)])  # fmt: skip
    rig = _load_rig(args.cameras)
    # Everything about the inputs first (fast), so a bad path or topic does not wait for
    # the model to load.
    config = planner_config({n: getattr(args, n) for n in REPLAY_PLANNER_FLAGS})
    navigation = args.navigation is not None or args.navigation_topic is not None
    _check_model_inputs(rig, args.model, config.frames_per_camera, navigation)
    if config.quantization != "none":
        import torch

        from alpamayo_ros.model.quantization import fp8_unavailable

        device = "cuda" if args.device == "auto" else args.device
        reason = fp8_unavailable(torch.device(device))
        if reason is not None:
            raise ValueError(f"--quantization {config.quantization}: {reason}")
    check_replay_inputs(
        args.bag, rig, args.odom, args.start, args.duration, args.out, args.navigation_topic,
        args.rate,
    )  # fmt: skip
    settings = config.settings
    latency = _lane_latency(args.latency_ms)
    out = Path(args.out)
    _set_threads(args.threads)
    cache = Path(tempfile.gettempdir()) / "alpamayo-ros-untrained-tiny-checkpoint"
    policy = _load_policy(args.model, args.device, args.dtype, cache)
    policy.configure(config.engine, config.vision_cache_frames, config.quantization)
    banner = f"\n*** {UNTRAINED_WARNING} ***\n"
    if policy.untrained:
        print(banner, file=sys.stderr)
    from alpamayo_ros.planning.realtime import LaneSharing
    from alpamayo_ros.planning.settings import jpeg_on_model
    from alpamayo_ros.planning.warm_up import warm_up_wanted

    sharing = LaneSharing(args.max_chain_age, args.stale_chain_slice) if args.one_device else None
    result = replay_bag(
        args.bag, policy, rig, out, settings,
        rate_hz=args.rate, odom_source=args.odom, start=args.start, duration=args.duration,
        realtime=args.realtime, planning_mode=args.planning_mode, latency=latency,
        autoware_wheelbase=args.autoware, frames_per_camera=config.frames_per_camera,
        navigation=args.navigation, navigation_topic=args.navigation_topic,
        sharing=sharing, defer_jpeg=jpeg_on_model(config.image_decode, policy),
        warm_up=warm_up_wanted(config.warm_up, config.engine),
    )  # fmt: skip
    summary = result.summary()
    if result.truncation:
        print(f"note: {result.truncation}")
    print(
        f"{summary['plans']} plans over {len(result.steps) / args.rate:.1f} s of bag time "
        f"({summary['model_plans']} from the model; stop plans: "
        f"{summary['fallback_plans'] or 'none'}); skipped inputs: "
        f"{summary['skipped_inputs'] or 'none'}"
    )
    baseline = summary["constant_velocity_mean_m"]
    baseline_ca = summary["constant_accel_curvature_mean_m"]
    for key in ("ade_1.0s", "ade_3.0s", "ade_6.4s", "min_ade_3.0s"):
        if key in summary["metrics_mean_m"]:
            cv = f", constant velocity {baseline[key]:.3f} m" if key in baseline else ""
            if key in baseline_ca:
                cv += f", constant accel/curvature {baseline_ca[key]:.3f} m"
            print(
                f"  {key}: {summary['metrics_mean_m'][key]:.3f} m over "
                f"{summary['metrics_plan_count'][key]} plans{cv}"
            )
    total = summary["latency"].get("total")
    if total:
        print(f"  latency total: p50 {total['p50_ms']:.0f} ms, p99 {total['p99_ms']:.0f} ms")
    if "realtime" in summary:
        rt = summary["realtime"]
        age, chain = rt["plan_age_at_publish_s"], rt["chain_age_s"]
        print(
            f"realtime ({summary['planning_mode']}): {rt['plans_per_bag_second']:.1f} plans and "
            f"{rt['model_plans_per_bag_second']:.1f} model plans per second of bag time; "
            f"{rt['dropped_cycles']} cycles dropped, {rt['late_plans']} late plans"
        )
        if rt["warm_up_seconds"]:
            print(f"  warm-up before the first plan (compilation, not timed): "
                  f"{rt['warm_up_seconds']:.1f} s")  # fmt: skip
        if age:
            print(f"  plan age when published: p50 {age['p50']:.2f} s, max {age['max']:.2f} s")
        if chain and summary["planning_mode"] == "two_lane":
            print(f"  causal-chain age: p50 {chain['p50']:.2f} s, max {chain['max']:.2f} s")
    print(f"throughput: {summary['plans_per_second']:.2f} plans/s on {args.device}")
    if policy.untrained:
        print(banner, file=sys.stderr)
    print(f"report: {out / 'report.html'}\nsummary: {out / 'summary.json'}")
    print(f"plans bag: {out / 'plans'} (ros2 bag play, or open plans.mcap in Foxglove)")
    return 130 if result.interrupted else 0


def _ask(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.question import ask_bag
    from alpamayo_ros.core.cameras import ALPAMAYO1_5

    rig = _load_rig(args.cameras)
    if args.model is None:
        raise ValueError("ask needs --model: an Alpamayo 1.5 checkpoint folder")
    family = _check_model_inputs(rig, args.model, args.frames_per_camera)
    if family != ALPAMAYO1_5:
        raise ValueError(f"questions need an Alpamayo 1.5 checkpoint; {args.model} is {family}")
    _set_threads(args.threads)
    if not args.question.strip():
        raise ValueError("the question is empty")
    check_values(
        tuple(s for s in PLANNER_PARAMS if s.name == "temperature"),
        {"temperature": args.temperature},
    )
    policy = _load_policy(args.model, args.device, args.dtype, Path(tempfile.gettempdir()))
    result = ask_bag(
        args.bag, policy, rig, args.at, args.question, args.frames_per_camera,
        max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
    )  # fmt: skip
    frames, answer = result.frames, result.answer
    if policy.untrained:
        print("(untrained checkpoint: random weights, the answer means nothing)", file=sys.stderr)
    print(
        f"frames at t0 = {frames.t0:.3f} s, {frames.t0 - result.bag_start:.2f} s into the bag "
        f"({len(frames.cameras)} cameras x "
        f"{frames.stamps.shape[1]} frames: {', '.join(frames.cameras)})"
    )
    if result.skipped:
        print(f"skipped inputs: {result.skipped}")
    print(f"answer{'' if answer.complete else ' (cut at --max-tokens)'}: {answer.text}")
    print(f"{answer.timings_ms.get('total', 0.0):.0f} ms on {args.device}")
    return 0


def _build_dataset(args: argparse.Namespace) -> int:
    from alpamayo_ros.training.dataset import build_dataset

    bags = [("the bag", bag) for bag in args.bags]
    _spare_inputs(args.out, [("the annotations", args.annotations), *bags])
    report = build_dataset(
        args.bags, args.annotations, args.out, _load_rig(args.cameras), odom_source=args.odom,
        rate_hz=args.rate, per_shard=args.per_shard,
    )  # fmt: skip
    print(
        f"{report.samples} samples in {report.shards} shards in {args.out}; skipped: "
        f"{dict(report.skipped) or 'none'}"
    )
    return 0


def _train_settings(args: argparse.Namespace):
    return settings_from_args(TrainSettings, args)


def _train_sft(args: argparse.Namespace) -> int:
    from alpamayo_ros.training.trainer import train_sft

    _spare_inputs(args.out, [("the checkpoint", args.checkpoint), ("the dataset", args.dataset)])
    records = train_sft(args.checkpoint, args.dataset, args.out, _train_settings(args))
    print(f"trained {records[-1]['step'] if records else 0} steps; checkpoint: {args.out}")
    return 0


def _train_grpo(args: argparse.Namespace) -> int:
    from alpamayo_ros.training.trainer import train_grpo

    _spare_inputs(args.out, [("the checkpoint", args.checkpoint), ("the dataset", args.dataset),
                             ("the reference", args.reference)])  # fmt: skip
    grpo = settings_from_args(GRPOSettings, args)
    settings = settings_from_args(GRPOTrainSettings, args, grpo=grpo)
    judge = None
    if args.judge_url:
        from alpamayo_ros.training.rewards import OpenAIJudge

        judge = OpenAIJudge(args.judge_url, args.judge_model, os.environ.get("JUDGE_API_KEY"))
    from alpamayo_ros.training.rewards import CombinedReward

    train_grpo(
        args.checkpoint, args.dataset, args.out, settings, CombinedReward.default(judge),
        reference=args.reference,
    )  # fmt: skip
    print(f"GRPO checkpoint: {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import itertools
    import json

    from alpamayo_ros.core.atomic_output import check_output_file, write_text_atomically
    from alpamayo_ros.model.policy import AlpamayoPolicy
    from alpamayo_ros.training.dataset import DamagedPart, DamageLog, iter_samples
    from alpamayo_ros.training.evaluate import evaluate_policy

    if args.stride < 1:
        raise ValueError(f"--stride must be >= 1, got {args.stride}")
    if args.out:
        _spare_inputs(args.out, [("the model", args.model), ("the dataset", args.dataset)])
        check_output_file(Path(args.out))  # before the evaluation, not after it
    damaged: list[DamagedPart] = []
    samples = iter_samples(args.dataset, damaged, args.stride)  # decoded as evaluated
    first = next(samples, None)  # before the model loads
    damage = DamageLog(args.dataset)
    if first is None:  # the error names the first damaged part: no warning line before it
        damage.add([str(part) for part in damaged], warn=False)
        raise damage.nothing_read()
    policy = AlpamayoPolicy.from_pretrained(args.model, device=args.device)
    report = evaluate_policy(
        policy, itertools.chain([first], samples), num_samples=args.num_samples,
        seed=args.seed, sample_choice=args.sample_choice,
    )  # fmt: skip
    damage.add([str(part) for part in damaged])
    metrics = report.as_dict() | {"damaged_parts": [str(part) for part in damaged]}
    _print_eval(metrics)
    if args.out:
        write_text_atomically(Path(args.out), json.dumps(metrics, indent=2) + "\n")
    return 0


def _print_eval(metrics: dict) -> None:
    model, cv = metrics["model"], metrics["constant_velocity"]
    damaged = len(metrics.get("damaged_parts", []))
    skipped = f" ({damaged} damaged parts of the dataset skipped)" if damaged else ""
    print(f"{metrics['samples']} held-out samples{skipped}")
    for key in ("ade_1.0s", "ade_3.0s", "ade_6.4s", "fde_3.0s"):
        if key in model:
            print(f"  {key}: model {model[key]:.3f} m, constant velocity {cv[key]:.3f} m")
    print(
        f"  reasoning-action consistency: {100 * metrics['consistency']:.1f} % of published "
        f"plans ({100 * metrics['sample_consistency']:.1f} % of all samples drawn)"
    )
    print(f"  stated action = annotated action: {100 * metrics['annotation_agreement']:.1f} %")


def _train_demo(args: argparse.Namespace) -> int:
    from alpamayo_ros.checkpoints import DEMO_CHECKPOINT
    from alpamayo_ros.training.demo import train_demo

    out = Path(args.out) if args.out else DEMO_CHECKPOINT
    _spare_inputs(str(out), [("the work folder", args.work)])
    metrics = train_demo(args.work, out)
    _print_eval(metrics)
    print(f"demo checkpoint: {out} (metrics in {out / 'demo_metrics.json'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alpamayo-ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not one line"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "inspect-bag",
        help="step through a bag at the planner's rate and check inputs and logged future",
    )
    p.add_argument("bag", help="ROS 2 bag folder (sqlite3 or MCAP)")
    p.add_argument("--cameras", help="camera rig YAML (default: the released rig's topics)")
    p.add_argument("--odom", default="/odom", help="nav_msgs/Odometry or /tf topic")
    p.add_argument("--rate", type=float, default=10.0, help="planning rate, Hz")
    p.add_argument("--out", default="out/inspect", help="folder for logged_drive.json")
    p.add_argument(
        "--suggest-rig", action="store_true",
        help="print a camera rig YAML for this bag instead: each calibrated camera "
        "(camera_info + /tf_static) matched to the model's cameras by heading and field of "
        "view (exit 2 when the family's cameras are not all found)",
    )  # fmt: skip
    p.add_argument(
        "--family", choices=FAMILIES, default=FAMILIES[0],
        help="checkpoint family the rig is for (--suggest-rig): alpamayo1 needs its four "
        "cameras, alpamayo1_5 reads any of the seven",
    )  # fmt: skip
    p.add_argument("--base-frame", default="base_link", help="the vehicle frame (REP-105)")
    p.set_defaults(func=_inspect_bag)

    p = sub.add_parser(
        "check-config",
        help="check ROS 2 parameter files (and camera configs) for the planner and controller "
        "nodes as they would at start-up, without ROS (exit 1 when a node would refuse them)",
    )  # fmt: skip
    p.add_argument("files", nargs="+", help="parameter YAML files (later ones override)")
    p.add_argument(
        "--namespace", metavar="NS",
        help="check the nodes as they would run in namespace NS ('/' for the root, as "
        "drive.launch.py namespace:=NS starts them): a file that names a node only under keys "
        "that do not reach it there is refused, as at start-up (default: a key naming the "
        "node in any namespace counts)",
    )  # fmt: skip
    p.set_defaults(func=_check_config)

    p = sub.add_parser(
        "make-tiny-checkpoint",
        help="write a tiny random checkpoint in the released layout (tests, demos)",
    )
    p.add_argument("directory", help="output folder (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    p.add_argument("--pixels", type=int, default=32768, help="image pixel budget of its processor")
    p.add_argument("--force", action="store_true", help="replace a folder that is not empty")
    p.add_argument(
        "--family", choices=FAMILIES, default=FAMILIES[0],
        help="checkpoint layout: alpamayo1 (Alpamayo-R1) or alpamayo1_5 (Alpamayo 1.5)",
    )  # fmt: skip
    p.set_defaults(func=_make_tiny_checkpoint)

    p = sub.add_parser(
        "make-sample-bag",
        help="write a synthetic drive as a ROS 2 MCAP bag (the demo input; training data)",
    )
    p.add_argument("directory", help="output bag folder (created)")
    p.add_argument("--seed", type=int, default=0, help="scenario and rendering seed")
    p.add_argument(
        "--kind", default="combined", choices=["combined", "lead_brake", "pedestrian", "clear"]
    )
    p.add_argument("--duration", type=float, default=8.0, help="seconds")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    p.set_defaults(func=_make_sample_bag)

    p = sub.add_parser(
        "replay",
        help="run the planner over a bag (no ROS needed): plans bag, report.html, summary.json",
    )
    p.add_argument("bag", help="ROS 2 bag folder (sqlite3 or MCAP)")
    p.add_argument(
        "--model",
        help="checkpoint folder, Hugging Face repo id in the local cache, or 'demo' (default: "
        "the demo checkpoint shipped with the package, trained on synthetic drives only)",
    )
    p.add_argument("--cameras", help="camera rig YAML (default: the released rig's topics)")
    p.add_argument("--odom", default="/odom", help="nav_msgs/Odometry or /tf topic")
    p.add_argument("--rate", type=float, default=10.0, help="planning rate, Hz of bag time")
    # The planner's settings: declared once in the node parameter table.
    add_arguments(
        p, PLANNER_PARAMS, REPLAY_PLANNER_FLAGS,
        aliases={"num_samples": ("--samples",), "num_flow_steps": ("--flow-steps",)},
        defaults={"seed": 0},  # a report is reproducible (plan k uses seed + k)
    )  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--start", type=float, default=0.0, help="seconds into the bag to begin")
    p.add_argument("--duration", type=float, help="seconds of bag time to replay")
    p.add_argument(
        "--realtime", action="store_true",
        help="bag time advances by the model's latency: plans published when they would be "
        "finished, inputs meanwhile dropped as the node drops them",
    )  # fmt: skip
    # The node's planning_mode (same choices and meaning); in a replay two_lane implies
    # --realtime.
    add_arguments(p, PLANNER_PARAMS, ("planning_mode",))
    p.add_argument(
        "--one-device", action="store_true",
        help="two_lane: the lanes share one device as the planner node's worker does (the "
        "reasoning lane gets the time trajectory plans leave, and stale_chain_slice after each "
        "plan once the chain is older than max_chain_age); default: side by side",
    )  # fmt: skip
    add_arguments(p, PLANNER_PARAMS, ("max_chain_age", "stale_chain_slice"))
    p.add_argument(
        "--latency-ms", metavar="FULL[,TRAJECTORY]",
        help="simulated latency of a full plan and of a trajectory-lane plan, ms (default: "
        "the measured time of each call on this machine)",
    )  # fmt: skip
    nav = p.add_mutually_exclusive_group()
    nav.add_argument(
        "--navigation", metavar="TEXT",
        help="route text for every plan, e.g. 'Turn left in 30m' (Alpamayo 1.5 checkpoints)",
    )  # fmt: skip
    nav.add_argument(
        "--navigation-topic", metavar="TOPIC",
        help="std_msgs/String topic of the bag with route text (Alpamayo 1.5 checkpoints)",
    )  # fmt: skip
    p.add_argument("--out", default="out/replay", help="output folder")
    p.add_argument(
        "--params", metavar="FILE", action="append",
        help="the planner node's ROS 2 parameter file (repeatable; later ones win): its model, "
        "device, dtype, camera_config, odom_topic, rate_hz and planner settings become the "
        "replay's, checked as check-config checks them; options given here win over it",
    )  # fmt: skip
    p.add_argument(
        "--autoware", type=float, metavar="WHEELBASE", nargs="?", const=2.8,
        help="also write autoware_planning_msgs/Trajectory on /alpamayo_planner/autoware/"
        "trajectory (front wheel angles for WHEELBASE m, default 2.8)",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=int,
        help="torch CPU threads (default: all cores; lower it when sharing the machine)",
    )  # fmt: skip
    p.set_defaults(func=_replay)

    p = sub.add_parser(
        "ask",
        help="ask an Alpamayo 1.5 checkpoint a question about a bag's scene at a given time",
    )
    p.add_argument("bag", help="ROS 2 bag folder (sqlite3 or MCAP)")
    p.add_argument("question", help='e.g. "Is the traffic light ahead red?"')
    p.add_argument(
        "--at", type=float, required=True, help="seconds after the bag's start: the newest "
        "complete frame set received by then is shown to the model",
    )  # fmt: skip
    p.add_argument("--model", help="Alpamayo 1.5 checkpoint folder (or repo id in the cache)")
    p.add_argument("--cameras", help="camera rig YAML (default: the released rig's topics)")
    add_arguments(p, PLANNER_PARAMS, ("frames_per_camera", "temperature"))
    p.add_argument("--max-tokens", type=int, default=256, help="longest answer, tokens")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.set_defaults(func=_ask)

    p = sub.add_parser("build-dataset", help="bags + causal-chain annotations -> training shards")
    p.add_argument("bags", nargs="+", help="ROS 2 bag folders")
    p.add_argument("--annotations", required=True, help="JSON lines: bag, t, reasoning, ...")
    p.add_argument("--out", required=True, help="output folder of shard-*.tar")
    p.add_argument("--cameras", help="camera rig YAML (default: the released rig's topics)")
    p.add_argument("--odom", default="/odom", help="nav_msgs/Odometry or /tf topic")
    p.add_argument("--rate", type=float, default=10.0, help="samples per second of bag time")
    p.add_argument("--per-shard", type=int, default=256, help="samples per shard")
    p.set_defaults(func=_build_dataset)

    p = sub.add_parser("train-sft", help="supervised fine-tuning (CE + flow matching)")
    p.add_argument("checkpoint", help="checkpoint to start from (released layout)")
    p.add_argument("dataset", help="folder of shards from build-dataset")
    p.add_argument("--out", required=True, help="output checkpoint folder")
    add_setting_flags(p, TrainSettings, SFT_FLAGS)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.set_defaults(func=_train_sft)

    p = sub.add_parser("train-grpo", help="GRPO post-training with the three rewards")
    p.add_argument("checkpoint", help="the SFT checkpoint (also the KL reference by default)")
    p.add_argument("dataset", help="folder of shards from build-dataset")
    p.add_argument("--out", required=True, help="output checkpoint folder")
    p.add_argument("--reference", help="reference checkpoint of the KL term")
    add_setting_flags(p, GRPOTrainSettings, GRPO_TRAIN_FLAGS)
    add_setting_flags(p, GRPOSettings, GRPO_FLAGS)
    p.add_argument("--judge-url", help="OpenAI-compatible endpoint of an LLM judge (optional; "
                   "API key from JUDGE_API_KEY)")  # fmt: skip
    p.add_argument("--judge-model", default="judge", help="model name at the judge endpoint")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.set_defaults(func=_train_grpo)

    p = sub.add_parser("evaluate", help="open-loop metrics and consistency on a dataset")
    p.add_argument("model", help="checkpoint folder")
    p.add_argument("dataset", help="folder of shards from build-dataset")
    # scored as the planner publishes: its sampling settings from the parameter table
    add_arguments(
        p, PLANNER_PARAMS, ("num_samples", "sample_choice", "seed"),
        aliases={"num_samples": ("--samples",)}, defaults={"seed": 0},
    )  # fmt: skip
    p.add_argument("--stride", type=int, default=1, help="evaluate every n-th sample")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="write the metrics as JSON here")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "train-demo", help="make synthetic drives, train and evaluate the demo checkpoint"
    )
    p.add_argument("--work", default="out/demo", help="folder for drives, datasets, logs")
    p.add_argument("--out", help="checkpoint folder (default: the package's demo_checkpoint)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.set_defaults(func=_train_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    prefer_passive_waiting()  # before anything loads torch
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        if getattr(args, "params", None):
            _apply_params_file(args, _given_options(argv, args.command))
        if args.func in (_train_sft, _train_grpo, _evaluate, _train_demo):
            _set_threads(args.threads)
        return int(args.func(args))
    except (ValueError, RuntimeError, OSError) as err:
        if args.debug:
            raise
        print(f"alpamayo-ros {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"alpamayo-ros {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
