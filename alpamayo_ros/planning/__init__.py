"""The planning layer, without ROS or torch: settings, requests and the Policy protocol,
the planning loop (Planner) and the inference worker. A model implements the protocol
(alpamayo_ros.model.policy.AlpamayoPolicy) and is imported only where one is built.
"""
