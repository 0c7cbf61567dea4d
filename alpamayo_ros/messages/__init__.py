"""ROS messages <-> core values, duck-typed so that one code path serves rclpy messages
(live nodes) and rosbags messages (offline replay, tests): inputs (odometry, tf), plans
(DrivingPlan, Path, reasoning, markers), commands (Twist, AckermannDriveStamped) and camera
images (Image, CompressedImage -> RGB arrays)."""
