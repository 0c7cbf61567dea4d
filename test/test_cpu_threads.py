"""torch's idle CPU threads sleep rather than spin: OMP_WAIT_POLICY=PASSIVE is set by the
entry points before torch loads, and a user's own value is kept."""

import os
import subprocess
import sys

from alpamayo_ros.cpu_threads import WAIT_POLICY, prefer_passive_waiting

# A fresh interpreter: runs the command line's main as the console script does and says
# the wait policy the OpenMP runtime read when torch loaded, if torch loaded.
PROBE = """
import os, sys
from alpamayo_ros import cli
code = cli.main(sys.argv[1:])
loaded = "torch-loaded" if "torch" in sys.modules else "torch-absent"
print(loaded, os.environ.get("OMP_WAIT_POLICY"))
"""


def _probe(argv):
    env = {k: v for k, v in os.environ.items() if k != WAIT_POLICY}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, timeout=120
    )
    return run.stdout.strip().splitlines()[-1]


def test_set_when_absent_and_torch_not_loaded():
    environ: dict[str, str] = {}
    assert prefer_passive_waiting(environ, loaded=frozenset({"numpy"}))
    assert environ == {WAIT_POLICY: "PASSIVE"}


def test_a_users_value_is_kept():
    environ = {WAIT_POLICY: "ACTIVE"}
    assert not prefer_passive_waiting(environ, loaded=frozenset())
    assert environ == {WAIT_POLICY: "ACTIVE"}


def test_not_set_once_torch_is_loaded():
    """The runtime has read the environment: setting it then would only mislead."""
    environ: dict[str, str] = {}
    assert not prefer_passive_waiting(environ, loaded=frozenset({"torch"}))
    assert environ == {}


def test_the_command_line_sets_it_before_torch_loads(tmp_path):
    """`alpamayo-ros` on a fresh process: torch is loaded by the command (a tiny checkpoint
    is built) after the policy was set, so the runtime read PASSIVE."""
    out = tmp_path / "ckpt"
    assert _probe(["make-tiny-checkpoint", str(out)]) == "torch-loaded PASSIVE"
    # (a value the user set is kept: test_a_users_value_is_kept, without a second process)
