"""alpamayo_ros: a reasoning vision-language-action driving model on ROS 2.

Layers (imports flow one way): nodes -> model / control / bag -> messages -> core.
`alpamayo_ros.core` needs neither torch nor rclpy. When built with colcon, the generated
interfaces live beside this package as `alpamayo_ros.msg`.
"""

from pkgutil import extend_path

# Run from a source checkout (pytest in the package folder, as ament_add_pytest_test does),
# this copy shadows the installed one that holds the generated `msg` subpackage: search
# every `alpamayo_ros` folder on sys.path for subpackages, so `alpamayo_ros.msg` resolves.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
