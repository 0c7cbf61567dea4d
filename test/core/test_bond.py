"""One side of a bond (bond_core's protocol, what nav2's lifecycle manager holds with each
node it activates): two sides wired to each other in memory, time driven by the test."""

import pytest

from alpamayo_ros.core.bond import (
    DEAD_PUBLISH_PERIOD,
    Bond,
    BondState,
    BondStatus,
)


class Wire:
    """Two bonds that hear everything the other publishes, at once (and their own, as a
    topic delivers it); `dropped` cuts the wire from a to b."""

    def __init__(self, a: Bond, b: Bond) -> None:
        self.a, self.b = a, b
        self.sent: dict[str, list[BondStatus]] = {a.instance_id: [], b.instance_id: []}
        self.cut_a = False  # nothing a publishes arrives

    def deliver(self, statuses: list[BondStatus], now: float) -> None:
        queue = list(statuses)
        while queue:
            status = queue.pop(0)
            self.sent[status.instance_id].append(status)
            if self.cut_a and status.instance_id == self.a.instance_id:
                continue
            for side in (self.a, self.b):
                queue += side.receive(status, now)

    def run(self, start: float, end: float, step: float = 0.01) -> float:
        now = start
        while now < end - 1e-9:
            now = round(now + step, 6)
            self.deliver(self.a.tick(now) + self.b.tick(now), now)
        return now


def pair(**kwargs) -> tuple[Bond, Bond, Wire]:
    node = Bond("alpamayo_planner", heartbeat_period=0.1, **kwargs)
    manager = Bond("alpamayo_planner", heartbeat_period=0.1, **kwargs)
    return node, manager, Wire(node, manager)


def test_two_sides_form_the_bond_and_beat_at_their_period():
    node, manager, wire = pair()
    wire.deliver(node.start(0.0), 0.0)
    assert node.state is BondState.WAITING and not node.formed
    wire.deliver(manager.start(0.3), 0.3)
    assert node.formed and not manager.formed  # the node heard the manager's first beat
    wire.run(0.3, 0.45)
    assert manager.formed  # and the manager the node's next one
    assert node.sister_instance_id == manager.instance_id
    wire.run(0.45, 10.3)
    assert node.state is BondState.ALIVE and manager.state is BondState.ALIVE
    beats = [s for s in wire.sent[node.instance_id] if s.active]
    assert 101 <= len(beats) <= 104  # 10.3 s at 0.1 s (first one at start)
    assert all(s.id == "alpamayo_planner" and s.heartbeat_period == 0.1 for s in beats)


def test_a_side_that_stops_beating_breaks_the_bond_after_the_heartbeat_timeout():
    node, manager, wire = pair(heartbeat_timeout=4.0)
    wire.deliver(node.start(0.0) + manager.start(0.0), 0.0)
    wire.run(0.0, 1.0)
    wire.cut_a = True  # the node hangs: nothing more from it
    wire.run(1.0, 4.95)
    assert manager.formed
    wire.run(4.95, 5.05)
    assert manager.broken and "no heartbeat" in manager.why_broken and "4 s" in manager.why_broken


def test_nobody_answering_breaks_it_after_the_connect_timeout():
    node = Bond("alpamayo_controller", heartbeat_period=0.1, connect_timeout=10.0)
    node.start(0.0)
    assert node.tick(9.99) and node.state is BondState.WAITING
    assert node.tick(10.0) == [] and node.broken
    assert "no answer" in node.why_broken
    assert node.tick(11.0) == []  # broken: nothing more published


def test_breaking_from_one_side_is_answered_and_both_end_broken():
    node, manager, wire = pair()
    wire.deliver(node.start(0.0) + manager.start(0.0), 0.0)
    wire.run(0.0, 1.0)
    wire.deliver(node.die(1.0), 1.0)  # deactivated: the node breaks it
    assert manager.broken and manager.sister_died_first
    assert node.broken and "answered" in node.why_broken
    last = wire.sent[manager.instance_id][-1]
    assert not last.active  # the manager's acknowledgement


def test_an_unanswered_break_keeps_saying_so_until_the_disconnect_timeout():
    node, manager, wire = pair(disconnect_timeout=2.0)
    wire.deliver(node.start(0.0) + manager.start(0.0), 0.0)
    wire.run(0.0, 1.0)
    said = node.die(1.0)
    assert [s.active for s in said] == [False] and node.state is BondState.DYING
    statuses = []
    now = 1.0
    while now < 2.9:
        now = round(now + 0.01, 6)
        statuses += node.tick(now)
    assert node.state is BondState.DYING and all(not s.active for s in statuses)
    assert len(statuses) == pytest.approx(1.9 / DEAD_PUBLISH_PERIOD, abs=2)
    node.tick(3.0)
    assert node.broken and "no answer within 2 s" in node.why_broken


def test_breaking_before_the_other_side_answered_is_immediate():
    node = Bond("alpamayo_planner", heartbeat_period=0.1)
    node.start(0.0)
    said = node.die(0.5)
    assert node.broken and [s.active for s in said] == [False]
    assert node.die(0.6) == []  # already broken


def test_the_other_side_breaking_first_is_acknowledged_every_time_it_says_so():
    node = Bond("b", heartbeat_period=0.1, instance_id="node")
    node.start(0.0)
    node.receive(BondStatus("b", "mgr", True, 4.0, 0.1), 0.1)
    dead = BondStatus("b", "mgr", False, 4.0, 0.1)
    assert [s.active for s in node.receive(dead, 0.2)] == [False]
    assert node.broken and node.why_broken == "the other side broke it"
    assert [s.active for s in node.receive(dead, 0.25)] == [False]  # answered again


def test_own_statuses_other_bonds_and_a_third_instance_are_ignored():
    node = Bond("alpamayo_planner", heartbeat_period=0.1, instance_id="me")
    node.start(0.0)
    assert node.receive(BondStatus("alpamayo_planner", "me", True, 4.0, 0.1), 0.0) == []
    node.receive(BondStatus("other_node", "x", True, 4.0, 0.1), 0.1)
    assert node.state is BondState.WAITING  # not our bond
    node.receive(BondStatus("alpamayo_planner", "mgr", True, 4.0, 0.1), 0.2)
    assert node.formed
    node.receive(BondStatus("alpamayo_planner", "intruder", False, 4.0, 0.1), 0.3)
    assert node.formed and node.intruders == 1  # a second manager cannot break it


def test_a_stalled_caller_gets_one_heartbeat_not_a_burst():
    node = Bond("b", heartbeat_period=0.1)
    assert len(node.start(0.0)) == 1
    assert node.tick(0.05) == []
    assert len(node.tick(3.0)) == 1  # 3 s late: one heartbeat
    assert node.tick(3.01) == [] and len(node.tick(3.1)) == 1


def test_a_bond_is_not_started_twice_and_needs_positive_times():
    node = Bond("b", heartbeat_period=0.1)
    assert node.tick(1.0) == [] and node.die(1.0) == []  # not started: nothing
    node.start(0.0)
    with pytest.raises(RuntimeError, match="started twice"):
        node.start(1.0)
    with pytest.raises(ValueError, match=r"heartbeat_period must be > 0 s, got 0\.0"):
        Bond("b", heartbeat_period=0.0)


def test_a_bond_is_lost_only_when_broken_by_the_other_side_after_it_was_heard():
    from alpamayo_ros.core.diagnostics import OK, WARN, bond_item

    node, manager, wire = pair()
    wire.deliver(node.start(0.0) + manager.start(0.0), 0.0)
    wire.run(0.0, 0.5)
    assert (bond_item("ns/alpamayo_planner", node).level, node.lost) == (OK, False)
    wire.cut_a = True
    wire.run(0.5, 3.0)
    wire.deliver(manager.die(3.0), 3.0)  # the manager lets the (silent) node go
    assert node.lost and not manager.lost  # the node heard the manager break it
    item = bond_item("ns/alpamayo_planner", node)
    assert (item.name, item.level) == ("ns/alpamayo_planner: bond", WARN)
    assert item.message == "bond with the lifecycle manager broken: the other side broke it"
    alone = Bond("alpamayo_planner", heartbeat_period=0.1)
    alone.start(0.0)
    alone.tick(10.0)  # nobody ever answered: no manager, nothing lost
    assert alone.broken and not alone.lost and bond_item("p", alone).level == OK
    assert bond_item("p", alone).message.startswith("no lifecycle manager holds a bond")
