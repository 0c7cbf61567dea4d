"""Offline work over ROS 2 bags with no ROS install (the `rosbags` library)."""
