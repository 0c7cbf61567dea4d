"""`alpamayo-ros` command line: offline tools that need no ROS install."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _load_rig(path: str | None):
    from alpamayo_ros.core.camera_rig import CameraRig

    if path is None:
        return CameraRig.released_default()
    return CameraRig.from_yaml(path)


def _metres(value: object) -> str:
    return f"{value:.3f} m" if isinstance(value, float) else "n/a"


def _inspect_bag(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.logged_drive import inspect_logged_drive

    rig = _load_rig(args.cameras)
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
    print(f"report: {path}")
    return 0


def _make_tiny_checkpoint(args: argparse.Namespace) -> int:
    from alpamayo_ros.model.tiny import make_tiny_checkpoint

    path = make_tiny_checkpoint(args.directory, seed=args.seed, pixels=args.pixels)
    print(f"wrote an untrained tiny checkpoint (released layout, random weights) to {path}")
    return 0


def _make_sample_bag(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.sample_drive import write_sample_bag

    out = Path(args.directory)
    if out.exists():
        if not args.force:
            print(f"{out} exists; pass --force to replace it", file=sys.stderr)
            return 2
        import shutil

        shutil.rmtree(out)
    scn = write_sample_bag(out, seed=args.seed, kind=args.kind, duration=args.duration)
    print(
        f"wrote a {scn.duration:g} s synthetic drive ({scn.kind}, seed {args.seed}) to {out}: "
        "4 cameras (released names), /odom, /tf, /tf_static, camera_info; causal-chain "
        "annotations in coc_annotations.jsonl"
    )
    return 0


def _load_policy(model: str | None, device: str, dtype: str, cache: Path):
    """The policy to replay: `model`, or the untrained tiny checkpoint (built once in
    `cache`) when none is given."""
    from alpamayo_ros.model.policy import AlpamayoPolicy

    if model is None:
        from alpamayo_ros.model.tiny import make_tiny_checkpoint

        model = str(cache)
        if not (cache / "config.json").is_file():
            make_tiny_checkpoint(cache)
    return AlpamayoPolicy.from_pretrained(model, dtype=dtype, device=device)


def _replay(args: argparse.Namespace) -> int:
    from alpamayo_ros.bag.replay import replay_bag
    from alpamayo_ros.bag.report import UNTRAINED_WARNING
    from alpamayo_ros.model.planner import PlannerSettings

    rig = _load_rig(args.cameras)
    settings = PlannerSettings(
        num_samples=args.samples,
        temperature=args.temperature,
        top_p=args.top_p,
        max_reasoning_tokens=args.max_reasoning_tokens,
        num_flow_steps=args.flow_steps,
        seed=args.seed,
    )
    out = Path(args.out)
    policy = _load_policy(args.model, args.device, args.dtype, out / "untrained-tiny-checkpoint")
    banner = f"\n*** {UNTRAINED_WARNING} ***\n"
    if policy.untrained:
        print(banner, file=sys.stderr)
    result = replay_bag(
        args.bag, policy, rig, out, settings,
        rate_hz=args.rate, odom_source=args.odom, start=args.start, duration=args.duration,
    )  # fmt: skip
    summary = result.summary()
    print(
        f"{summary['plans']} plans over {len(result.steps) / args.rate:.1f} s of bag time "
        f"({summary['model_plans']} from the model; stop plans: "
        f"{summary['fallback_plans'] or 'none'}); skipped inputs: "
        f"{summary['skipped_inputs'] or 'none'}"
    )
    for key in ("ade_1.0s", "ade_3.0s", "ade_6.4s", "min_ade_3.0s"):
        if key in summary["metrics_mean_m"]:
            print(f"  {key}: {summary['metrics_mean_m'][key]:.3f} m")
    total = summary["latency"].get("total")
    if total:
        print(f"  latency total: p50 {total['p50_ms']:.0f} ms, p99 {total['p99_ms']:.0f} ms")
    print(f"throughput: {summary['plans_per_second']:.2f} plans/s on {args.device}")
    if policy.untrained:
        print(banner, file=sys.stderr)
    print(f"report: {out / 'report.html'}\nsummary: {out / 'summary.json'}")
    print(f"plans bag: {out / 'plans'} (ros2 bag play, or open plans.mcap in Foxglove)")
    return 130 if result.interrupted else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alpamayo-ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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
    p.set_defaults(func=_inspect_bag)

    p = sub.add_parser(
        "make-tiny-checkpoint",
        help="write a tiny random checkpoint in the released layout (tests, demos)",
    )
    p.add_argument("directory", help="output folder (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    p.add_argument("--pixels", type=int, default=32768, help="image pixel budget of its processor")
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
        help="checkpoint folder or Hugging Face repo id in the local cache "
        "(default: an untrained tiny checkpoint, said loudly)",
    )
    p.add_argument("--cameras", help="camera rig YAML (default: the released rig's topics)")
    p.add_argument("--odom", default="/odom", help="nav_msgs/Odometry or /tf topic")
    p.add_argument("--rate", type=float, default=10.0, help="planning rate, Hz of bag time")
    p.add_argument("--samples", type=int, default=6, help="trajectory samples per plan")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.98)
    p.add_argument("--max-reasoning-tokens", type=int, default=128)
    p.add_argument("--flow-steps", type=int, help="denoising steps (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (plan k uses seed + k)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--start", type=float, default=0.0, help="seconds into the bag to begin")
    p.add_argument("--duration", type=float, help="seconds of bag time to replay")
    p.add_argument("--out", default="out/replay", help="output folder")
    p.set_defaults(func=_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        return int(args.func(args))
    except (ValueError, RuntimeError, OSError) as err:
        print(f"alpamayo-ros {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
