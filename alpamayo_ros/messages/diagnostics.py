"""Diagnostics and status -> ROS messages: diagnostic_msgs/DiagnosticArray and
alpamayo_ros/msg/PlannerStatus, through a type lookup (see messages.plan)."""

from __future__ import annotations

from typing import Any

from alpamayo_ros.core.diagnostics import DiagnosticItem, PlannerMonitor
from alpamayo_ros.messages.plan import TypeLookup, header_msg, time_msg


def diagnostic_array_msg(
    items: list[DiagnosticItem], stamp: float, types: TypeLookup, hardware_id: str = ""
) -> Any:
    """diagnostic_msgs/DiagnosticArray of the items, stamped `stamp` seconds."""
    status = types("diagnostic_msgs/msg/DiagnosticStatus")
    key_value = types("diagnostic_msgs/msg/KeyValue")
    return types("diagnostic_msgs/msg/DiagnosticArray")(
        header=header_msg(types, stamp, ""),
        status=[
            status(
                level=bytes([item.level]) if _wants_bytes(status) else item.level,
                name=item.name,
                message=item.message,
                hardware_id=hardware_id,
                values=[key_value(key=k, value=v) for k, v in item.values],
            )
            for item in items
        ],
    )


def _wants_bytes(status_cls: Any) -> bool:
    """rclpy maps the `byte` type of DiagnosticStatus.level to bytes; rosbags to int."""
    fields = getattr(status_cls, "get_fields_and_field_types", None)
    return bool(fields and fields().get("level") in ("byte", "octet"))


def planner_status_msg(monitor: PlannerMonitor, stamp: float, types: TypeLookup) -> Any:
    """alpamayo_ros/msg/PlannerStatus from the monitor's state and counters."""
    return types("alpamayo_ros/msg/PlannerStatus")(
        header=header_msg(types, stamp, ""),
        state=monitor.state,
        detail=monitor.detail,
        plans_published=monitor.plans,
        fallback_plans=monitor.fallback_plans,
        dropped_cycles=monitor.dropped_cycles,
        bad_messages=monitor.bad_message_total,
        late_plans=monitor.late_plans,
        time_jumps=monitor.time_jumps,
        model_ready=monitor.model_ready,
        node_started=time_msg(types, monitor.started_system),
    )
