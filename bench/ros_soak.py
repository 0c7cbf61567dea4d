"""Soak run of the node set on a real ROS 2: memory, CPU and planning over a long drive.

`replay.launch.py loop:=true` plays a bag again and again at real time (`ros2 bag play
--loop --clock`) to the planner and the controller, for `--minutes`. Every `--every` s this
samples each node process's resident memory (VmRSS, /proc) and CPU time, and the planner's
counters (PlannerStatus on ~/status: plans, stop plans, dropped cycles, bad messages, time
jumps); model plans are counted on ~/plan per minute. A leak shows as resident memory that
keeps rising after the warm-up: the result gives each process's memory at the end of the
warm-up, at the end, its peak and the least-squares slope after the warm-up (MB per hour),
the cores it kept busy after the warm-up (CPU seconds per second), and the model-plan rate
of the first and the last minute (a planner alive but no longer planning is not a pass).
`OMP_WAIT_POLICY` in the environment reaches the nodes (they set PASSIVE where it is unset).

`--lifecycle-manager`: the nodes managed (`managed:=true autostart:=false`) and brought up by
nav2's lifecycle manager (`nav2_lifecycle_manager`, its defaults: bond_timeout 4 s), which
holds a bond with each for the whole run; the result counts what its log says (bonds formed,
nodes reported down). A node whose heartbeats stall under load for 4 s shows there.

Default drive: a fresh synthetic sample bag (`make-sample-bag`, 30 s) and a fresh tiny
checkpoint on the CPU in two_lane, as the launch tests use. `--planner-params` gives your own
parameters file instead (your checkpoint, device), `--bag` your own bag.

Needs ROS 2 (rclpy, ros2 launch, rosbag2) and the package built (its messages); not a test:
    python bench/ros_soak.py --minutes 20 --domain-id 77 --out bench/results/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NODES = ("alpamayo_planner", "alpamayo_controller")


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` (MB), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) process `pid` has used (s), None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def node_pids(root: int) -> dict[str, int]:
    """The node processes under process `root` (the launch), by node executable name."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: dict[str, int] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        for name in NODES:  # python3 .../lib/alpamayo_ros/NAME --ros-args ...
            if any(Path(arg).name == name for arg in argv[:2]):
                found.setdefault(name, pid)
    return found


def stop_group(pgid: int, wait: float = 20.0) -> None:
    """Until no process of group `pgid` is left (the nodes after their launch): SIGKILL for
    those still there after `wait` s."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            return
        time.sleep(0.5)


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (s, MB) points, in MB per hour (None: fewer than 3)."""
    if len(points) < 3:
        return None
    t, mb = np.asarray(points).T
    return float(3600.0 * np.polyfit(t, mb, 1)[0])


def sample_drive(work: Path) -> tuple[Path, Path]:
    """A 30 s sample bag and a tiny-checkpoint planner parameters file in `work`."""
    sys.path.insert(0, str(REPO / "test" / "nodes"))
    from launch_files import tiny_planner_params

    from alpamayo_ros.bag.sample_drive import write_sample_bag

    bag = work / "sample"
    write_sample_bag(bag, seed=1, kind="combined", duration=30.0)
    params, _ = tiny_planner_params(
        work, planning_mode="two_lane", num_samples=2, max_reasoning_tokens=8,
        num_flow_steps=2, seed=0, diagnostics_period=0.5,
    )  # fmt: skip
    return bag, params


class Listener:
    """~/plan and ~/status of the planner, counted on a background executor."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from alpamayo_ros.msg import DrivingPlan, PlannerStatus

        rclpy.init()
        self.node = rclpy.create_node("soak_listener")
        self.model_plans: list[float] = []  # wall time of each model plan
        self.status: Any = None
        self.lock = threading.Lock()
        self.node.create_subscription(DrivingPlan, "/alpamayo_planner/plan", self._plan, 50)
        self.node.create_subscription(PlannerStatus, "/alpamayo_planner/status", self._status, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _plan(self, msg: Any) -> None:
        if not msg.is_fallback:
            with self.lock:
                self.model_plans.append(time.monotonic())

    def _status(self, msg: Any) -> None:
        with self.lock:
            self.status = msg

    def plans_between(self, t0: float, t1: float) -> int:
        with self.lock:
            return sum(t0 <= t < t1 for t in self.model_plans)

    def counters(self) -> dict[str, int]:
        with self.lock:
            s = self.status
        if s is None:
            return {}
        fields = ("plans_published", "fallback_plans", "dropped_cycles", "bad_messages",
                  "late_plans", "time_jumps")  # fmt: skip
        return {f: int(getattr(s, f)) for f in fields}

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="length of the run (min)")
    ap.add_argument("--warm-up", type=float, default=3.0, help="minutes left out of the slope")
    ap.add_argument("--every", type=float, default=10.0, help="sampling period (s)")
    ap.add_argument("--bag", type=Path, help="bag to loop (default: a 30 s sample drive)")
    ap.add_argument("--planner-params", type=Path, help="planner parameters file")
    ap.add_argument("--out", type=Path, required=True, help="result JSON")
    ap.add_argument(
        "--lifecycle-manager",
        action="store_true",
        help="managed nodes brought up by nav2's lifecycle manager (bonds held)",
    )
    ap.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID of the run: one of its own, "
                    "so that no other test or vehicle on the network mixes in")  # fmt: skip
    args = ap.parse_args(argv)
    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)  # the listener and the launch
    if args.minutes <= args.warm_up:
        ap.error(f"--minutes {args.minutes} must be longer than --warm-up {args.warm_up}")

    work = Path(tempfile.mkdtemp(prefix="alpamayo_soak_"))
    bag, params = args.bag, args.planner_params
    if bag is None or params is None:  # the sample drive for what was not given
        sample_bag, sample_params = sample_drive(work)
        bag, params = bag or sample_bag, params or sample_params
    listener = Listener()
    log = (work / "launch.log").open("w")
    cmd = ["ros2", "launch", str(REPO / "launch" / "replay.launch.py"), f"bag:={bag}",
           f"planner_params:={params}", "enable_controller:=true", "loop:=true"]  # fmt: skip
    manager_cmd = [
        "ros2", "run", "nav2_lifecycle_manager", "lifecycle_manager", "--ros-args",
        "-r", "__node:=lifecycle_manager_alpamayo", "-p", "autostart:=true",
        "-p", f"node_names:=[{','.join(NODES)}]", "-p", "use_sim_time:=true",
    ]  # fmt: skip
    if args.lifecycle_manager:
        cmd += ["managed:=true", "autostart:=false"]
    # A shell's background job starts with SIGINT ignored, and a child inherits that: the
    # launch could then not be stopped as Ctrl-C stops it. A handler resets on exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    launch = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    groups = [launch]
    if args.lifecycle_manager:
        manager_log = (work / "lifecycle_manager.log").open("w")
        groups.append(
            subprocess.Popen(
                manager_cmd, stdout=manager_log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    start = time.monotonic()
    samples: list[dict[str, Any]] = []
    try:
        while time.monotonic() - start < 60.0 * args.minutes:
            time.sleep(args.every)
            if launch.poll() is not None:
                print(f"the launch ended early (exit {launch.returncode}): {work}/launch.log")
                break
            t = time.monotonic() - start
            pids = node_pids(launch.pid)
            if not samples:
                print("node processes: " + ", ".join(f"{k} {v}" for k, v in pids.items()))
            rss = {name: rss_mb(pid) for name, pid in pids.items()}
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            samples.append({"t": round(t, 1), "rss_mb": rss, "cpu_s": cpu, **listener.counters()})
            print(f"{t:7.0f} s  " + "  ".join(f"{k} {v:.0f} MB" for k, v in rss.items() if v))
    except KeyboardInterrupt:
        print("interrupted: writing what was sampled")
    finally:
        end = time.monotonic()
        for process in reversed(groups):  # the manager first: it must not see nodes end
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):  # Ctrl-C, then harder
                os.killpg(process.pid, sig)
                try:
                    process.wait(30)
                    break
                except subprocess.TimeoutExpired:
                    continue
            stop_group(process.pid)
        listener.close()

    warm = 60.0 * args.warm_up
    processes: dict[str, Any] = {}
    for name in NODES:
        points = [(s["t"], s["rss_mb"][name]) for s in samples if s["rss_mb"].get(name)]
        after = [(t, v) for t, v in points if t >= warm]
        if not after:
            continue
        slope = slope_mb_per_hour(after)
        cpu = [(s["t"], s["cpu_s"][name]) for s in samples
               if s["t"] >= warm and s["cpu_s"].get(name) is not None]  # fmt: skip
        busy = (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]) if len(cpu) > 1 else None
        processes[name] = {
            "rss_after_warm_up_mb": round(after[0][1], 1),
            "rss_end_mb": round(after[-1][1], 1),
            "rss_peak_mb": round(max(v for _, v in points), 1),
            "slope_mb_per_hour": None if slope is None else round(slope, 1),
            # CPU seconds per second after the warm-up (1.0 = one core busy all the time)
            "cpu_cores_after_warm_up": None if busy is None else round(busy, 3),
        }
    result = {
        "command": " ".join(cmd),
        "ros_domain_id": os.environ.get("ROS_DOMAIN_ID", "0"),
        # torch's idle threads: the nodes set PASSIVE unless the environment sets it
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (the nodes: PASSIVE)"),
        "minutes": round((end - start) / 60.0, 2),
        "warm_up_minutes": args.warm_up,
        "load_average": os.getloadavg(),
        "processes": processes,
        "model_plans_first_minute": listener.plans_between(start, start + 60.0),
        "model_plans_last_minute": listener.plans_between(end - 60.0, end),
        "counters_end": listener.counters(),
        "samples": samples,
    }
    if args.lifecycle_manager:
        said = (work / "lifecycle_manager.log").read_text()
        result["lifecycle_manager"] = {
            "command": " ".join(manager_cmd),
            "bonds_formed": said.count("connected with bond."),
            "nodes_reported_down": said.count("CRITICAL FAILURE"),
            "bring_ups": said.count("Managed nodes are active"),
            "failed_bring_ups": said.count("Aborting bringup"),
        }
        print(f"lifecycle manager: {result['lifecycle_manager']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, p in processes.items():
        print(f"{name}: {p}")
    print(f"model plans: first minute {result['model_plans_first_minute']}, "
          f"last minute {result['model_plans_last_minute']}; {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
