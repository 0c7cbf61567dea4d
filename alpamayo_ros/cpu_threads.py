"""How torch's CPU worker threads wait between parallel regions: asleep, not spinning.

torch's CPU build runs its parallel loops on an OpenMP runtime (libgomp), whose idle
threads spin on their core after each region by default. On a machine whose cores are
busy with other work (a shared 2-core machine, the planner node beside ROS executors and
drivers) a spinning thread holds the core that the thread it waits for needs. Measured here
(the README's main job, `replay` of the sample bag, 2 cores, 2 threads): idle 31.6 s
spinning, 33.1 s passive; with both cores busy with other processes 200 s spinning, 77 s
passive (user time 190 s against 44 s).

The runtime reads OMP_WAIT_POLICY once, when torch loads it, so the entry points (the
command line, the nodes) call `prefer_passive_waiting` before anything imports torch. A
value the user set is kept.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

WAIT_POLICY = "OMP_WAIT_POLICY"


def prefer_passive_waiting(
    environ: MutableMapping[str, str] = os.environ, loaded: frozenset[str] | None = None
) -> bool:
    """OMP_WAIT_POLICY=PASSIVE for this process unless the user set it or torch is already
    loaded (its runtime has read the environment: too late to matter). `loaded`: the
    imported module names (default sys.modules). True when it was set here."""
    modules = sys.modules.keys() if loaded is None else loaded
    if WAIT_POLICY in environ or "torch" in modules:
        return False
    environ[WAIT_POLICY] = "PASSIVE"
    return True
