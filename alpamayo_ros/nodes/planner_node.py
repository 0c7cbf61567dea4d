"""alpamayo_planner: cameras + ego motion in; DrivingPlan, Path, reasoning, markers,
diagnostics and status out.

A thin rclpy adapter over planning.planner.Planner (buffers, policy, validation, controlled
stop) and planning.worker.PlanningWorker (inference off the executor thread, newest input
wins). Subscription callbacks only decode and buffer; the timer assembles the newest
complete input set and hands it to the worker, or publishes a stop plan saying why not.
Time that jumps back clears the buffers; a plan late when inference ends is never published
as a model plan; diagnostics and status also run on a wall-clock timer, so a stopped /clock
or a stalled model shows.

Alpamayo 1.5: route text from `navigation_topic` (std_msgs/String, too old -> dropped and
said in diagnostics), and the ~/ask service (alpamayo_ros/srv/AskQuestion): a question about
the newest frames, answered in the GPU time plans leave (PlanningWorker.ask); its callback
waits in its own callback group, so subscriptions and timers never wait for it.

Managed (`--managed`, drive.launch.py managed:=true): a lifecycle node. Parameters are
checked at start-up as always; configure loads the model (in the background: status says
when it is ready), activate starts planning, deactivate stops it (no plans published, no
inference), cleanup lets the model go. Meanwhile the inputs are buffered and diagnostics
say the lifecycle state.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from pathlib import Path
from typing import Any

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.checkpoints import (
    DEMO_MODEL,
    CheckpointConfigError,
    resolve_model,
)
from alpamayo_ros.core.camera_rig import CameraInput, CameraRigError
from alpamayo_ros.core.cameras import ALPAMAYO1_5, CameraLayoutError
from alpamayo_ros.core.diagnostics import (
    HealthLimits,
    PlannerMonitor,
    lifecycle_item,
    navigation_item,
)
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.core.frame_buffer import FrameBufferSpec, FramesUnavailable
from alpamayo_ros.core.plan import Plan
from alpamayo_ros.cpu_threads import prefer_passive_waiting
from alpamayo_ros.messages.autoware import autoware_candidates_msg, autoware_trajectory_msg
from alpamayo_ros.messages.diagnostics import diagnostic_array_msg, planner_status_msg
from alpamayo_ros.messages.images import intake_image
from alpamayo_ros.messages.inputs import (
    BadMessage,
    pose_from_odometry,
    stamp_seconds,
)
from alpamayo_ros.messages.plan import plan_messages, time_msg
from alpamayo_ros.msg import DrivingPlan, PlannerStatus
from alpamayo_ros.nodes.common import (
    Managed,
    RuntimeParameters,
    TypeProblem,
    bond_items,
    latest_tf_pose,
    odometry_type_problem,
    publisher,
    refuse_unknown_parameters,
    run_node,
    say_wrong_input_types,
    subscribe_ego_motion,
    subscription,
    topic_type_problem,
    types,
)
from alpamayo_ros.nodes.parameters import (
    PLANNER_PARAMS,
    ParameterError,
    PlannerConfig,
    declare_parameters,
    planner_config,
    planner_rig_and_family,
)
from alpamayo_ros.planning.planner import Planner, PlanOutcome, StampAhead, WarmUpFailed
from alpamayo_ros.planning.requests import Answer, QuestionRequest
from alpamayo_ros.planning.settings import jpeg_on_model
from alpamayo_ros.planning.warm_up import (
    FrameSizeCheck,
    WarmUpFrames,
    synthetic_inputs,
    warm_up_wanted,
)
from alpamayo_ros.planning.worker import PlanningWorker
from alpamayo_ros.srv import AskQuestion


def default_camera_config() -> str:
    try:
        return str(Path(get_package_share_directory("alpamayo_ros")) / "config" / "cameras.yaml")
    except PackageNotFoundError:  # running from a source tree
        return str(Path(__file__).resolve().parents[2] / "config" / "cameras.yaml")


NOT_CONFIGURED = "not configured (lifecycle): no model loaded"


class PlannerNode(Node):
    """See the module docstring; parameters in alpamayo_ros.nodes.parameters."""

    MANAGED = False  # ManagedPlannerNode: a lifecycle node

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("alpamayo_planner", **kwargs)
        values = declare_parameters(self, PLANNER_PARAMS)
        self.config: PlannerConfig = planner_config(values)
        cfg = self.config
        # What the checkpoint can read, checked before anything loads (its config.json).
        rig, self.family = planner_rig_and_family(cfg, default_camera_config())
        self.planner = Planner(
            None,
            rig,
            cfg.settings,
            frame_spec=FrameBufferSpec(
                cameras=rig.names,
                num_frames=cfg.frames_per_camera,
                tolerance=cfg.frame_tolerance,
            ),
        )
        stale = cfg.max_chain_age if cfg.planning_mode == "two_lane" else math.inf
        self.monitor = PlannerMonitor(rig.names, limits=HealthLimits(max_chain_age=stale))
        self._jpeg_on_model = False  # image_decode, resolved once the model is loaded
        self.worker: PlanningWorker | None = None
        self._lock = threading.Lock()  # buffers and monitor: executor vs worker thread
        self._model_problem = "loading the model" if cfg.model else "no model configured"
        self._closing = False  # set by destroy_node: publish nothing more
        self._active = not self.MANAGED  # planning (a managed node: once activated)
        self._generation = 0  # of the model: a load for an older one (cleaned up) is dropped
        self._loader: threading.Thread | None = None  # the thread loading the model
        self._size_check: FrameSizeCheck | None = None  # frames vs the warm-up's size
        self._type_said: set[str] = set()  # camera topics published with another type

        self.pub_plan = publisher(self, DrivingPlan, "~/plan", 10)
        self.pub_path = publisher(self, PathMsg, "~/path", 10)
        self.pub_reasoning = publisher(self, String, "~/reasoning", 10)
        self.pub_markers = publisher(self, MarkerArray, "~/markers", 10)
        self.pub_status = publisher(self, PlannerStatus, "~/status", QoSProfile(depth=10))
        self.pub_diagnostics = publisher(self, DiagnosticArray, "/diagnostics", 10)
        self.pub_autoware = None
        self.pub_candidates = None
        if cfg.publish_autoware:
            try:
                from autoware_planning_msgs.msg import Trajectory
            except ImportError as err:
                raise ParameterError(
                    "parameter publish_autoware = True needs the autoware_planning_msgs "
                    f"package (apt install ros-$ROS_DISTRO-autoware-planning-msgs): {err}"
                ) from err
            self.pub_autoware = publisher(self, Trajectory, "~/autoware/trajectory", 10)
            try:
                from autoware_internal_planning_msgs.msg import CandidateTrajectories
            except ImportError:
                self.get_logger().warning(
                    "publish_autoware: autoware_internal_planning_msgs is not installed, so "
                    "~/autoware/candidate_trajectories (every sample) is not published"
                )
            else:
                self.pub_candidates = publisher(
                    self, CandidateTrajectories, "~/autoware/candidate_trajectories", 10
                )

        for topic, cams in rig.by_topic().items():
            kind = CompressedImage if cams[0].encoding == "compressed" else Image
            callback = functools.partial(self._on_image, topic, tuple(cams))
            names = ", ".join(cam.name for cam in cams)
            source = f"camera_config {cfg.camera_config or default_camera_config()} ({names})"
            subscription(self, kind, topic, callback, qos_profile_sensor_data, source=source)
        self.tf_buffer, self._tf_listener = subscribe_ego_motion(
            self, cfg.ego_source, cfg.odom_topic, self._on_odometry, cfg.base_frame
        )
        if cfg.navigation_topic:
            # Route text is sparse and must not be missed: reliable, the last one latched.
            nav_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            subscription(self, String, cfg.navigation_topic, self._on_navigation, nav_qos,
                         source="parameter navigation_topic")  # fmt: skip
        self._ask_group = ReentrantCallbackGroup()
        self.srv_ask = self.create_service(
            AskQuestion, "~/ask", self._on_ask, callback_group=self._ask_group
        )

        # the planning layer's checks and limits, settable while running (not the model's)
        self.parameters = RuntimeParameters(
            self, PLANNER_PARAMS, values, planner_config, self._apply_config
        )
        refuse_unknown_parameters(self)  # every parameter, QoS ones too, is declared now
        self._timers = [
            self.create_timer(1.0 / cfg.rate_hz, self._on_tick),
            # Wall clock: keeps reporting while /clock is stopped (use_sim_time).
            self.create_timer(
                cfg.diagnostics_period,
                self._on_diagnostics,
                clock=Clock(clock_type=ClockType.STEADY_TIME),
            ),
        ]
        if self.MANAGED:
            self._model_problem = NOT_CONFIGURED
            self.monitor.on_model_released(NOT_CONFIGURED)
        else:
            self._start_model()
        managed = "; managed: unconfigured until configured and activated" if self.MANAGED else ""
        self.get_logger().info(
            f"planning at {cfg.rate_hz:g} Hz from {len(rig.cameras)} cameras "
            f"({', '.join(rig.topics)}) and {cfg.ego_source}{managed}"
        )

    def _apply_config(self, config: PlannerConfig) -> None:
        """A config with new planning-layer settings (RuntimeParameters): the next tick and
        the next finished plan use them (the worker reads the planner's settings)."""
        with self._lock:
            self.config = config
            self.planner.settings = config.settings

    # -- model ------------------------------------------------------------------------
    def _start_model(self) -> None:
        """Load the model on a thread of its own (ticks meanwhile publish stop plans saying
        so); an empty model parameter: stop plans only."""
        cfg = self.config
        if not cfg.model:
            self.get_logger().warning("parameter model is empty: publishing stop plans only")
            with self._lock:
                self._model_problem = "no model configured"
            return
        if cfg.model == DEMO_MODEL:
            self.get_logger().info(
                f"model 'demo': the demo checkpoint {resolve_model(cfg.model)}, trained on "
                "synthetic drives only; set the model parameter for a real checkpoint"
            )
        with self._lock:
            self._model_problem = "loading the model"
            self.monitor.on_model_released("loading the model")
            generation = self._generation
        self.planner.cancel.clear()  # set by an earlier cleanup or stop
        self._loader = threading.Thread(
            target=self._load_model, args=(generation,), name="alpamayo-load", daemon=True
        )
        self._loader.start()

    def _release_model(self, timeout: float = 2.0) -> bool:
        """Let the model go (a managed node's cleanup): the worker stopped (at most
        `timeout` s), a load still running dropped when it ends. False when the worker did
        not stop in time (the model is kept: cleanup fails, and may be tried again)."""
        with self._lock:
            worker = self.worker
        if worker is not None and not worker.stop(timeout):
            self.get_logger().error(f"the planning worker did not end within {timeout} s")
            return False
        self.planner.cancel.set()  # a warm-up on the loading thread stops
        with self._lock:
            self._generation += 1
            self.worker = None
            self.planner.policy = None
            self._size_check = None
            self._jpeg_on_model = False
            self._model_problem = NOT_CONFIGURED
            self.monitor.on_model_released(NOT_CONFIGURED)
        return True

    def _current(self, generation: int) -> bool:
        """Whether a load for `generation` is still wanted (call under the lock)."""
        return generation == self._generation and not self._closing

    def _load_model(self, generation: int = 0) -> None:
        from alpamayo_ros.model.policy import AlpamayoPolicy

        cfg = self.config
        try:
            policy = AlpamayoPolicy.from_pretrained(
                resolve_model(cfg.model), dtype=cfg.dtype, device=cfg.device
            )
            policy.configure(cfg.engine, cfg.vision_cache_frames, cfg.quantization)
        except Exception as err:  # reported and published as stop plans, never a crash
            reason = f"model failed to load: {type(err).__name__}: {err}"
            self.get_logger().error(reason)
            with self._lock:
                if self._current(generation):
                    self._model_problem = reason
                    self.monitor.on_model_failed(reason)
            return
        if policy.untrained:
            self.get_logger().warning(
                f"{cfg.model} is an UNTRAINED checkpoint (random weights): its plans mean nothing"
            )
        jpeg = jpeg_on_model(cfg.image_decode, policy)
        with self._lock:
            if not self._current(generation):
                return  # cleaned up (or closing) while it loaded
            self.planner.policy = policy
        if warm_up_wanted(cfg.warm_up, cfg.engine) and not self._warm_up(jpeg, generation):
            return
        with self._lock:
            if not self._current(generation):
                return
            self.worker = PlanningWorker(
                self.planner, self._publish_outcome, cfg.max_batch, cfg.planning_mode,
                max_chain_age=cfg.max_chain_age, stale_chain_slice=cfg.stale_chain_slice,
            )  # fmt: skip
            self._model_problem = ""
            self._jpeg_on_model = jpeg
            self.monitor.on_model_loaded(policy.model_id)
        self.get_logger().info(
            f"model {cfg.model} loaded on {policy.device} ({next(policy.parameters()).dtype}, "
            f"engine {cfg.engine}, quantization {cfg.quantization}, vision cache "
            f"{cfg.vision_cache_frames} frames, JPEG images decoded "
            f"{'by the model on ' + str(policy.device) if jpeg else 'on arrival'})"
        )

    def _warm_up(self, jpeg: bool, generation: int) -> bool:
        """The loaded policy planned once (twice and a chain in two_lane) on synthetic
        frames, before the node reports model_ready: what the engine compiles on its first
        calls is done before the first real plan. Ticks meanwhile publish stop plans saying
        so. False when the node closed or let this model go meanwhile (nothing more to do)."""
        cfg = self.config
        compressed = any(c.encoding == "compressed" for c in self.planner.rig.cameras)
        spec = WarmUpFrames(
            cfg.warm_up_width, cfg.warm_up_height, cfg.frames_per_camera, jpeg=jpeg and compressed
        )
        self._size_check = FrameSizeCheck(spec, self.planner.rig)
        what = f"warming the {cfg.engine} engine up on {spec.describe(self.planner.rig)} frames"
        with self._lock:
            if not self._current(generation):
                return False
            self._model_problem = what
            self.monitor.on_warming_up(what)
        self.get_logger().info(f"{what} (warm_up {cfg.warm_up}); model_ready once done")
        ego = self.planner.poses.spec
        navigation = "Continue straight" if cfg.navigation_topic else None
        inputs = synthetic_inputs(self.planner.rig, spec, ego.num_poses, ego.dt, navigation)
        try:
            seconds = self.planner.warm_up(inputs, cfg.planning_mode == "two_lane")
        except WarmUpFailed as err:  # planning goes on: its plans will say the same
            self.get_logger().error(f"{err}; planning anyway")
        else:
            self.get_logger().info(f"warm-up done in {seconds:.1f} s")
        return not self._closing

    # -- inputs -----------------------------------------------------------------------
    def _now(self) -> float:
        """The node's clock (seconds), checked for a backward jump."""
        now = self.get_clock().now().nanoseconds * 1e-9
        with self._lock:
            jump = self.planner.check_clock(now, time.monotonic())
            if jump is not None:
                self.monitor.on_time_jump(str(jump))
        if jump is not None:
            self.get_logger().warning(
                f"{jump}: buffers, ego history and rates cleared; planning restarts"
            )
        return now

    def _bad(self, kind: str, detail: str) -> None:
        with self._lock:
            self.monitor.on_bad_message(kind)
        self.get_logger().warning(f"skipped {kind}: {detail}", throttle_duration_sec=5.0)

    def _on_image(self, topic: str, cams: tuple[CameraInput, ...], msg: Any) -> None:
        encoding = "compressed" if isinstance(msg, CompressedImage) else "raw"
        try:
            # as the replay reads it; a JPEG kept encoded for the model to decode on its
            # device when it does (a broken header: counted and skipped)
            rgb = intake_image(msg, encoding, topic, defer_jpeg=self._jpeg_on_model)
        except BadMessage as err:
            self._bad("image", str(err))
            return
        except Exception as err:  # a message no test foresaw: counted and skipped too
            self._bad("image", f"{topic}: {type(err).__name__}: {err}")
            return
        stamp = stamp_seconds(msg.header.stamp)
        now = self._now()
        size = None  # a frame size the engine was not warmed up on, said once per topic
        try:
            with self._lock:
                if self._size_check is not None:
                    size = self._size_check.check(topic, rgb.shape)
                for cam in cams:
                    self.planner.add_image(cam.name, stamp, cam.crop_image(rgb), now=now)
                    self.monitor.on_image(cam.name, now)
        except StampAhead as err:
            self._bad("future stamp", f"{topic}: {err}")
        if size is not None:
            self.get_logger().warning(size)

    def _add_pose(self, pose: StampedPose) -> None:
        now = self._now()
        try:
            with self._lock:
                self.planner.add_pose(pose, now=now)
                self.monitor.on_pose(pose.stamp, now)
        except StampAhead as err:
            self._bad("future stamp", f"{self.config.odom_topic}: {err}")

    def _on_odometry(self, msg: Odometry) -> None:
        try:
            self._add_pose(pose_from_odometry(msg, self.config.odom_topic))
        except BadMessage as err:
            self._bad("odometry", str(err))

    def _poll_tf(self) -> None:
        assert self.tf_buffer is not None
        cfg = self.config
        try:
            pose = latest_tf_pose(self.tf_buffer, cfg.odom_frame, cfg.base_frame)
        except ValueError as err:
            self._bad("tf", str(err))
            return
        # None: no transform yet, reported as stale odometry by the planner
        if pose is not None and pose.stamp != self.planner.poses.latest_stamp:
            self._add_pose(pose)

    def _on_navigation(self, msg: String) -> None:
        now = self._now()
        try:
            with self._lock:
                self.planner.set_navigation(msg.data, now)
        except ValueError as err:
            self._bad("navigation", f"{self.config.navigation_topic}: {err}")
            return
        self.get_logger().info(f"navigation: {msg.data.strip() or '(cleared)'}")

    # -- questions (Alpamayo 1.5) -------------------------------------------------------
    def _on_ask(self, request: Any, response: Any) -> Any:
        """Runs in its own callback group: waits (at most ask_timeout + a margin) for the
        worker's answer without holding up any other callback."""
        cfg = self.config
        started = time.monotonic()
        refusal, question, t0 = self._question(request.question)
        if refusal:
            response.success, response.message = False, refusal
            return response
        assert question is not None
        done = threading.Event()
        box: dict[str, Any] = {}

        def on_answer(answer: Answer | None, why: str) -> None:
            box.update(answer=answer, why=why)
            done.set()

        worker = self.worker
        assert worker is not None
        worker.ask(
            question, on_answer, max_tokens=request.max_tokens or cfg.ask_max_tokens,
            timeout=cfg.ask_timeout,
        )  # fmt: skip
        if not done.wait(cfg.ask_timeout + 30.0):
            response.success = False
            response.message = f"no answer within {cfg.ask_timeout + 30.0:g} s"
            return response
        answer = box["answer"]
        response.camera_names = list(question.cameras)
        response.input_stamp = time_msg(types, t0)
        if answer is None:
            response.success, response.message = False, box["why"]
            return response
        response.success = True
        response.answer = answer.text
        response.complete = answer.complete
        response.latency_ms = 1000.0 * (time.monotonic() - started)
        return response

    def _question(self, text: str) -> tuple[str, QuestionRequest | None, float]:
        """The question on the newest complete frame set and its t0 (s), or why it cannot
        be asked."""
        nan = float("nan")
        if not text.strip():
            return "the question is empty", None, nan
        if self._closing:
            return "the planner is shutting down", None, nan
        now = self._now()
        with self._lock:
            problem, worker = self._model_problem, self.worker
            policy = self.planner.policy
            if problem or worker is None or policy is None:
                return problem or "no model", None, nan
            family = getattr(getattr(policy, "config", None), "family", self.family)
            if family != ALPAMAYO1_5:
                return (
                    f"the model is {family}: questions need an Alpamayo 1.5 checkpoint",
                    None,
                    nan,
                )
            t0 = self.planner.frames.newest_complete_t0()
            if t0 is None:
                return "no frame from every camera yet", None, nan
            if now - t0 > self.config.settings.max_input_age:
                return f"the newest complete frame set is {now - t0:.2f} s old", None, nan
            try:
                frames = self.planner.frames.assemble(t0)
            except FramesUnavailable as err:
                return f"no complete frame set: {err}", None, nan
        return "", QuestionRequest(tuple(frames.flat()), text, frames.cameras), t0

    # -- planning ---------------------------------------------------------------------
    def _on_tick(self) -> None:
        now = self._now()
        if now <= 0.0:  # use_sim_time and no /clock yet
            return
        if self.tf_buffer is not None:
            self._poll_tf()
        if not self._active:  # a managed node not activated: inputs buffered, no plans
            return
        with self._lock:
            prepared = self.planner.prepare(now)
            self.monitor.on_input_lead(self.planner.input_lead, self.planner.input_lead_name)
            problem = self._model_problem
        if isinstance(prepared, Plan):
            self._publish(prepared)
        elif problem or self.worker is None:
            self._publish(self.planner.stop_plan(now, problem or "no model"))
        else:
            dropped = not self.worker.submit(prepared)
            with self._lock:
                self.monitor.on_cycle(dropped)

    def _publish_outcome(self, outcome: PlanOutcome) -> None:
        """Called on the worker thread: the outcome checked for lateness, then published
        (not when the node was deactivated meanwhile)."""
        if self._closing or not self._active:
            return
        now = self._now()
        with self._lock:
            before = self.planner.late_plans
            finished = self.planner.finish(outcome, now)
            late = self.planner.late_plans > before
            if late:
                self.monitor.on_late_plan()
        if late:
            total = outcome.plan.latency_ms.get("total", float("nan")) / 1000.0
            self.get_logger().warning(
                f"late plan ({'dropped' if finished is None else 'stop plan instead'}): "
                f"inference took {total:.2f} s, max_plan_age is "
                f"{self.config.settings.max_plan_age} s; a model this slow needs a faster "
                "device (or, for demos only, larger max_plan_age and controller plan_timeout)",
                throttle_duration_sec=10.0,
            )
        if finished is not None:
            self._publish(finished.plan, finished.candidates)

    def _publish(self, plan: Plan, candidates: tuple[Plan, ...] = ()) -> None:
        if self._closing or not self.context.ok():
            return  # shutting down: the publishers may already be gone
        msgs = plan_messages(plan, types)
        try:
            self.pub_plan.publish(msgs["plan"])
            self.pub_path.publish(msgs["path"])
            self.pub_reasoning.publish(msgs["reasoning"])
            self.pub_markers.publish(msgs["markers"])
            if self.pub_autoware is not None:
                wheelbase = self.config.wheelbase
                self.pub_autoware.publish(autoware_trajectory_msg(plan, types, wheelbase))
            if self.pub_candidates is not None:
                offered = candidates or (plan,)
                msg = autoware_candidates_msg(plan, offered, types, self.config.wheelbase)
                self.pub_candidates.publish(msg)
        except Exception:  # the context went away between the check and the call
            if self._closing or not self.context.ok():
                return
            raise
        with self._lock:
            changed = self.monitor.on_plan(plan, time.monotonic())
        if changed:
            self._publish_status()
            if plan.is_fallback:
                self.get_logger().warning(f"stop plan: {plan.fallback_reason}")
            else:
                self.get_logger().info("publishing model plans")

    def _publish_status(self) -> None:
        if self._closing or not self.context.ok():
            return
        now = self._now()
        with self._lock:
            msg = planner_status_msg(self.monitor, now, types)
        self.pub_status.publish(msg)

    def _check_input_types(self) -> None:
        """Camera topics of another type than their encoding, an odom_topic not of
        nav_msgs/Odometry, a navigation_topic not of std_msgs/String: named once each
        (say_wrong_input_types)."""
        wanted: dict[str, TypeProblem] = {
            topic: cams[0].type_problem for topic, cams in self.planner.rig.by_topic().items()
        }
        if self.config.ego_source == "odometry":
            wanted[self.config.odom_topic] = odometry_type_problem(self.config.odom_topic)
        if self.config.navigation_topic:
            navigation = self.config.navigation_topic
            wanted[navigation] = topic_type_problem(
                "navigation_topic", navigation, "std_msgs/msg/String"
            )
        say_wrong_input_types(self, wanted, self._type_said)

    def _on_diagnostics(self) -> None:
        """On wall time: a stopped /clock, a stalled model or no plans show as ERROR."""
        if self._closing or not self.context.ok():
            return
        self._check_input_types()
        now, wall = self._now(), time.monotonic()
        running = self.worker.running_for(wall) if self.worker is not None else 0.0
        with self._lock:
            stalled = self.planner.clock.stalled_for(wall)
            prefix = self.get_fully_qualified_name().lstrip("/")
            if self.worker is not None:
                self.monitor.chains_written = self.worker.chains
                self.monitor.last_chain_seconds = self.worker.last_chain_seconds
            items = self.monitor.diagnostics(now, prefix, wall, stalled, running)
            if not self._active:  # no plans expected: the lifecycle state instead
                items[-1] = lifecycle_item(prefix, self._lifecycle_state(), self._idle_meaning())
            if self.config.navigation_topic:
                nav = self.planner.navigation
                text = self.planner.navigation_at(now)
                items.append(
                    navigation_item(
                        prefix, self.config.navigation_topic, text,
                        now - nav.received if nav is not None and text else None,
                        self.planner.navigation_dropped,
                        self.config.settings.navigation_max_age,
                    )
                )  # fmt: skip
        items += bond_items(self, prefix)
        self.pub_diagnostics.publish(diagnostic_array_msg(items, now, types, "alpamayo_planner"))
        self._publish_status()

    def _lifecycle_state(self) -> str:
        """The managed node's state label (unconfigured, inactive, active)."""
        return "active"  # ManagedPlannerNode asks its state machine

    def _idle_meaning(self) -> str:
        ready = "model ready" if self.monitor.model_ready else self._model_problem or "no model"
        return f"no plans published until activated ({ready})"

    def close(self, timeout: float = 2.0) -> bool:
        """Stop planning: timers off, the running plan abandoned at its next token, the worker
        joined for at most `timeout` s. Nothing is published afterwards. True when the worker
        thread ended."""
        self._closing = True
        for timer in self._timers:
            timer.cancel()
        if self.worker is None:
            self.planner.cancel.set()  # a warm-up running on the loading thread stops
            return True
        ended = self.worker.stop(timeout)
        if not ended:
            self.get_logger().warning(f"the planning worker did not end within {timeout} s")
        return ended

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


class ManagedPlannerNode(Managed, PlannerNode, LifecycleNode):
    """PlannerNode as a lifecycle node (see the module docstring)."""

    MANAGED = True

    def configure(self) -> str | None:
        if self._loader is not None and self._loader.is_alive():  # cleaned up while loading
            self.get_logger().error(
                "configure refused: the model of the previous configuration is still loading "
                "(it is dropped when it ends; two at once may not fit the GPU): try again then"
            )
            return None
        self._start_model()
        return f"loading the model {self.config.model}" if self.config.model else "no model"

    def activate(self) -> str:
        with self._lock:
            self._active = True
            self.monitor.on_activated()
        return "planning"

    def deactivate(self) -> str:
        with self._lock:
            self._active = False
        return "no plans published until activated again"

    def cleanup(self) -> str | None:
        return "model let go" if self._release_model() else None

    def shutdown(self) -> str | None:
        """Finalized: nothing planned or published any more (the timers keep running
        idle: cancelling them from inside the executor leaves rclpy errors at exit)."""
        with self._lock:
            self._active = False
        self._release_model()
        self._closing = True
        return "planning stopped; the process ends with Ctrl-C"

    def _lifecycle_state(self) -> str:
        return self.lifecycle_state()


def main(args: list[str] | None = None) -> int:
    prefer_passive_waiting()  # torch's idle threads asleep, not spinning beside the executor
    errors = (ParameterError, CameraRigError, CameraLayoutError, CheckpointConfigError)
    return run_node(PlannerNode, ManagedPlannerNode, "alpamayo_planner", errors, args, threads=2)
