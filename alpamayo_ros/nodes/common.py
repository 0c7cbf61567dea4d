"""What both nodes share: the message-type lookup, the newest ego pose from tf, topics whose
QoS the user can set, the check of the parameters given, and main()."""

from __future__ import annotations

import copy
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import rclpy
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidTopicNameException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSPolicyKind, QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from rosidl_runtime_py.utilities import get_message
from tf2_ros import Buffer, TransformException, TransformListener

from alpamayo_ros.core.diagnostics import DiagnosticItem, bond_item
from alpamayo_ros.core.ego_history import StampedPose
from alpamayo_ros.messages.inputs import odometry_frame_note, stamp_seconds
from alpamayo_ros.nodes.bond import NO_BOND_MESSAGES, BondLink, bond_messages
from alpamayo_ros.nodes.executor import PendingTakeExecutor
from alpamayo_ros.nodes.parameter_file import params_file_arguments, unreached_node_problem
from alpamayo_ros.nodes.parameters import (
    QOS_POLICIES,
    QOS_PREFIX,
    ParameterError,
    ParamSpec,
    Value,
    rcl_error_text,
    runtime_change,
    unknown_parameter_problem,
)

Config = TypeVar("Config")

# The command line `run` started rclpy with (its --params-file files are checked against
# the node's namespace); empty outside `run`.
_process_args: list[str] = []
STOP_POLL = 0.1  # s: how soon the spin loop sees a stop asked by a signal (own handlers)

# "pkg/msg/Name" -> message class, for the duck-typed builders in alpamayo_ros.messages.
types = functools.lru_cache(maxsize=None)(get_message)


def _qos_sound(qos: QoSProfile) -> SetParametersResult:
    if qos.history == HistoryPolicy.KEEP_LAST and qos.depth < 1:
        return SetParametersResult(successful=False, reason="depth must be >= 1 with keep_last")
    return SetParametersResult(successful=True)


# Every topic's history, depth, reliability and durability can be set by parameters
# (qos_overrides.TOPIC.publisher|subscription.POLICY, read at start-up), as rclpy provides.
QOS_OVERRIDES = QoSOverridingOptions(
    [QoSPolicyKind[p.upper()] for p in QOS_POLICIES], callback=_qos_sound
)


def publisher(node: Node, msg_type: Any, topic: str, qos: QoSProfile | int) -> Any:
    """node.create_publisher whose QoS the parameters may override; a bad override is a
    ParameterError naming its parameter."""

    def create(profile: QoSProfile) -> Any:
        return node.create_publisher(msg_type, topic, profile, qos_overriding_options=QOS_OVERRIDES)

    return _overridable(node, "publisher", topic, qos, "", create)


def subscription(
    node: Node,
    msg_type: Any,
    topic: str,
    callback: Callable[[Any], None],
    qos: QoSProfile | int,
    source: str = "",
    **kwargs: Any,
) -> Any:
    """node.create_subscription whose QoS the parameters may override (see publisher).
    source: where the topic name comes from (a parameter, the camera config), named when
    the name is not a valid topic name."""

    def create(profile: QoSProfile) -> Any:
        return node.create_subscription(
            msg_type, topic, callback, profile, qos_overriding_options=QOS_OVERRIDES, **kwargs
        )

    return _overridable(node, "subscription", topic, qos, source, create)


def _overridable(
    node: Node,
    kind: str,
    topic: str,
    qos: QoSProfile | int,
    source: str,
    create: Callable[[QoSProfile], Any],
) -> Any:
    # rclpy writes the overrides into the profile it is given: a copy, so that a shared
    # profile (qos_profile_sensor_data) keeps its values for the other topics
    profile = QoSProfile(depth=qos) if isinstance(qos, int) else copy.copy(qos)
    try:
        return create(profile)
    except InvalidTopicNameException as err:  # rclpy's text: 3 lines, a caret under the fault
        reason = str(err).splitlines()[0].rstrip(":")
        raise ParameterError(f"{source or kind}: {topic!r} is not a topic name ({reason})") from err
    except (ParameterException, InvalidQosOverridesError, RuntimeError) as err:
        resolved = node.resolve_topic_name(topic)
        if isinstance(err, _rclpy.RCLError):
            # The middleware refused the topic. Measured: Fast DDS refuses a topic that
            # another node of the same process holds with another type, and rcl then reports
            # "invalid allocator" (its first error overwritten).
            why = rcl_error_text(str(err))
            raise ParameterError(
                f"{source or kind} {resolved}: the middleware refused it ({why}); with Fast "
                "DDS, another node of this process may hold the topic with another type"
            ) from err
        if isinstance(err, RuntimeError) and "QoS override" not in str(err):
            raise  # not rclpy's "Unexpected QoS override for policy ...": not a parameter's
        raise ParameterError(f"{QOS_PREFIX}{resolved}.{kind}: {err}") from err


class RuntimeParameters(Generic[Config]):
    """The node's parameter values as it runs, and the set-parameters callback for those
    marked runtime in its table (ros2 param set, rqt_reconfigure): a change is checked
    alone (type, range, choices; read-only ones refused) and with every other value
    (`build`: the node's config, ParameterError on a bad combination) before `apply` gets
    the new config; a refused change keeps every value as it was. Values rclpy owns
    (use_sim_time) pass through."""

    def __init__(
        self,
        node: Node,
        specs: tuple[ParamSpec, ...],
        values: dict[str, Value],
        build: Callable[[dict[str, Value]], Config],
        apply: Callable[[Config], None],
    ) -> None:
        self.node, self.specs, self.values = node, specs, values
        self.build, self.apply = build, apply
        node.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, parameters: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters}
        try:
            values = runtime_change(self.specs, self.values, changes)
            config = self.build(values)
        except ParameterError as err:
            return SetParametersResult(successful=False, reason=str(err))
        changed = [f"{k} {self.values[k]} -> {v}" for k, v in values.items() if self.values[k] != v]
        self.values = values
        self.apply(config)
        if changed:
            self.node.get_logger().info(f"parameters changed: {', '.join(changed)}")
        return SetParametersResult(successful=True)


def refuse_unknown_parameters(node: Node) -> None:
    """ParameterError when the node was given a parameter it does not declare (rclpy keeps
    such a value unused and says nothing: a misspelt name would leave its default in place).
    Call once every parameter is declared, the QoS ones included (after the topics).
    Before that, a params file of the command line that names this node only under keys
    that do not reach it (`alpamayo_planner:` for a node in a namespace) is refused: rclpy
    would start the node on its defaults."""
    files = params_file_arguments(_process_args)
    fqn = node.get_fully_qualified_name()
    problem = unreached_node_problem(files, node.get_name(), fqn)
    if problem is not None:
        raise ParameterError(problem)
    given = list(getattr(node, "_parameter_overrides", {}))  # rclpy keeps no public list
    declared = node.list_parameters([], 0).names
    problem = unknown_parameter_problem(node.get_name(), given, declared)
    if problem is not None:
        raise ParameterError(problem)


TypeProblem = Callable[[str, str], "str | None"]  # (type held, where) -> why not, or None


def topic_type_problem(parameter: str, topic: str, wanted: str, advice: str = "") -> TypeProblem:
    """What the nodes say of the topic a parameter names when it holds another type than
    `wanted` (e.g. odom_topic: nav_msgs/msg/Odometry), with `advice` appended."""

    def problem(held: str, where: str) -> str | None:
        if held == wanted:
            return None
        return f"{parameter} {topic} holds {held} in {where}; the node reads {wanted} there{advice}"

    return problem


def odometry_type_problem(odom_topic: str) -> TypeProblem:
    """What the nodes say of an odom_topic holding another type than nav_msgs/Odometry."""
    return topic_type_problem(
        "odom_topic", odom_topic, "nav_msgs/msg/Odometry", " (or set ego_source: tf)"
    )


def say_wrong_input_types(node: Node, wanted: dict[str, TypeProblem], said: set[str]) -> None:
    """Topics the node reads (topic -> what it says of a type it cannot read) published with
    another message type never deliver (the middleware does not match them; the input
    just goes stale): each such topic logged once as an error, with what would read it
    (`said` holds the topics already named)."""
    for topic, problem_of in wanted.items():
        if topic in said:
            continue
        for info in node.get_publishers_info_by_topic(topic):
            problem = problem_of(info.topic_type, "the ROS graph")
            if problem is not None:
                said.add(topic)
                node.get_logger().error(problem)
                break


def latest_tf_pose(buffer: Buffer, parent: str, child: str) -> StampedPose | None:
    """The newest parent -> child transform as a pose, or None while there is none.
    Raises ValueError (from StampedPose) for a non-finite transform."""
    try:
        tr = buffer.lookup_transform(parent, child, Time())
    except TransformException:
        return None
    t, q = tr.transform.translation, tr.transform.rotation
    return StampedPose(stamp_seconds(tr.header.stamp), (t.x, t.y, t.z), (q.w, q.x, q.y, q.z))


def subscribe_ego_motion(
    node: Node,
    ego_source: str,
    odom_topic: str,
    on_odometry: Callable[[Odometry], None],
    base_frame: str = "base_link",
) -> tuple[Buffer | None, TransformListener | None]:
    """Odometry on `odom_topic` (sensor-data QoS) to `on_odometry`; or, for ego_source "tf",
    a tf buffer (polled with latest_tf_pose) and its listener, which the node must keep.
    Odometry of another child frame than `base_frame` is named once in the log."""
    if ego_source == "odometry":
        noted = False

        def on_message(msg: Odometry) -> None:
            nonlocal noted
            if not noted:  # the first message says which frame the odometry is of
                noted = True
                note = odometry_frame_note(msg, base_frame, odom_topic)
                if note is not None:
                    node.get_logger().warning(note)
            on_odometry(msg)

        subscription(node, Odometry, odom_topic, on_message, qos_profile_sensor_data,
                     source="parameter odom_topic")  # fmt: skip
        return None, None
    buffer = Buffer()
    return buffer, TransformListener(buffer, node)


MANAGED_FLAG = "--managed"  # the node executables' argument: a lifecycle node
AUTOSTART_FLAG = "--autostart"  # with --managed: configure and activate at start-up


@dataclass(frozen=True)
class Lifecycle:
    """What the node executable's own arguments (before any --ros-args) ask: a managed node,
    and one that configures and activates itself at start-up."""

    managed: bool = False
    autostart: bool = False


def managed_argument(args: list[str] | None) -> tuple[list[str], Lifecycle]:
    """The command line (sys.argv when None) without `--managed` and `--autostart` before
    any --ros-args, and what they asked. ValueError for --autostart without --managed."""
    argv = list(sys.argv if args is None else args)
    end = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    flags = (MANAGED_FLAG, AUTOSTART_FLAG)
    kept = [a for i, a in enumerate(argv) if i >= end or a not in flags]
    asked = Lifecycle(MANAGED_FLAG in argv[:end], AUTOSTART_FLAG in argv[:end])
    if asked.autostart and not asked.managed:
        raise ValueError(f"{AUTOSTART_FLAG} is for a managed node: give {MANAGED_FLAG} too")
    return kept, asked


class Managed:
    """A node as a ROS 2 lifecycle (managed) node: put first, before the node class and
    rclpy's LifecycleNode (class ManagedX(Managed, XNode, LifecycleNode)). Each transition
    calls the node's hook of that name, which returns what it did (logged) or None when the
    transition fails (the node stays where it was; the hook logged why). The node checks
    its parameters at start-up as an unmanaged one does; what the states mean is the
    node's (its module docstring). While active it holds a bond with nav2's lifecycle
    manager (parameter bond_heartbeat_period; alpamayo_ros.nodes.bond), as nav2's servers
    do."""

    _bond: BondLink | None = None  # while active
    _ended_bond: BondLink | None = None  # the last one, broken, until the manager answers
    _bond_said = False  # NO_BOND_MESSAGES logged

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # rclpy raises from its ~/change_state service for a transition the current state
        # does not have (RCLError "Transition is not registered"): the exception leaves the
        # executor and ends the node. Answered success=False instead, as rclcpp does.
        service = self._service_change_state  # type: ignore[attr-defined]
        change = service.callback

        def guarded(request: Any, response: Any) -> Any:
            try:
                return change(request, response)
            except RuntimeError as err:
                self.get_logger().warning(  # type: ignore[attr-defined]
                    f"lifecycle transition {request.transition.id} "
                    f"{request.transition.label!r} refused in state {self.lifecycle_state()}: "
                    f"{rcl_error_text(str(err))}"
                )
                response.success = False
                return response

        service.callback = guarded

    def autostart(self) -> bool:
        """Configure, then activate (what --autostart asks at start-up, before spinning: no
        service call that a restarted node's not yet matched server could miss). False
        when a transition failed (the node stays where it got to, its log says why)."""
        self.trigger_configure()  # type: ignore[attr-defined]
        if self.lifecycle_state() != "inactive":
            return False
        self.trigger_activate()  # type: ignore[attr-defined]
        return self.lifecycle_state() == "active"

    def lifecycle_state(self) -> str:
        """unconfigured, inactive, active or finalized (or a transition's label)."""
        return str(self._state_machine.current_state[1])  # type: ignore[attr-defined]

    def configure(self) -> str | None:
        return "configured"

    def activate(self) -> str | None:
        return "active"

    def deactivate(self) -> str | None:
        return "inactive"

    def cleanup(self) -> str | None:
        return "unconfigured"

    def shutdown(self) -> str | None:
        return "finalized"

    def _transition(self, name: str, hook: Callable[[], str | None]) -> TransitionCallbackReturn:
        logger = self.get_logger()  # type: ignore[attr-defined]
        try:
            said = hook()
        except Exception as err:  # a failed transition, never a crash of the node
            logger.error(f"lifecycle {name} failed: {type(err).__name__}: {err}")
            return TransitionCallbackReturn.FAILURE
        if said is None:
            return TransitionCallbackReturn.FAILURE
        logger.info(f"lifecycle {name}: {said}")
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("configure", self.configure)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._transition("activate", self.activate)
        if result == TransitionCallbackReturn.SUCCESS:
            self._start_bond()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_bond()
        return self._transition("deactivate", self.deactivate)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("cleanup", self.cleanup)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_bond()
        return self._transition("shutdown", self.shutdown)

    def destroy_node(self) -> None:
        self._stop_bond(at_once=True)
        super().destroy_node()  # type: ignore[misc]

    def _start_bond(self) -> None:
        """The bond with the lifecycle manager, as the node becomes active (none when
        bond_heartbeat_period is 0, or without the bond messages: said once)."""
        period = float(self.get_parameter("bond_heartbeat_period").value)  # type: ignore[attr-defined]
        status_type = bond_messages() if period > 0.0 else None
        if period > 0.0 and status_type is None and not self._bond_said:
            self._bond_said = True
            self.get_logger().warning(NO_BOND_MESSAGES)  # type: ignore[attr-defined]
        if status_type is not None and self._bond is None:
            if self._ended_bond is not None:  # its statuses must not reach the new bond's
                self._ended_bond.close(at_once=True)  # other side: gone now
            self._bond = BondLink(self, period, status_type)

    def _stop_bond(self, at_once: bool = False) -> None:
        """Break the bond (its endpoints go once the manager answers; `at_once`: now)."""
        if self._bond is not None:
            self._ended_bond, self._bond = self._bond, None
        if self._ended_bond is not None:
            self._ended_bond.close(at_once)


def bond_items(node: Node, prefix: str) -> list[DiagnosticItem]:
    """The diagnostics item of the bond a managed node holds while active, else none."""
    link = getattr(node, "_bond", None)
    return [bond_item(prefix, link.bond)] if link is not None else []


def run(
    make_node: Callable[[], Node],
    name: str,
    config_errors: tuple[type[BaseException], ...],
    args: list[str] | None = None,
    threads: int = 1,
    autostart: bool = False,
) -> int:
    """rclpy.init(args), build the node (a configuration error: logged, exit code 1), spin
    until Ctrl-C or shutdown, clean up: exit code 0 whenever Ctrl-C comes. threads > 1: a
    multi-threaded executor (PendingTakeExecutor: callbacks of the node's default group still
    run one at a time; a callback in its own reentrant group, e.g. a service that waits, runs
    beside them).
    autostart: a Managed node configured and activated before it spins.

    The process handles Ctrl-C (SIGINT) and SIGTERM itself, not rclpy: the two signals only
    ask for the stop, which the spin loop sees within STOP_POLL; more of them change nothing,
    also once the process is winding down: ended on a signal, run() leaves both ignored. A
    terminal's Ctrl-C reaches `ros2 launch` and its nodes at once, and the launch then sends
    each node its own SIGINT, which may come at any moment: with rclpy's handlers it raised
    KeyboardInterrupt wherever the node was, e.g. while the planner waited for its worker's
    inference to end (a traceback, exit -2), or inside rclpy's take of a message ("Unable
    to convert call argument to Python object": exit 1, seen once under Fast DDS); with a
    handler of ours still set, it killed the process while the interpreter ended (Python
    puts SIGINT's default action back for a handler set from Python, not for an ignored
    signal: exit -2 with no traceback; with managed nodes, whose launch forwards its SIGINT
    later, in 3 of 3 runs stopped as the soak stops them).
    A node class with an `on_exit()` method gets it called when a signal ends the spin,
    before anything is torn down, so that it can still publish (the controller's last
    command): rclpy's handlers would have shut the context down first."""
    stop = threading.Event()
    ask = lambda signum, frame: stop.set()  # noqa: E731
    previous = signal.signal(signal.SIGINT, ask), signal.signal(signal.SIGTERM, ask)
    try:
        return _run(make_node, name, config_errors, args, threads, autostart, stop)
    finally:
        ending = stop.is_set()  # on a signal: the process ends; else a caller may go on
        signal.signal(signal.SIGINT, signal.SIG_IGN if ending else previous[0])
        signal.signal(signal.SIGTERM, signal.SIG_IGN if ending else previous[1])


def _run(
    make_node: Callable[[], Node],
    name: str,
    config_errors: tuple[type[BaseException], ...],
    args: list[str] | None,
    threads: int,
    autostart: bool,
    stop: threading.Event,
) -> int:
    """run() itself; `stop`: set by the process's signal handlers."""
    logger = rclpy.logging.get_logger(name)
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except KeyboardInterrupt:
        return _exit_cleanly(0)
    except RuntimeError as err:  # rcl's: a params file that does not parse, a bad --ros-args
        logger.fatal(f"bad arguments: {rcl_error_text(str(err))}")
        return 1
    _process_args[:] = sys.argv if args is None else args
    try:
        node = make_node()
    except config_errors as err:
        logger.fatal(f"bad configuration: {err}")
        shut_down()
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        shut_down()
        return _exit_cleanly(0)
    except Exception:
        if not rclpy.ok():  # Ctrl-C while the node was being made: rclpy's signal handler
            return _exit_cleanly(0)  # shut the context down under it (RCLError from rcl)
        raise
    finally:
        _process_args.clear()  # read while the node is made; no state left for other nodes
    executor = PendingTakeExecutor(num_threads=threads) if threads > 1 else None
    try:
        if autostart and isinstance(node, Managed) and not node.autostart():
            logger.error(f"autostart stopped in state {node.lifecycle_state()}")
        executor = executor or SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=STOP_POLL)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        try:
            if callable(getattr(node, "on_exit", None)) and rclpy.ok():
                node.on_exit()
        except Exception as err:
            logger.warning(f"while exiting: {type(err).__name__}: {err}")
        try:
            node.destroy_node()  # the planner stops its worker here (bounded join)
        except Exception as err:  # never turn a clean stop into a crash
            logger.warning(f"while shutting down: {type(err).__name__}: {err}")
        shut_down()
    return _exit_cleanly(0)


def shut_down() -> None:
    """rclpy.try_shutdown(), which races rclpy's own Ctrl-C handler: the handler may shut
    the context down between try_shutdown's check and its call, which then raises RCLError
    "rcl_shutdown already called" (a Ctrl-C while the node was importing, 1 in ~10 runs of
    its test on a loaded machine: exit 1 with a traceback). Shut down is what was asked."""
    try:
        rclpy.try_shutdown()
    except RuntimeError:  # RCLError
        if rclpy.ok():
            raise


def run_node(
    plain: Callable[[], Node],
    managed: Callable[[], Node],
    name: str,
    config_errors: tuple[type[BaseException], ...],
    args: list[str] | None = None,
    threads: int = 1,
) -> int:
    """main() of a node executable: `managed` (its lifecycle variant) when the command line
    says --managed, else `plain`; run() with what --autostart asks. A bad use of these
    arguments: logged, exit code 1."""
    try:
        argv, lifecycle = managed_argument(args)
    except ValueError as err:
        rclpy.logging.get_logger(name).fatal(f"bad arguments: {err}")
        return 1
    node = managed if lifecycle.managed else plain
    return run(node, name, config_errors, argv, threads, autostart=lifecycle.autostart)


def _exit_cleanly(code: int) -> int:
    """`code`, or, when one of our threads is still inside native code (a model still
    loading, an inference that did not stop in time), flush and leave at once: letting the
    interpreter tear down under a running torch thread aborts the process ("terminate
    called without an active exception", exit -6) instead of exiting 0."""
    if any(t.name.startswith("alpamayo-") and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
