"""`alpamayo-ros` command line: offline tools that need no ROS install."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml


def _load_rig(path: str | None):
    from alpamayo_ros.core.camera_rig import CameraRig

    if path is None:
        return CameraRig.released_default()
    with open(path) as f:
        return CameraRig.from_dict(yaml.safe_load(f))


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
