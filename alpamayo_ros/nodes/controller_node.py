"""alpamayo_controller: DrivingPlan + ego motion in; cmd_vel (Twist or TwistStamped), and
optionally ackermann_cmd (AckermannDriveStamped), and diagnostics out.

It follows plans only while engaged (engage_on_start, or the ~/engage service,
std_srvs/SetBool); otherwise it commands a controlled stop and holds the standstill
(control.engagement). When its process ends (Ctrl-C, SIGTERM, the launch stopping it)
while it commands motion, its last command is zero speed (control.tracking.exit_command),
so the vehicle is not left on its last motion command.

A thin rclpy adapter over control.tracking.TrajectoryTracker: callbacks convert and store,
a timer at control_rate_hz computes and publishes the command. A stale plan, a plan stamped
ahead of the clock, no plan or odometry that cannot place the plan gives a controlled stop
(the tracker decides). A wall-clock watchdog commands a controlled stop when the node's
clock stops (/clock gone with use_sim_time), when the control timer cannot fire.

Managed (`--managed`, drive.launch.py managed:=true): a lifecycle node that may be engaged
only while active. Activating engages it when engage_on_start is set; deactivating
disengages it: the controlled stop, then the standstill held (or, with disengaged_output
none, nothing once standing), so a deactivation never leaves the vehicle on its last
motion command; so does a shutdown transition. Unconfigured, inactive and finalized,
~/engage true is refused with the reason.
"""

from __future__ import annotations

import math
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from std_srvs.srv import SetBool

from alpamayo_ros.control.engagement import Engagement
from alpamayo_ros.control.mode_log import ModeLog
from alpamayo_ros.control.tracking import (
    Command,
    TrajectoryTracker,
    exit_command,
    tracker_diagnostics,
)
from alpamayo_ros.core.clock import ClockSettings, ClockWatch
from alpamayo_ros.core.ego_history import EgoHistoryUnavailable
from alpamayo_ros.core.plan import PlanLimits, plan_problems
from alpamayo_ros.messages.commands import ackermann_msg, twist_msg, twist_stamped_msg
from alpamayo_ros.messages.diagnostics import diagnostic_array_msg
from alpamayo_ros.messages.inputs import BadMessage, pose_from_odometry
from alpamayo_ros.messages.plan import plan_from_msg
from alpamayo_ros.msg import DrivingPlan
from alpamayo_ros.nodes.common import (
    Managed,
    RuntimeParameters,
    bond_items,
    latest_tf_pose,
    odometry_type_problem,
    publisher,
    refuse_unknown_parameters,
    run_node,
    say_wrong_input_types,
    subscribe_ego_motion,
    subscription,
    types,
)
from alpamayo_ros.nodes.parameters import (
    CONTROLLER_PARAMS,
    ControllerConfig,
    ParameterError,
    controller_config,
    declare_parameters,
)

INACTIVE = "the managed controller is not active (lifecycle): activate it first"
FINALIZED = "the managed controller is finalized (lifecycle): restart it to drive"


class ControllerNode(Node):
    """See the module docstring; parameters in alpamayo_ros.nodes.parameters."""

    MANAGED = False  # ManagedControllerNode: a lifecycle node

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("alpamayo_controller", **kwargs)
        values = declare_parameters(self, CONTROLLER_PARAMS)
        self.config: ControllerConfig = controller_config(values)
        cfg = self.config
        self.tracker = TrajectoryTracker(cfg.tracker)
        self.clock_watch = ClockWatch(ClockSettings(stall_after=cfg.clock_timeout))
        self.limits = PlanLimits(speed=(-0.5, cfg.tracker.max_speed * 1.5))
        self.bad_plans = 0
        self._type_said: set[str] = set()  # odom_topic published with another type
        self.measured_speed: float | None = None
        self.last_command: Command | None = None
        self.mode_log = ModeLog(min_interval=1.0)  # mode changes logged, a line a second at most
        self.engagement = Engagement(
            engaged=cfg.engage_on_start and not self.MANAGED,
            hold=cfg.disengaged_output == "hold",
            blocked=INACTIVE if self.MANAGED else "",
        )

        cmd_type = TwistStamped if cfg.cmd_vel_stamped else Twist
        self.pub_cmd = publisher(self, cmd_type, "cmd_vel", 10)
        self.pub_ackermann = None
        if cfg.publish_ackermann:
            try:
                from ackermann_msgs.msg import AckermannDriveStamped
            except ImportError as err:
                raise ParameterError(
                    "parameter publish_ackermann = True needs the ackermann_msgs package "
                    f"(apt install ros-$ROS_DISTRO-ackermann-msgs): {err}"
                ) from err
            self.pub_ackermann = publisher(self, AckermannDriveStamped, "ackermann_cmd", 10)
        self.pub_diagnostics = publisher(self, DiagnosticArray, "/diagnostics", 10)

        subscription(self, DrivingPlan, "plan", self._on_plan, 10)
        self.tf_buffer, self._tf_listener = subscribe_ego_motion(
            self, cfg.ego_source, cfg.odom_topic, self._on_odometry, cfg.base_frame
        )
        self.srv_engage = self.create_service(SetBool, "~/engage", self._on_engage)
        self.parameters = RuntimeParameters(  # the gains and limits: settable while running
            self, CONTROLLER_PARAMS, values, controller_config, self._apply_config
        )
        refuse_unknown_parameters(self)  # every parameter, QoS ones too, is declared now
        self.create_timer(1.0 / cfg.control_rate_hz, self._on_control)
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # fires while /clock is stopped
        self.create_timer(min(0.1, cfg.clock_timeout / 2), self._on_watchdog, clock=steady)
        self.create_timer(cfg.diagnostics_period, self._on_diagnostics, clock=steady)
        engage = (
            "following plans" if cfg.engage_on_start else "not engaged: stopping until ~/engage"
        )
        if self.MANAGED:
            engage = "managed: stopping until configured and activated"
        self.get_logger().info(
            f"commands at {cfg.control_rate_hz:g} Hz, wheelbase {cfg.tracker.wheelbase} m; {engage}"
        )

    def _apply_config(self, config: ControllerConfig) -> None:
        """A config with new gains or limits (RuntimeParameters): used from the next command."""
        self.config = config
        self.tracker.settings = config.tracker
        self.limits = PlanLimits(speed=(-0.5, config.tracker.max_speed * 1.5))

    def _on_engage(self, request: Any, response: Any) -> Any:
        """~/engage (std_srvs/SetBool): data true follows plans from the next command, false
        stops (controlled, then held). The answer says what changed and the current mode."""
        text = self.engagement.request(bool(request.data), self._now())
        last = self.last_command
        if last is not None:
            text += f" (last command: {last.mode}{': ' + last.reason if last.reason else ''})"
        self.get_logger().info(f"~/engage {str(bool(request.data)).lower()}: {text}")
        response.success = not text.startswith("refused")
        response.message = text
        return response

    def _now(self) -> float:
        now = self.get_clock().now().nanoseconds * 1e-9
        jump = self.clock_watch.observe(now, time.monotonic())
        if jump is not None:
            self.get_logger().warning(f"{jump}: plan and odometry of the old timeline dropped")
        return now

    def _on_plan(self, msg: DrivingPlan) -> None:
        try:
            plan = plan_from_msg(msg)
            if plan.frame_id.lstrip("/") != self.config.base_frame:
                raise BadMessage(
                    f"plan frame {plan.frame_id!r} is not base_frame {self.config.base_frame!r}"
                )
            problems = plan_problems(plan, self.limits)
            if problems:
                raise BadMessage("; ".join(problems))
        except BadMessage as err:
            self.bad_plans += 1
            self.get_logger().warning(f"ignored a plan: {err}", throttle_duration_sec=5.0)
            return
        now = self._now()
        self.tracker.set_plan(plan, now=now)
        timeout = self.config.tracker.plan_timeout
        if now - plan.stamp > timeout:
            self.get_logger().warning(
                f"plans arrive {now - plan.stamp:.2f} s old, past plan_timeout {timeout} s: "
                "the model is slower than the controller expects, so it stops instead of "
                "following them (a faster device, or a larger plan_timeout for demos only)",
                throttle_duration_sec=10.0,
            )

    def _on_odometry(self, msg: Odometry) -> None:
        try:
            pose = pose_from_odometry(msg, self.config.odom_topic)
        except BadMessage as err:
            self.get_logger().warning(f"ignored odometry: {err}", throttle_duration_sec=5.0)
            return
        speed = float(msg.twist.twist.linear.x)
        if math.isfinite(speed):
            self.measured_speed = speed
        self.tracker.add_pose(pose)

    def _poll_tf(self) -> None:
        assert self.tf_buffer is not None
        cfg = self.config
        try:
            pose = latest_tf_pose(self.tf_buffer, cfg.odom_frame, cfg.base_frame)
        except ValueError as err:
            self.get_logger().warning(f"ignored tf: {err}", throttle_duration_sec=5.0)
            return
        if pose is None or pose.stamp == self.tracker.poses.latest_stamp:
            return
        self.tracker.add_pose(pose)
        try:  # no twist in tf: the speed from the pose history
            self.measured_speed = self.tracker.poses.history(pose.stamp).travel_speed
        except EgoHistoryUnavailable:
            pass

    def _on_control(self) -> None:
        now = self._now()
        if now <= 0.0:  # use_sim_time and no /clock yet
            return
        if self.tf_buffer is not None:
            self._poll_tf()
        if self.measured_speed is None:
            command = self.tracker.standstill(now, "no odometry received")
        else:
            command = self.tracker.update(
                now, self.measured_speed, stop_reason=self.engagement.stop_reason
            )
        self._log_mode(now, command)
        self._send(command)

    def _log_mode(self, now: float, command: Command, force: bool = False) -> None:
        line = self.mode_log.update(now, command.mode, command.reason, force)
        if line is None:
            return
        # rclpy ties a severity to each call site: one call per severity.
        if line.mode == "tracking":
            self.get_logger().info(line.text)
        else:
            self.get_logger().warning(line.text)

    def _on_watchdog(self) -> None:
        """Wall time: while the node's clock stands still the control timer does not fire,
        so the stop is commanded from here."""
        if self.last_command is None:  # no clocked command yet: nothing to stop from
            return
        now = self._now()  # a reading of the clock, so that standing still is measured
        wall = time.monotonic()
        if not self.clock_watch.stalled(wall):
            return
        stalled = self.clock_watch.stalled_for(wall)
        command = self.tracker.stop_without_clock(
            stalled, f"clock stalled for {stalled:.1f} s (use_sim_time and /clock stopped?)"
        )
        self._log_mode(now, command, force=True)
        self._send(command)

    def _send(self, command: Command) -> None:
        self.last_command = command
        if not self.engagement.publishes(command.mode):
            return  # not engaged, standing, disengaged_output none: others may command
        if self.config.cmd_vel_stamped:
            self.pub_cmd.publish(twist_stamped_msg(command, types, self.config.base_frame))
        else:
            self.pub_cmd.publish(twist_msg(command, types))
        if self.pub_ackermann is not None:
            self.pub_ackermann.publish(ackermann_msg(command, types, self.config.base_frame))

    def on_exit(self) -> None:
        """The process is ending (Ctrl-C, SIGTERM, the launch shutting down; nodes.common.run
        calls this while the publishers still work): a last command of zero speed
        (control.tracking.exit_command), so the vehicle is not left on its last motion
        command; nothing when no command went out yet or none would now (not engaged and
        standing with disengaged_output none)."""
        last = self.last_command
        if last is None:
            return
        command = exit_command(last, self.config.tracker.stop_decel, "controller exiting")
        if not self.engagement.publishes(command.mode):
            return
        self._send(command)
        for pub in (self.pub_cmd, self.pub_ackermann):  # reliable readers have it, or 0.2 s
            if pub is not None:
                pub.wait_for_all_acked(Duration(seconds=0.2))
        if command.mode == "stopping":
            self.get_logger().warning(
                f"controller exiting: zero speed commanded from {last.speed:.1f} m/s"
            )

    def _on_diagnostics(self) -> None:
        if self.config.ego_source == "odometry":
            odometry = self.config.odom_topic
            say_wrong_input_types(
                self, {odometry: odometry_type_problem(odometry)}, self._type_said
            )
        if self.last_command is None:
            return
        prefix = self.get_fully_qualified_name().lstrip("/")
        item = tracker_diagnostics(
            self.last_command,
            self.bad_plans,
            prefix,
            tracker=self.tracker,
            engaged=self.engagement.engaged,
        )
        items = [item, *bond_items(self, prefix)]
        msg = diagnostic_array_msg(items, self._now(), types, "alpamayo_controller")
        self.pub_diagnostics.publish(msg)


class ManagedControllerNode(Managed, ControllerNode, LifecycleNode):
    """ControllerNode as a lifecycle node (see the module docstring)."""

    MANAGED = True

    def activate(self) -> str:
        text = self.engagement.unblock(self.config.engage_on_start, self._now())
        return f"{text} (engage_on_start {str(self.config.engage_on_start).lower()})"

    def deactivate(self) -> str:
        return self.engagement.block(INACTIVE, self._now())

    def shutdown(self) -> str:
        """From any state, active included (no deactivation comes first): stopped as when
        deactivated, for good."""
        return self.engagement.block(FINALIZED, self._now())


def main(args: list[str] | None = None) -> int:
    return run_node(
        ControllerNode, ManagedControllerNode, "alpamayo_controller", (ParameterError,), args
    )
