"""Whether the controller may follow plans: the engage gate.

A controller that starts driving the moment it is launched surprises the people around the
car. Until it is engaged (the `engage_on_start` parameter, or a person or the vehicle's
system through the node's `~/engage` service) and after it is disengaged, the controller
commands the controlled stop it commands for a stale plan (decelerating at stop_decel to a
standstill, then holding it), with the reason NOT_ENGAGED. Engaging takes effect at the next
command; from then on the plan decides, and the other stops (no plan, a stale plan, a clock
that stops) still apply. Standing still while not engaged, the controller keeps commanding
the standstill (`hold`), or, with hold False, publishes nothing, so that another command
source (a teleop input of a twist_mux) can drive. A managed (lifecycle) controller is
`blocked` while it is not active: engaging is refused with the reason, deactivating
disengages (the controlled stop), and the stops say why. Times are the node's clock
(seconds). ROS-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NOT_ENGAGED = "not engaged (the ~/engage service, or engage_on_start)"


@dataclass
class Engagement:
    """engaged: plans are followed. hold: while not engaged and standing still, commands
    are still published (the standstill held); False: none are. changes: engages and
    disengages since start. since: node time (s) of the last change (NaN before the first)."""

    engaged: bool = False
    hold: bool = True
    changes: int = 0
    since: float = math.nan
    blocked: str = ""  # why engaging is refused now ("" = it is not)

    def request(self, engage: bool, now: float) -> str:
        """Engage (True) or disengage (False) at `now`; the answer for the caller and the
        log: what changed, that nothing did, or (refused) why not."""
        if engage and self.blocked:
            return f"refused: {self.blocked}"
        if engage == self.engaged:
            return f"already {'engaged' if engage else 'disengaged'}"
        self.engaged = engage
        self.changes += 1
        self.since = now
        if engage:
            return "engaged: following plans"
        return "disengaged: controlled stop to a standstill, then holding it"

    def block(self, why: str, now: float) -> str:
        """Refuse engaging from now on, for `why` (a lifecycle deactivation), disengaging
        first when engaged: the controlled stop. The answer, as request's."""
        text = self.request(False, now)
        self.blocked = why
        return text

    def unblock(self, engage: bool, now: float) -> str:
        """Allow engaging again; engage at once when `engage` (engage_on_start)."""
        self.blocked = ""
        return self.request(True, now) if engage else "may engage (~/engage)"

    @property
    def stop_reason(self) -> str:
        """What the tracker is given as the reason to stop: "" while engaged."""
        return "" if self.engaged else (self.blocked or NOT_ENGAGED)

    def publishes(self, mode: str) -> bool:
        """Whether a command of this mode ("tracking", "stopping", "stopped") goes out: all
        do, but the standstill while not engaged when hold is False."""
        return self.engaged or self.hold or mode != "stopped"
