"""One side of a bond (the protocol of ROS's bond_core: bondcpp, bondpy), ROS-free.

nav2's lifecycle manager holds a bond with each node it manages once it has activated it
(topic `bond` in the node's namespace, bond id = the node's name, heartbeats every 0.1 s)
and takes every managed node down when one stops beating for `bond_timeout` (4 s by
default); nav2's own servers hold the other end from activation to deactivation. This is
that other end for our nodes: the state machine of bond_core's BondSM (WaitingForSister,
Alive, AwaitSisterDeath, Dead) driven by explicit times, with no thread and no timer of its
own. The node's adapter (alpamayo_ros.nodes.bond) calls `tick` often (every
DEAD_PUBLISH_PERIOD), hands it each received status and publishes what it returns.

Times are seconds on a monotonic clock (the bond is wall time, as bondcpp's timers are,
also under simulated time).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

# bond/msg/Constants
DEAD_PUBLISH_PERIOD = 0.05  # s between "dead" statuses while breaking
CONNECT_TIMEOUT = 10.0  # s without a sister after start: broken
HEARTBEAT_TIMEOUT = 4.0  # s without the sister's heartbeat: broken
DISCONNECT_TIMEOUT = 2.0  # s breaking without the sister's answer: broken


class BondState(Enum):
    WAITING = "waiting for the other side"
    ALIVE = "formed"
    DYING = "breaking"
    DEAD = "broken"


@dataclass(frozen=True)
class BondStatus:
    """What one side publishes (bond/msg/Status without its header)."""

    id: str  # the bond's id (both sides)
    instance_id: str  # the sender's (a new one per Bond object)
    active: bool  # False: breaking
    heartbeat_timeout: float  # s, the sender's (for debugging, unused by the receiver)
    heartbeat_period: float  # s, the sender's


class Bond:
    """The state machine of one side of the bond `bond_id`. Every method takes `now`
    (monotonic s) and returns the statuses to publish at once, in order."""

    def __init__(
        self,
        bond_id: str,
        heartbeat_period: float = 1.0,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        disconnect_timeout: float = DISCONNECT_TIMEOUT,
        instance_id: str | None = None,
    ) -> None:
        for name, value in (
            ("heartbeat_period", heartbeat_period),
            ("heartbeat_timeout", heartbeat_timeout),
            ("connect_timeout", connect_timeout),
            ("disconnect_timeout", disconnect_timeout),
        ):
            if not value > 0.0:
                raise ValueError(f"bond {name} must be > 0 s, got {value}")
        self.id = bond_id
        self.instance_id = instance_id or str(uuid.uuid4())
        self.heartbeat_period = heartbeat_period
        self.heartbeat_timeout = heartbeat_timeout
        self.connect_timeout = connect_timeout
        self.disconnect_timeout = disconnect_timeout
        self.state = BondState.WAITING
        self.started = False
        self.sister_instance_id: str | None = None
        self.sister_died_first = False
        self.why_broken = ""  # once DEAD: what broke it
        self.broken_here = False  # broken by die() (this side)
        self.intruders = 0  # statuses of a third instance with this id (ignored)
        self._deadline: float | None = None  # connect, heartbeat or disconnect timeout
        self._next_publish = 0.0

    def start(self, now: float) -> list[BondStatus]:
        """Start waiting for the other side; the first heartbeat goes out at once."""
        if self.started:
            raise RuntimeError(f"bond {self.id!r} started twice")
        self.started = True
        self._deadline = now + self.connect_timeout
        self._next_publish = now
        return self.tick(now)

    @property
    def formed(self) -> bool:
        """Both sides have heard each other (and it has not broken since)."""
        return self.state in (BondState.ALIVE, BondState.DYING)

    @property
    def broken(self) -> bool:
        return self.state is BondState.DEAD

    @property
    def lost(self) -> bool:
        """Broken after the other side was heard, not by this side: it broke it, or fell
        silent (a lifecycle manager that died: nothing supervises the node any more)."""
        return self.broken and self.sister_instance_id is not None and not self.broken_here

    def receive(self, status: BondStatus, now: float) -> list[BondStatus]:
        """A status heard on the bond's topic (our own and other bonds' are ignored)."""
        if not self.started or status.id != self.id or status.instance_id == self.instance_id:
            return []
        if self.sister_instance_id is None:
            self.sister_instance_id = status.instance_id
        elif status.instance_id != self.sister_instance_id:
            self.intruders += 1  # bond_core: "more than two locations ... use a single bond"
            return []
        if status.active:
            if self.state is BondState.WAITING:
                self.state = BondState.ALIVE
                self._deadline = now + self.heartbeat_timeout
            elif self.state is BondState.ALIVE:
                self._deadline = now + self.heartbeat_timeout
            return []
        if self.state in (BondState.WAITING, BondState.ALIVE):
            self.sister_died_first = True
            self._die("the other side broke it")
        elif self.state is BondState.DYING:
            self._die("broken by this side, the other side answered")
        # bond_core acknowledges the other side's breaking at once, every time it hears it
        return [self._status(False)] if self.sister_died_first else []

    def tick(self, now: float) -> list[BondStatus]:
        """The timeouts due by `now`, then the heartbeat (or breaking status) due."""
        if not self.started:
            return []
        if self._deadline is not None and now >= self._deadline:
            if self.state is BondState.WAITING:
                self._die(f"no answer from the other side within {self.connect_timeout:g} s")
            elif self.state is BondState.ALIVE:
                self._die(f"no heartbeat from the other side for {self.heartbeat_timeout:g} s")
            elif self.state is BondState.DYING:
                self._die(f"broken by this side, no answer within {self.disconnect_timeout:g} s")
        if self.state is BondState.DEAD or now < self._next_publish:
            return []
        alive = self.state is not BondState.DYING
        period = self.heartbeat_period if alive else DEAD_PUBLISH_PERIOD
        # the next one a period after this one's due time, never in a burst after a stall
        self._next_publish = max(self._next_publish + period, now + 0.5 * period)
        return [self._status(alive)]

    def die(self, now: float) -> list[BondStatus]:
        """Break the bond from this side: formed, it waits for the other side's answer
        (statuses saying so every DEAD_PUBLISH_PERIOD, until disconnect_timeout); not
        formed, it is broken at once. Either way one breaking status goes out now."""
        if not self.started or self.state is BondState.DEAD:
            return []
        self.broken_here = True
        if self.state is BondState.ALIVE:
            self.state = BondState.DYING
            self._deadline = now + self.disconnect_timeout
            self._next_publish = now + DEAD_PUBLISH_PERIOD
        elif self.state is BondState.WAITING:
            self._die("broken by this side before the other side answered")
        return [self._status(False)]

    def _die(self, why: str) -> None:
        self.state = BondState.DEAD
        self.why_broken = why
        self._deadline = None

    def _status(self, active: bool) -> BondStatus:
        return BondStatus(
            self.id, self.instance_id, active, self.heartbeat_timeout, self.heartbeat_period
        )
