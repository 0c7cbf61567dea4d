"""A kinematic bicycle model of the vehicle, for closed-loop tests and simulation.

Reference point: the rear axle (base_link on most cars, REP-103 axes). With wheelbase L,
steering angle delta and speed v, the yaw rate is v tan(delta) / L: the rear axle moves on
a circle of curvature tan(delta) / L, so the model shares the unicycle's geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BicycleState:
    """x, y: metres in a fixed frame; yaw: rad; speed: m/s; steering: rad (front wheel)."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    speed: float = 0.0
    steering: float = 0.0


def bicycle_step(
    state: BicycleState, accel: float, steering: float, dt: float, wheelbase: float
) -> BicycleState:
    """Advance dt seconds with constant acceleration (m/s^2) and steering angle (rad).

    Exact for constant curvature over the step (arc integration); speed never changes sign
    within a step (a car brakes to a standstill, it does not reverse by braking).
    """
    kappa = math.tan(steering) / wheelbase
    v0 = state.speed
    v1 = v0 + accel * dt
    if (v0 >= 0.0 > v1) or (v0 < 0.0 < v1):  # stops within the step and stays stopped
        distance = 0.5 * v0 * abs(v0 / accel)
        v1 = 0.0
    else:
        distance = 0.5 * (v0 + v1) * dt
    dyaw = kappa * distance
    if abs(dyaw) < 1e-9:
        dx, dy = distance * math.cos(state.yaw), distance * math.sin(state.yaw)
    else:
        r = 1.0 / kappa
        dx = r * (math.sin(state.yaw + dyaw) - math.sin(state.yaw))
        dy = -r * (math.cos(state.yaw + dyaw) - math.cos(state.yaw))
    return replace(
        state, x=state.x + dx, y=state.y + dy, yaw=state.yaw + dyaw, speed=v1, steering=steering
    )
