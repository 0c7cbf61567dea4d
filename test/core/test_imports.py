"""The core layer stays free of torch, transformers and rclpy."""

import subprocess
import sys


def test_importing_core_does_not_import_torch_transformers_or_rclpy():
    code = (
        "import sys, alpamayo_ros.core;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'rclpy', 'cv2'));"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"core imported: {result.stdout} {result.stderr}"
