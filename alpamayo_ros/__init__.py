"""alpamayo_ros: a reasoning vision-language-action driving model on ROS 2.

Layers (imports flow one way): nodes -> model / control / bag -> core. `alpamayo_ros.core`
needs neither torch nor rclpy. When built with colcon, the generated interfaces live beside
this package as `alpamayo_ros.msg`.
"""

__version__ = "0.1.0"
