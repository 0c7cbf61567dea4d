"""ROS-free trajectory tracking (pure pursuit + speed control with limits) and a kinematic
bicycle model for closed-loop tests. Imports numpy, transforms3d and the core only."""

from alpamayo_ros.control.bicycle import BicycleState, bicycle_step
from alpamayo_ros.control.tracking import Command, TrackerSettings, TrajectoryTracker

__all__ = ["BicycleState", "Command", "TrackerSettings", "TrajectoryTracker", "bicycle_step"]
