"""The nodes' parameters, declared once: name, default, range or choices, description, and
whether it may change while the node runs.

ROS-free (rclpy is imported only by `declare_parameters`), so CI checks that bad values
fail at start-up with the parameter's name and value. From the tables: the nodes declare
exactly these (with ranges; read-only unless runtime) and build their settings with
`planner_config` / `controller_config`; `runtime_change` checks a change while running;
`unknown_parameter_problem` names a parameter given that a node lacks; LAUNCH_OVERRIDES,
`launch_help` and `launch_value` give drive.launch.py's overriding arguments; the replay's
flags come from `add_arguments`; the YAML files and docs/parameters.md from
alpamayo_ros.nodes.parameter_docs.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from alpamayo_ros.checkpoints import model_family
from alpamayo_ros.control.tracking import TrackerSettings
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.cameras import ALPAMAYO1_5, check_camera_layout
from alpamayo_ros.core.clock import ClockSettings
from alpamayo_ros.core.encoded_image import MAX_SIZE, MIN_SIZE
from alpamayo_ros.core.plan import PlanLimits
from alpamayo_ros.planning.settings import (
    ENGINE_CHOICES,
    IMAGE_DECODE_CHOICES,
    LATE_PLAN_CHOICES,
    QUANTIZATION_CHOICES,
    SAMPLE_CHOICES,
    PlannerSettings,
)
from alpamayo_ros.planning.warm_up import WARM_UP_CHOICES

Value = bool | int | float | str


class ParameterError(ValueError):
    """A parameter value that cannot be used; the message names it and the value."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its default fixes its type; min/max bound numbers; choices strings;
    runtime: it may be changed while the node runs (ros2 param set), else it is read-only."""

    name: str
    default: Value
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    runtime: bool = False
    form: tuple[str, str] | None = None  # strings: (regular expression, the form in words)

    def check(self, value: Any) -> Value:
        """The value, converted to the parameter's type, or ParameterError."""
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ParameterError(
                f"parameter {self.name} must be {kind.__name__}, got {value!r} "
                f"({type(value).__name__})"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ParameterError(f"parameter {self.name} must be finite, got {value}")
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise ParameterError(
                    f"parameter {self.name} = {value} is outside [{self.min}, {self.max}]"
                )
        if self.form is not None and not re.fullmatch(self.form[0], str(value)):
            raise ParameterError(f"parameter {self.name} = {value!r} is not {self.form[1]}")
        if self.choices and value not in self.choices:
            raise ParameterError(
                f"parameter {self.name} = {value!r} is not one of {list(self.choices)}"
            )
        return value


# The devices a model loads on (model.checkpoint_io.resolve_device checks that it is there).
DEVICE_FORM = (r"auto|cpu|cuda(:[0-9]+)?", "auto, cpu, cuda or cuda:N")

# Both nodes': what nav2's servers call it (nav2_util::LifecycleNode).
BOND_PARAM = ParamSpec(
    "bond_heartbeat_period", 0.1, "Managed nodes (--managed): seconds between the heartbeats "
    "of the bond they hold with nav2's lifecycle manager while active, as nav2's servers do "
    "(its bond_timeout then notices a node that died; needs the bond messages, "
    "ros-$ROS_DISTRO-bond). 0: no bond (the manager then needs bond_timeout 0.0).",
    min=0.0, max=10.0,
)  # fmt: skip

PLANNER_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model", "demo", "Checkpoint folder, or Hugging Face repo id in the local cache "
              "(nothing is downloaded). 'demo': the demo checkpoint shipped with the package "
              "(trained on synthetic drives only). Empty: no model, stop plans only."),
    ParamSpec("device", "auto", "Torch device of the model: cuda, cuda:1, cpu; auto: cuda "
              "when available, else cpu.", form=DEVICE_FORM),
    ParamSpec("dtype", "auto", "Torch dtype of the model; auto: bfloat16 on cuda, float32 on "
              "cpu.", choices=("auto", "bfloat16", "float16", "float32")),
    ParamSpec("camera_config", "", "Camera rig YAML (which topic feeds which model camera). "
              "Empty: config/cameras.yaml of this package (the released rig)."),
    ParamSpec("ego_source", "odometry", "Ego motion from nav_msgs/Odometry on odom_topic, or "
              "from tf (odom_frame -> base_frame).", choices=("odometry", "tf")),
    ParamSpec("odom_topic", "/odom", "nav_msgs/Odometry topic (ego_source odometry)."),
    ParamSpec("odom_frame", "odom", "Fixed frame of the ego poses (REP-105)."),
    ParamSpec("base_frame", "base_link", "The vehicle frame; plans are expressed in it at t0."),
    ParamSpec("rate_hz", 10.0, "Planning rate (timer on the node's clock, sim time too).",
              min=0.1, max=100.0),
    ParamSpec("num_samples", 6, "Trajectory samples drawn per plan.", min=1, max=64),
    ParamSpec("temperature", 0.6, "Sampling temperature of the reasoning (0: greedy).",
              min=0.0, max=2.0),
    ParamSpec("top_p", 0.98, "Nucleus sampling mass of the reasoning.", min=0.01, max=1.0),
    ParamSpec("max_reasoning_tokens", 128, "Longest causal-chain text, tokens.", min=1, max=1024),
    ParamSpec("num_flow_steps", 0, "Denoising steps of the action expert (0: checkpoint's).",
              min=0, max=100),
    ParamSpec("sample_choice", "consistent", "Publish the first sample, the one closest to the "
              "samples' point-wise median, or the one closest to the median of the samples whose "
              "causal chain states what their trajectory does; always among the samples that "
              "pass the plan checks (max_speed, max_curvature) when any does.",
              choices=SAMPLE_CHOICES, runtime=True),
    ParamSpec("seed", -1, "Base sampling seed (-1: fresh randomness every plan).",
              min=-1, max=2**31 - 1),
    ParamSpec("planning_mode", "full", "full: a causal chain per plan (released behaviour); "
              "two_lane: every cycle a trajectory-lane plan with the newest causal chain "
              "teacher-forced (prefill + expert), chains written by a reasoning lane a step at "
              "a time between them on the same GPU.", choices=("full", "two_lane")),
    ParamSpec("max_chain_age", 1.0, "two_lane: seconds (input time) after which the causal chain "
              "counts as stale and reasoning steps may delay waiting inputs (see "
              "stale_chain_slice).", min=0.1, max=60.0),
    ParamSpec("stale_chain_slice", 0.03, "two_lane: wall seconds of reasoning steps run after "
              "each plan while the chain is stale, even though an input waits (at least one "
              "step; 0: never, and a trajectory lane that fills the cycle never refreshes the "
              "chain).", min=0.0, max=1.0),
    ParamSpec("engine", "eager", "Model engine. eager: the reference path. fast: static KV "
              "cache, grouped attention, the decode step and the expert pass compiled (CUDA "
              "graphs on a GPU; the first plan compiles, ~100 s on an H200, and is late); "
              "measured on an H200: a full plan ~500 ms instead of ~1500 ms.",
              choices=ENGINE_CHOICES),
    ParamSpec("vision_cache_frames", 32, "Camera frames whose vision-tower outputs are kept "
              "for later plans (a frame seen by an earlier plan is neither preprocessed nor "
              "encoded again; 12 of 16 at 10 Hz). 0: off.", min=0, max=1024),
    ParamSpec("quantization", "none", "Weights of the language model: none (the checkpoint's "
              "dtype), fp8 (row-wise float8 weights: FP8 products for the prefill, decode "
              "steps on a kernel reading the FP8 weights with unquantized activations, "
              "not yet measured on a GPU) or fp8_prefill (float8 for the prefill, decode on the "
              "original weights, both kept: the lane's prefill 94 instead of 111 ms on an "
              "H200); Hopper/Blackwell GPUs.", choices=QUANTIZATION_CHOICES),
    ParamSpec("image_decode", "auto", "Where JPEG camera images are decoded. arrival: in the "
              "subscription callback (OpenCV), every message. model: kept as bytes and "
              "decoded by the model in one batch on its device, only the frames a plan uses "
              "(nvJPEG on CUDA with torchvision; elsewhere OpenCV at plan time, no faster). "
              "auto: model where the model decodes on its device, else arrival.",
              choices=IMAGE_DECODE_CHOICES),
    ParamSpec("warm_up", "auto", "Plan once, untimed and unpublished, before the first plan, "
              "so that what the engine compiles on its first calls is done beforehand: the node "
              "on synthetic frames of each camera's image_size in camera_config, else "
              "warm_up_width x warm_up_height (cropped as the rig crops) "
              "with the ego at rest, before it reports model_ready (stop plans saying so "
              "meanwhile); replay --realtime on the bag's first input set. auto: with engine "
              "fast; on: always; off: never (a fast engine's first plans are then late).",
              choices=WARM_UP_CHOICES),
    ParamSpec("warm_up_width", 1920, "Pixels: width of the synthetic warm-up frames of the "
              "cameras whose camera_config entry gives no image_size, their image width (the "
              "released rig: 1920).", min=MIN_SIZE, max=MAX_SIZE),
    ParamSpec("warm_up_height", 1080, "Pixels: height of the synthetic warm-up frames of the "
              "cameras whose camera_config entry gives no image_size, their image height (the "
              "released rig: 1080).", min=MIN_SIZE, max=MAX_SIZE),
    ParamSpec("max_batch", 1, "Input sets the worker may plan together when the model is "
              "slower than the rate (1: newest input only, older ones dropped).", min=1, max=16),
    ParamSpec("max_input_age", 0.3, "Seconds: any camera or odometry older than this -> stop "
              "plan.", min=0.01, max=10.0, runtime=True),
    ParamSpec("max_plan_age", 1.0, "Seconds: a model plan whose input time t0 is older than "
              "this when inference ends is late (see late_plan); keep it at most the "
              "controller's plan_timeout plus the transport.", min=0.05, max=30.0, runtime=True),
    ParamSpec("late_plan", "stop", "A late plan becomes a flagged stop plan ('stop') or is "
              "not published ('drop'); counted either way.", choices=LATE_PLAN_CHOICES,
              runtime=True),
    ParamSpec("time_jump_tolerance", 0.5, "Seconds the clock may go back before it counts as a "
              "time jump (bag looped, simulator reset): buffers and rates are cleared.",
              min=0.01, max=10.0),
    ParamSpec("future_tolerance", 0.5, "Seconds an input may be stamped ahead of the clock; "
              "further ahead it is rejected and counted.", min=0.01, max=10.0),
    ParamSpec("frame_tolerance", 0.05, "Seconds a frame may be off its slot (t0 - k * 0.1 s).",
              min=0.0, max=0.099),
    ParamSpec("stop_decel", 2.0, "m/s^2 of the controlled stop plan.", min=0.1, max=10.0,
              runtime=True),
    ParamSpec("hold_at_standstill", True, "A sample whose speed falls through zero stops there "
              "and stays stopped while its speed is negative, instead of reversing (false: judged "
              "as drawn; below -0.5 m/s it fails the plan checks)."),
    ParamSpec("max_speed", 45.0, "m/s; a model plan faster than this is replaced by a stop.",
              min=0.1, max=100.0, runtime=True),
    ParamSpec("max_curvature", 0.35, "1/m; a model plan curving more is replaced by a stop.",
              min=0.01, max=2.0, runtime=True),
    ParamSpec("frames_per_camera", 4, "Frames per camera in a plan's input (t0 - (k-1) * 0.1 s "
              "... t0). Alpamayo 1 reads 4; Alpamayo 1.5 reads 1 to 4.", min=1, max=4),
    ParamSpec("navigation_topic", "", "std_msgs/String topic of route text for Alpamayo 1.5 "
              "(e.g. 'Turn left in 30m'); empty: no navigation input."),
    ParamSpec("navigation_max_age", 10.0, "Seconds; navigation text received longer ago is "
              "dropped (said in diagnostics).", min=0.1, max=3600.0, runtime=True),
    ParamSpec("navigation_guidance", 1.0, "Classifier-free guidance weight of plans with "
              "navigation (1: none, no extra cost; >1 follows the route more strongly, one "
              "more prefill and twice the expert steps; the release's example: 1.5).",
              min=0.0, max=10.0),
    ParamSpec("noise_temperature", 1.0, "Scale of the trajectory sampler's initial noise "
              "(1: released; lower: less diverse samples).", min=0.05, max=2.0),
    ParamSpec("ask_max_tokens", 256, "Longest answer of the ~/ask service, tokens (Alpamayo "
              "1.5).", min=1, max=2048),
    ParamSpec("ask_timeout", 10.0, "Seconds a ~/ask question may wait for GPU time that "
              "plans leave before it is refused.", min=0.1, max=600.0),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics and status messages.",
              min=0.1, max=60.0),
    ParamSpec("publish_autoware", False, "Also publish each plan as autoware_planning_msgs/"
              "Trajectory on ~/autoware/trajectory (needs the Autoware message packages)."),
    ParamSpec("wheelbase", 2.8, "m, rear axle to front axle: the front wheel angles of the "
              "Autoware trajectory.", min=0.1, max=20.0),
    BOND_PARAM,
)  # fmt: skip

CONTROLLER_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("control_rate_hz", 50.0, "Command rate.", min=1.0, max=500.0),
    ParamSpec("engage_on_start", False, "Follow plans from start-up. false: a controlled stop "
              "(to a standstill, then held) until engaged through the ~/engage service "
              "(std_srvs/SetBool; data false disengages)."),
    ParamSpec("disengaged_output", "hold", "While not engaged: 'hold' publishes the controlled "
              "stop, then the standstill at the control rate; 'none' the controlled stop, then "
              "nothing once standing (another command source, e.g. a twist_mux input, may "
              "drive).", choices=("hold", "none")),
    ParamSpec("ego_source", "odometry", "Ego motion from nav_msgs/Odometry on odom_topic, or "
              "from tf (odom_frame -> base_frame).", choices=("odometry", "tf")),
    ParamSpec("odom_topic", "/odom", "nav_msgs/Odometry topic (ego_source odometry)."),
    ParamSpec("odom_frame", "odom", "Fixed frame of the ego poses (REP-105)."),
    ParamSpec("base_frame", "base_link", "The vehicle frame (rear axle)."),
    ParamSpec("wheelbase", 2.8, "m, rear axle to front axle.", min=0.1, max=20.0),
    ParamSpec("lookahead_time", 0.5, "s; pure-pursuit lookahead = max(min_lookahead, "
              "lookahead_time * speed).", min=0.01, max=5.0, runtime=True),
    ParamSpec("min_lookahead", 3.0, "m, shortest pure-pursuit lookahead.", min=0.1, max=50.0,
              runtime=True),
    ParamSpec("speed_gain", 1.0, "(m/s^2) per (m/s) of speed error.", min=0.0, max=10.0,
              runtime=True),
    ParamSpec("preview", 0.1, "s ahead in the plan for speed and acceleration (actuator delay).",
              min=0.0, max=2.0, runtime=True),
    ParamSpec("max_speed", 30.0, "m/s.", min=0.1, max=100.0, runtime=True),
    ParamSpec("max_accel", 3.0, "m/s^2.", min=0.1, max=20.0, runtime=True),
    ParamSpec("max_decel", 6.0, "m/s^2 (positive).", min=0.1, max=20.0, runtime=True),
    ParamSpec("max_jerk", 10.0, "m/s^3.", min=0.1, max=100.0, runtime=True),
    ParamSpec("max_steering", 0.6, "rad, front wheel.", min=0.01, max=1.5, runtime=True),
    ParamSpec("max_steering_rate", 1.0, "rad/s.", min=0.01, max=20.0, runtime=True),
    ParamSpec("stop_decel", 2.0, "m/s^2 of the controlled stop.", min=0.1, max=20.0, runtime=True),
    ParamSpec("plan_timeout", 0.5, "s; an older plan -> controlled stop. Plans that arrive "
              "older than this (a model slower than it) are counted and raise a WARN.",
              min=0.05, max=10.0, runtime=True),
    ParamSpec("clock_timeout", 0.5, "Wall-clock seconds without the node's clock advancing "
              "(/clock stopped) after which the controller commands a controlled stop on wall "
              "time.", min=0.05, max=10.0),
    ParamSpec("cmd_vel_stamped", False, "Publish geometry_msgs/TwistStamped instead of Twist."),
    ParamSpec("publish_ackermann", False, "Also publish ackermann_msgs/AckermannDriveStamped on "
              "ackermann_cmd (needs the ackermann_msgs package)."),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              min=0.1, max=60.0),
    BOND_PARAM,
)  # fmt: skip


def runtime_change(
    specs: tuple[ParamSpec, ...], values: dict[str, Value], changes: dict[str, Any]
) -> dict[str, Value]:
    """`values` (every spec's, as the node runs) with `changes` made, each checked (type,
    range, choices) and allowed only for a spec with runtime True: ParameterError naming
    the first that is not. Names not in `specs` are left to their owner (rclpy)."""
    by_name = {s.name: s for s in specs}
    merged = dict(values)
    for name, value in changes.items():
        spec = by_name.get(name)
        if spec is None:
            continue
        if not spec.runtime:
            raise ParameterError(f"parameter {name} is read at start-up only")
        merged[name] = spec.check(value)
    return merged


def check_values(specs: tuple[ParamSpec, ...], values: dict[str, Any]) -> dict[str, Value]:
    """Every spec's value (its default where `values` lacks it), checked; unknown names
    are refused."""
    known = {s.name for s in specs}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParameterError(f"unknown parameters {unknown}; known: {sorted(known)}")
    return {s.name: s.check(values.get(s.name, s.default)) for s in specs}


QOS_PREFIX = "qos_overrides."  # rclpy's parameters that set a topic's QoS
QOS_POLICIES = ("history", "depth", "reliability", "durability")  # settable on every topic


def unknown_parameter_problem(node: str, given: list[str], declared: list[str]) -> str | None:
    """Why the parameters `given` to `node` (params file, launch, command line) are refused:
    names the node does not declare, which rclpy would otherwise ignore in silence (a typo
    keeping a default). Each gets the closest declared name; a QoS override of a topic or
    policy the node does not have lists the ones it has. None when all are declared."""
    known = set(declared)
    unknown = sorted(n for n in set(given) if n not in known)
    if not unknown:
        return None
    named = []
    for name in unknown:
        close = _closest(name, known)
        named.append(f"{name!r}" + (f" (did you mean {close!r}?)" if close else ""))
    text = f"{node} has no parameter {', '.join(named)}"
    if any(n.startswith(QOS_PREFIX) for n in unknown):
        topics = sorted({n[len(QOS_PREFIX) :].rsplit(".", 2)[0] + f" ({n.rsplit('.', 2)[1]})"
                         for n in known if n.startswith(QOS_PREFIX)})  # fmt: skip
        text += (f"; its QoS is set per topic as {QOS_PREFIX}TOPIC.publisher|subscription."
                 f"{'|'.join(QOS_POLICIES)}, for: {', '.join(topics) or 'no topic'}")  # fmt: skip
    else:
        text += f"; ros2 param list /{node} lists its parameters"
    return text


def rcl_error_text(text: str) -> str:
    """An rcl error (a params file that does not parse, a bad --ros-args rule) as one line
    for a person: without the C source locations (", at /src/.../arguments.c:415") and
    rcutils's "error not set"."""
    text = re.sub(r",? at \S+\.c:\d+", "", text)
    text = text.replace(". Error: error not set", "").replace("failed to initialize rcl: ", "")
    return " ".join(text.split())


def _closest(name: str, known: set[str]) -> str | None:
    """The declared name `name` was probably meant as, or None. A QoS override is matched by
    its parts: the topic of the same last name (~/plan given as /plan) or else the closest
    one, the entity kind given, the closest policy."""
    if not (name.startswith(QOS_PREFIX) and name.count(".") >= 3):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        return close[0] if close else None
    topic, kind, policy = name[len(QOS_PREFIX) :].rsplit(".", 2)
    topics = sorted({k[len(QOS_PREFIX) :].rsplit(".", 2)[0] for k in known
                     if k.startswith(QOS_PREFIX) and k.count(".") >= 3})  # fmt: skip
    leaf = topic.rstrip("/").rsplit("/", 1)[-1]
    same_leaf = [t for t in topics if t.rsplit("/", 1)[-1] == leaf]
    near = same_leaf if len(same_leaf) == 1 else difflib.get_close_matches(topic, topics, 1, 0.75)
    policies = difflib.get_close_matches(policy, QOS_POLICIES, 1, 0.6)
    for t in near or [topic]:
        for k in (kind, "publisher", "subscription"):
            candidate = f"{QOS_PREFIX}{t}.{k}.{policies[0] if policies else policy}"
            if candidate in known:
                return candidate
    return None


def defaults(specs: tuple[ParamSpec, ...]) -> dict[str, Value]:
    return {s.name: s.default for s in specs}


@dataclass(frozen=True)
class PlannerConfig:
    """Everything the planner node needs beyond its topics."""

    settings: PlannerSettings
    model: str
    device: str
    dtype: str
    camera_config: str
    ego_source: str
    odom_topic: str
    odom_frame: str
    base_frame: str
    rate_hz: float
    max_batch: int
    frame_tolerance: float
    diagnostics_period: float
    publish_autoware: bool
    wheelbase: float
    frames_per_camera: int = 4
    navigation_topic: str = ""
    ask_max_tokens: int = 256
    ask_timeout: float = 10.0
    planning_mode: str = "full"
    max_chain_age: float = 1.0
    stale_chain_slice: float = 0.03
    engine: str = "eager"
    vision_cache_frames: int = 32
    quantization: str = "none"
    image_decode: str = "auto"
    warm_up: str = "auto"
    warm_up_width: int = 1920
    warm_up_height: int = 1080


def planner_config(values: dict[str, Any]) -> PlannerConfig:
    v = check_values(PLANNER_PARAMS, values)
    try:
        settings = PlannerSettings(
            num_samples=int(v["num_samples"]),
            temperature=float(v["temperature"]),
            top_p=float(v["top_p"]),
            max_reasoning_tokens=int(v["max_reasoning_tokens"]),
            num_flow_steps=int(v["num_flow_steps"]) or None,
            sample_choice=str(v["sample_choice"]),  # type: ignore[arg-type]
            max_input_age=float(v["max_input_age"]),
            max_plan_age=float(v["max_plan_age"]),
            late_plan=str(v["late_plan"]),  # type: ignore[arg-type]
            stop_decel=float(v["stop_decel"]),
            hold_at_standstill=bool(v["hold_at_standstill"]),
            frame_id=str(v["base_frame"]),
            seed=None if v["seed"] == -1 else int(v["seed"]),
            limits=PlanLimits(
                speed=(-0.5, float(v["max_speed"])), curvature=float(v["max_curvature"])
            ),
            clock=ClockSettings(
                jump_tolerance=float(v["time_jump_tolerance"]),
                future_tolerance=float(v["future_tolerance"]),
            ),
            navigation_max_age=float(v["navigation_max_age"]),
            navigation_guidance=float(v["navigation_guidance"]),
            noise_temperature=float(v["noise_temperature"]),
        )
    except ValueError as err:
        raise ParameterError(f"planner parameters: {err}") from err
    return PlannerConfig(
        settings=settings,
        model=str(v["model"]),
        device=str(v["device"]),
        dtype=str(v["dtype"]),
        camera_config=str(v["camera_config"]),
        ego_source=str(v["ego_source"]),
        odom_topic=str(v["odom_topic"]),
        odom_frame=str(v["odom_frame"]),
        base_frame=str(v["base_frame"]),
        rate_hz=float(v["rate_hz"]),
        max_batch=int(v["max_batch"]),
        frame_tolerance=float(v["frame_tolerance"]),
        diagnostics_period=float(v["diagnostics_period"]),
        publish_autoware=bool(v["publish_autoware"]),
        wheelbase=float(v["wheelbase"]),
        frames_per_camera=int(v["frames_per_camera"]),
        navigation_topic=str(v["navigation_topic"]),
        ask_max_tokens=int(v["ask_max_tokens"]),
        ask_timeout=float(v["ask_timeout"]),
        planning_mode=str(v["planning_mode"]),
        max_chain_age=float(v["max_chain_age"]),
        stale_chain_slice=float(v["stale_chain_slice"]),
        engine=str(v["engine"]),
        vision_cache_frames=int(v["vision_cache_frames"]),
        quantization=str(v["quantization"]),
        image_decode=str(v["image_decode"]),
        warm_up=str(v["warm_up"]),
        warm_up_width=int(v["warm_up_width"]),
        warm_up_height=int(v["warm_up_height"]),
    )


@dataclass(frozen=True)
class ControllerConfig:
    """Everything the controller node needs beyond its topics."""

    tracker: TrackerSettings
    control_rate_hz: float
    engage_on_start: bool
    disengaged_output: str
    ego_source: str
    odom_topic: str
    odom_frame: str
    base_frame: str
    cmd_vel_stamped: bool
    publish_ackermann: bool
    diagnostics_period: float
    clock_timeout: float


def controller_config(values: dict[str, Any]) -> ControllerConfig:
    v = check_values(CONTROLLER_PARAMS, values)
    tracker_fields = set(TrackerSettings.__dataclass_fields__)
    try:
        tracker = TrackerSettings(**{k: float(x) for k, x in v.items() if k in tracker_fields})
    except ValueError as err:
        raise ParameterError(f"controller parameters: {err}") from err
    return ControllerConfig(
        tracker=tracker,
        control_rate_hz=float(v["control_rate_hz"]),
        engage_on_start=bool(v["engage_on_start"]),
        disengaged_output=str(v["disengaged_output"]),
        ego_source=str(v["ego_source"]),
        odom_topic=str(v["odom_topic"]),
        odom_frame=str(v["odom_frame"]),
        base_frame=str(v["base_frame"]),
        cmd_vel_stamped=bool(v["cmd_vel_stamped"]),
        publish_ackermann=bool(v["publish_ackermann"]),
        diagnostics_period=float(v["diagnostics_period"]),
        clock_timeout=float(v["clock_timeout"]),
    )


def planner_rig_and_family(cfg: PlannerConfig, default_rig: str) -> tuple[CameraRig, str]:
    """The camera rig (cfg.camera_config, else `default_rig`) and the checkpoint family the
    planner starts with, checked as it checks them before loading anything: the rig parses,
    the checkpoint (its config.json) reads those cameras, navigation needs Alpamayo 1.5.
    Raises CameraRigError, CameraLayoutError, CheckpointConfigError or ParameterError."""
    rig = CameraRig.from_yaml(cfg.camera_config or default_rig)
    family = model_family(cfg.model) if cfg.model else ""
    if family:
        check_camera_layout(rig.names, family, cfg.frames_per_camera)
    if cfg.navigation_topic and family and family != ALPAMAYO1_5:
        raise ParameterError(
            f"parameter navigation_topic = {cfg.navigation_topic!r} needs an Alpamayo 1.5 "
            f"checkpoint; model {cfg.model!r} is {family}"
        )
    return rig, family


def declare_parameters(node: Any, specs: tuple[ParamSpec, ...]) -> dict[str, Value]:
    """Declare every spec on an rclpy node (descriptions, ranges, read-only) and return the
    values it was started with, checked (ParameterError on a bad one)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import ParameterException

    values: dict[str, Any] = {}
    for spec in specs:
        extra = f" One of {list(spec.choices)}." if spec.choices else ""
        extra += " Can be changed while running." if spec.runtime else ""
        descriptor = ParameterDescriptor(
            description=spec.description + extra, read_only=not spec.runtime
        )
        if isinstance(spec.default, float) and spec.min is not None and spec.max is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(spec.min), to_value=float(spec.max), step=0.0)
            ]
        elif (
            isinstance(spec.default, int)
            and not isinstance(spec.default, bool)
            and spec.min is not None
            and spec.max is not None
        ):
            descriptor.integer_range = [
                IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=1)
            ]
        try:
            values[spec.name] = node.declare_parameter(spec.name, spec.default, descriptor).value
        except ParameterException as err:  # an override of the wrong type or out of range
            hint = ""
            if isinstance(spec.default, float) and "'INTEGER'" in str(err):
                hint = " (a double parameter needs a decimal point: 10.0, not 10)"
            raise ParameterError(f"parameter {spec.name}: {err}{hint}") from err
    return check_values(specs, values)


# Launch arguments of drive.launch.py that override a node parameter when given ('' keeps
# the parameter file's value): (argument, node, parameter). Their help and type are the
# table's.
LAUNCH_OVERRIDES: tuple[tuple[str, str, str], ...] = (
    ("model", "alpamayo_planner", "model"),
    ("device", "alpamayo_planner", "device"),
    ("dtype", "alpamayo_planner", "dtype"),
    ("camera_config", "alpamayo_planner", "camera_config"),
    ("odom_topic", "alpamayo_planner", "odom_topic"),
    ("odom_topic", "alpamayo_controller", "odom_topic"),
    ("rate_hz", "alpamayo_planner", "rate_hz"),
    ("navigation_topic", "alpamayo_planner", "navigation_topic"),
    ("engage", "alpamayo_controller", "engage_on_start"),
)
NODE_PARAMS = {"alpamayo_planner": PLANNER_PARAMS, "alpamayo_controller": CONTROLLER_PARAMS}


def launch_spec(argument: str) -> ParamSpec:
    """The parameter a launch argument of LAUNCH_OVERRIDES overrides (its first node's)."""
    node, name = next((n, p) for a, n, p in LAUNCH_OVERRIDES if a == argument)
    return next(s for s in NODE_PARAMS[node] if s.name == name)


def launch_help(argument: str) -> str:
    """The launch argument's description: the parameter's, and what '' means."""
    spec = launch_spec(argument)
    choices = f" One of {list(spec.choices)}." if spec.choices else ""
    return f"{spec.description}{choices} (As a launch argument, '' keeps the parameter file's.)"


def launch_value(argument: str, text: str) -> Value:
    """A launch argument's text as its parameter's type, checked as the node checks it (a
    range, a choice) so that a bad value stops the launch before any node starts:
    ParameterError naming the argument and the value."""
    spec = launch_spec(argument)
    kind = type(spec.default)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ParameterError("not true or false")
            value: Value = text.lower() == "true"
        elif kind is float:
            value = float(text)
        elif kind is int:
            value = int(text)
        else:
            value = text
        return spec.check(value)
    except ValueError as err:  # float()/int() failing, or the spec's ParameterError
        whole = "an integer" if kind is int else "a number"
        reason = str(err) if isinstance(err, ParameterError) else f"not {whole}"
        raise ParameterError(f"launch argument {argument}:={text!r}: {reason}") from None


def launch_switch(argument: str, text: str) -> bool:
    """A true/false launch argument of a launch file's own (not a parameter's): ValueError
    naming it for any other value, which stops the launch before any node starts."""
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"launch argument {argument}:={value!r}: must be true or false")
    return value == "true"


def launch_number(argument: str, text: str, kind: type, least: float) -> Any:
    """A launch argument of a launch file's own, of type `kind` (int or float) and >= least:
    ValueError naming it otherwise."""
    try:
        value = kind(text.strip())
    except ValueError:
        value = None
    if value is None or not value >= least:
        raise ValueError(
            f"launch argument {argument}:={text.strip()!r}: must be {kind.__name__} >= {least:g}"
        )
    return value


def add_arguments(
    parser: Any,
    specs: tuple[ParamSpec, ...],
    names: tuple[str, ...],
    aliases: dict[str, tuple[str, ...]] | None = None,
    defaults: dict[str, Value] | None = None,
) -> None:
    """argparse flags for the named specs (--name-with-dashes, plus `aliases`), their type,
    default (or `defaults`'s), choices and help taken from the table: one declaration for
    the node parameter, the YAML and the command line."""
    by_name = {s.name: s for s in specs}
    for name in names:
        spec = by_name[name]
        default = (defaults or {}).get(name, spec.default)
        note = f" Range [{spec.min}, {spec.max}]." if spec.min is not None else ""
        flags = [f"--{name.replace('_', '-')}", *(aliases or {}).get(name, ())]
        help_text = f"{spec.description}{note} Default: {default}."
        kwargs: dict[str, Any] = {"dest": name, "default": default, "help": help_text}
        if isinstance(spec.default, bool):  # --name / --no-name
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = type(spec.default)
            if spec.choices:
                kwargs["choices"] = spec.choices
        parser.add_argument(*flags, **kwargs)
