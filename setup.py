"""pip entry point for Python users without ROS (core, model, replay CLI, tests).

ROS 2 users build with colcon: the package is ament_cmake (see CMakeLists.txt) and this file
is not used there. Metadata and dependencies live in setup.cfg.
"""

from setuptools import setup

setup()
