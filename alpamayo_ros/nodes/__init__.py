"""Thin rclpy adapters: the planner and controller nodes. Everything they do beyond wiring
topics lives in the ROS-free layers below; `parameters` is ROS-free too (CI tests it)."""
