"""A managed node's bond with nav2's lifecycle manager, held while the node is active (as
nav2's own servers hold theirs): the rclpy adapter over alpamayo_ros.core.bond.Bond.

Topic `bond` in the node's namespace (bond/msg/Status, the manager's), bond id = the node's
name, heartbeats every `bond_heartbeat_period` on wall time, also with use_sim_time; the
statuses are handled in a callback group of their own, never behind a long callback.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile

from alpamayo_ros.core.bond import DEAD_PUBLISH_PERIOD, Bond, BondState, BondStatus
from alpamayo_ros.core.diagnostics import WARN, bond_item

BOND_TOPIC = "bond"
NO_BOND_MESSAGES = (
    "no bond with a lifecycle manager: the bond messages are not installed "
    "(apt install ros-$ROS_DISTRO-bond); nav2's lifecycle manager then needs bond_timeout: 0.0"
)


def bond_messages() -> Any | None:
    """bond/msg/Status, or None when the bond package is not installed."""
    try:
        from bond.msg import Status
    except ImportError:
        return None
    return Status


class BondLink:
    """The bond `node.get_name()` on BOND_TOPIC, started at construction. `close()` breaks
    it without blocking: breaking statuses every DEAD_PUBLISH_PERIOD until the other side
    answers (or DISCONNECT_TIMEOUT, 2 s, passes), then the link removes its publisher,
    subscription and timer itself, as bondcpp keeps its own until answered. Removed at
    once, the breaking status was seen lost: a reader keeping one sample (bondpy's) got the
    writer's end instead. The manager then sees the bond broken at once (when it still
    watches it: it stops before it deactivates a node itself), else after its heartbeat
    timeout. `close(at_once=True)`: removed now (the node ends, or a new bond starts)."""

    def __init__(self, node: Node, heartbeat_period: float, status_type: Any) -> None:
        self._node = node
        self._type = status_type
        self._lock = threading.Lock()
        self.bond = Bond(node.get_name(), heartbeat_period=heartbeat_period)
        self._said = BondState.WAITING
        group = MutuallyExclusiveCallbackGroup()
        self._pub = node.create_publisher(status_type, BOND_TOPIC, QoSProfile(depth=5))
        self._sub = node.create_subscription(
            status_type, BOND_TOPIC, self._on_status, QoSProfile(depth=100), callback_group=group
        )
        self._timer = node.create_timer(
            DEAD_PUBLISH_PERIOD,
            self._on_tick,
            callback_group=group,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self.closing = False  # broken by close(): the endpoints go once it is answered
        self.removed = False  # the endpoints are gone
        with self._lock:
            self._publish(self.bond.start(time.monotonic()))

    def close(self, at_once: bool = False) -> None:
        """Break the bond (idempotent); see the class docstring."""
        with self._lock:
            if not self.closing:
                self.closing = True
                try:
                    self._publish(self.bond.die(time.monotonic()))
                except Exception as err:  # the context shut down (Ctrl-C): nothing to tell
                    self._node.get_logger().debug(f"bond: breaking status not sent: {err}")
                    at_once = True
                self._say()
            if at_once or self.bond.broken:
                self._remove()

    def _remove(self) -> None:
        """Remove the endpoints (under the lock; once)."""
        if self.removed:
            return
        self.removed = True
        for destroy, entity in (
            (self._node.destroy_timer, self._timer),
            (self._node.destroy_subscription, self._sub),
            (self._node.destroy_publisher, self._pub),
        ):
            try:
                destroy(entity)
            except Exception as err:  # a node already destroyed
                self._node.get_logger().debug(f"bond: {err}")

    def _on_status(self, msg: Any) -> None:
        status = BondStatus(
            msg.id, msg.instance_id, msg.active, msg.heartbeat_timeout, msg.heartbeat_period
        )
        with self._lock:
            if self.removed:
                return
            intruders = self.bond.intruders
            self._publish(self.bond.receive(status, time.monotonic()))
            if intruders == 0 and self.bond.intruders == 1:  # said once
                self._node.get_logger().error(
                    f"bond {self.bond.id!r}: a third instance publishes on "
                    f"{self._pub.topic_name} (instance {msg.instance_id}); ignored: two nodes "
                    "of this name, or two lifecycle managers listing it?"
                )
            self._say()

    def _on_tick(self) -> None:
        with self._lock:
            if self.removed:
                return
            self._publish(self.bond.tick(time.monotonic()))
            self._say()
            if self.closing and self.bond.broken:  # answered, or it waited long enough
                self._remove()

    def _publish(self, statuses: list[BondStatus]) -> None:
        for status in statuses:
            msg = self._type()
            msg.header.stamp = self._node.get_clock().now().to_msg()
            msg.id = status.id
            msg.instance_id = status.instance_id
            msg.active = status.active
            msg.heartbeat_timeout = float(status.heartbeat_timeout)
            msg.heartbeat_period = float(status.heartbeat_period)
            self._pub.publish(msg)

    def _say(self) -> None:
        """Log each change of the bond's state once."""
        state = self.bond.state
        if state is self._said:
            return
        self._said = state
        logger = self._node.get_logger()
        if state is BondState.ALIVE:
            logger.info(f"bond with the lifecycle manager formed on {self._pub.topic_name}")
        elif state is BondState.DEAD and self.closing:  # deactivated, shut down
            logger.info(f"bond with the lifecycle manager ended ({self.bond.why_broken})")
        elif state is BondState.DEAD:  # what /diagnostics says, at its level
            item = bond_item(self._node.get_name(), self.bond)
            (logger.warning if item.level == WARN else logger.info)(item.message)
