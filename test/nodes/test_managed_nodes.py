"""The planner and controller as lifecycle (managed) nodes, driven through their
~/change_state services as a lifecycle manager drives them (skipped without ROS 2)."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy")

from fake_vehicle import SPEED, Drive, Graph, step  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from test_nodes import (  # noqa: E402
    REMAP_PLAN,
    SIM_START,
    STEPPED_CLOCK,
    controller_steps,
    planner_params,
    ros,  # noqa: F401  (the fixture: rclpy initialised for the test)
    ticks,
)

from alpamayo_ros.nodes.common import Lifecycle, managed_argument  # noqa: E402
from alpamayo_ros.nodes.controller_node import (  # noqa: E402
    FINALIZED,
    INACTIVE,
    ManagedControllerNode,
)
from alpamayo_ros.nodes.planner_node import NOT_CONFIGURED, ManagedPlannerNode  # noqa: E402


def transition(graph: Graph, drive: Drive, node: str, transition_id: int) -> bool:
    """Ask `node` for a transition through its ~/change_state service: its success."""
    client = drive.node.create_client(ChangeState, f"/{node}/change_state")
    try:
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        assert graph.wait_for(future.done, 10.0)
        return bool(future.result().success)
    finally:
        drive.node.destroy_client(client)


def test_the_lifecycle_flags_are_taken_from_before_the_ros_arguments():
    assert managed_argument(["node", "--managed", "--autostart", "--ros-args", "-p", "a:=1"]) == (
        ["node", "--ros-args", "-p", "a:=1"],
        Lifecycle(managed=True, autostart=True),
    )
    assert managed_argument(["node", "--ros-args", "-r", "x:=--managed"]) == (
        ["node", "--ros-args", "-r", "x:=--managed"],
        Lifecycle(),
    )
    with pytest.raises(ValueError, match="--autostart is for a managed node"):
        managed_argument(["node", "--autostart"])


@pytest.mark.usefixtures("ros")
def test_a_managed_planner_plans_only_while_active_and_lets_its_model_go(tiny_checkpoint):
    """Unconfigured: no model, no plans, diagnostics say so (not an error). Configure: the
    model loads, still no plans. Activate: plans. Deactivate: none. Cleanup: the model is let
    go, and configuring again loads it again."""
    drive = Drive(sim_start=SIM_START)
    params = [*planner_params(tiny_checkpoint), Parameter("use_sim_time", value=True)]
    planner = ManagedPlannerNode(parameter_overrides=params)
    name = "alpamayo_planner"

    def plans_during(start: float, count: int, expect: bool) -> int:
        before = len(drive.received["plan"])
        for t in ticks(start, count):
            came = step(graph, drive, planner, t, wait_plan=expect)
            assert came, f"no plan at {t}"
            if not expect:  # a tick's plan would come within this time
                graph.wait_for(lambda: len(drive.received["plan"]) > before, 0.3)
        return len(drive.received["plan"]) - before

    with Graph(drive.node, planner) as graph:
        assert planner.lifecycle_state() == "unconfigured"
        assert planner.planner.policy is None and planner.worker is None
        assert plans_during(SIM_START, 5, expect=False) == 0
        assert graph.wait_for(lambda: any(
            st.name.endswith("lifecycle") and "unconfigured" in st.message
            for _, d in drive.received["diag"] for st in d.status), 5.0)  # fmt: skip
        assert planner.monitor.detail == NOT_CONFIGURED

        assert transition(graph, drive, name, Transition.TRANSITION_CONFIGURE)
        assert graph.wait_for(lambda: planner.worker is not None, 120.0), "model did not load"
        assert planner.lifecycle_state() == "inactive" and planner.monitor.model_ready
        assert plans_during(SIM_START + 0.5, 5, expect=False) == 0

        assert transition(graph, drive, name, Transition.TRANSITION_ACTIVATE)
        assert plans_during(SIM_START + 1.0, 20, expect=True) == 20
        assert not drive.received["plan"][-1][1].is_fallback  # history full: model plans

        assert transition(graph, drive, name, Transition.TRANSITION_DEACTIVATE)
        assert plans_during(SIM_START + 3.0, 5, expect=False) == 0
        assert transition(graph, drive, name, Transition.TRANSITION_CLEANUP)
        assert planner.lifecycle_state() == "unconfigured"
        assert planner.worker is None and planner.planner.policy is None
        assert not planner.monitor.model_ready
        # a transition the state does not have: refused, the node goes on (rclpy raised it
        # out of the executor)
        assert not transition(graph, drive, name, Transition.TRANSITION_ACTIVATE)

        assert transition(graph, drive, name, Transition.TRANSITION_CONFIGURE)
        assert graph.wait_for(lambda: planner.worker is not None, 120.0), "model did not reload"
        assert transition(graph, drive, name, Transition.TRANSITION_ACTIVATE)
        assert plans_during(SIM_START + 3.5, 3, expect=True) == 3
        assert transition(graph, drive, name, Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert planner.lifecycle_state() == "finalized" and planner.worker is None
        assert plans_during(SIM_START + 3.8, 3, expect=False) == 0


@pytest.mark.usefixtures("ros")
def test_a_managed_controller_engages_only_while_active():
    """Inactive: ~/engage true refused, the car brought to a stop with the reason. Activated
    (engage_on_start): it tracks the plans. Deactivated, or shut down while active: a
    controlled stop, and engaging is refused again."""
    from std_srvs.srv import SetBool

    drive = Drive(sim_start=SIM_START)
    controller = ManagedControllerNode(
        cli_args=REMAP_PLAN,
        parameter_overrides=[
            Parameter("use_sim_time", value=True),
            Parameter("engage_on_start", value=True),
            STEPPED_CLOCK,
        ],
    )
    commands: list = []
    send = controller._send
    controller._send = lambda c: (commands.append(c), send(c))
    graph = Graph(drive.node, controller)
    name = "alpamayo_controller"

    run = controller_steps(graph, drive, controller, commands)

    def engage() -> tuple[bool, str]:
        client = drive.node.create_client(SetBool, f"/{name}/engage")
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(SetBool.Request(data=True))
        assert graph.wait_for(future.done, 5.0)
        drive.node.destroy_client(client)
        return future.result().success, future.result().message

    try:
        held = run(0, 20)
        assert all(c.mode != "tracking" and c.reason == INACTIVE for c in held)
        ok, message = engage()
        assert not ok and message.startswith(f"refused: {INACTIVE}")
        assert transition(graph, drive, name, Transition.TRANSITION_CONFIGURE)
        assert run(20, 5)[-1].reason == INACTIVE  # configured is not active
        assert transition(graph, drive, name, Transition.TRANSITION_ACTIVATE)
        assert controller.engagement.engaged  # engage_on_start
        tracking = run(25, 20)[5:]
        assert all(c.mode == "tracking" for c in tracking)
        assert tracking[-1].speed == pytest.approx(SPEED, abs=0.3)
        assert transition(graph, drive, name, Transition.TRANSITION_DEACTIVATE)
        stopping = run(45, 20)
        assert all(c.mode == "stopping" and c.reason == INACTIVE for c in stopping)
        assert stopping[-1].speed < SPEED - 1.0
        assert not engage()[0]
        # shut down while active (no deactivation first): the same controlled stop
        assert transition(graph, drive, name, Transition.TRANSITION_ACTIVATE)
        assert all(c.mode == "tracking" for c in run(65, 20)[10:])
        assert transition(graph, drive, name, Transition.TRANSITION_ACTIVE_SHUTDOWN)
        stopping = run(85, 10)
        assert all(c.mode == "stopping" and c.reason == FINALIZED for c in stopping)
        assert not engage()[0]
    finally:
        graph.close()
        controller.destroy_node()
        drive.node.destroy_node()


@pytest.mark.usefixtures("ros")
def test_cleanup_while_the_model_loads_drops_that_load(tiny_checkpoint, monkeypatch):
    """Cleaned up while its model is still loading: that model is dropped when it ends (never
    planned with), and configure is refused until then (two loads at once may not fit a
    GPU); then it loads again."""
    import threading

    from alpamayo_ros.model.policy import AlpamayoPolicy

    release, loads = threading.Event(), []
    original = AlpamayoPolicy.from_pretrained.__func__

    def held(cls, *args, **kwargs):
        loads.append(len(loads))
        if len(loads) == 1:
            release.wait(60.0)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AlpamayoPolicy, "from_pretrained", classmethod(held))
    drive = Drive(sim_start=SIM_START)
    params = [*planner_params(tiny_checkpoint), Parameter("use_sim_time", value=True)]
    planner = ManagedPlannerNode(parameter_overrides=params)
    name = "alpamayo_planner"
    with Graph(drive.node, planner) as graph:
        assert transition(graph, drive, name, Transition.TRANSITION_CONFIGURE)
        assert graph.wait_for(lambda: loads == [0], 10.0)
        assert transition(graph, drive, name, Transition.TRANSITION_CLEANUP)
        assert not transition(graph, drive, name, Transition.TRANSITION_CONFIGURE)
        release.set()
        assert graph.wait_for(lambda: not planner._loader.is_alive(), 60.0)
        assert planner.planner.policy is None and planner.worker is None  # dropped
        assert planner.monitor.detail == NOT_CONFIGURED
        assert transition(graph, drive, name, Transition.TRANSITION_CONFIGURE)
        assert graph.wait_for(lambda: planner.worker is not None, 120.0), "model did not load"
        assert loads == [0, 1]


@pytest.mark.usefixtures("ros")
def test_an_active_managed_node_holds_a_bond_with_the_lifecycle_manager():
    """As nav2's servers do: from activation a bond on `bond` (id: the node's name) that
    bond_core's own implementation (bondpy, the lifecycle manager's side here) sees formed,
    on wall time with the node's simulated clock standing still (diagnostics: OK, formed).
    The manager breaking it: the node's diagnostics WARN. Activated again, a new bond;
    deactivated, the node breaks it and the manager's side sees it broken at once, not after
    its 4 s heartbeat timeout. With bond_heartbeat_period 0 the node holds none."""
    bondpy = pytest.importorskip("bondpy.bondpy", reason="bondpy (ros-$ROS_DISTRO-bondpy)")
    import time

    from rclpy.duration import Duration

    from alpamayo_ros.core.diagnostics import OK, WARN
    from alpamayo_ros.nodes.common import bond_items

    drive = Drive(sim_start=SIM_START)
    params = [Parameter("use_sim_time", value=True), STEPPED_CLOCK]
    controller = ManagedControllerNode(cli_args=REMAP_PLAN, parameter_overrides=params)
    manager = rclpy.create_node("bond_test_manager")
    name = "alpamayo_controller"

    def manager_bond():
        bond = bondpy.Bond(manager, "bond", name)
        bond.heartbeat_period = 0.1
        bond.heartbeat_timeout = 4.0
        bond.start()
        return bond

    def item():
        (only,) = bond_items(controller, name)
        return only

    with Graph(drive.node, controller, manager) as graph:
        assert transition(graph, drive, name, Transition.TRANSITION_CONFIGURE)
        assert controller.count_publishers("/bond") == 0 and bond_items(controller, name) == []
        assert transition(graph, drive, name, Transition.TRANSITION_ACTIVATE)
        # bondpy's shutdown() destroys its subscription behind the node's back, which stops
        # the executor that spins the node: both bonds are shut down at the end only
        first = second = None
        try:
            first = manager_bond()
            assert first.wait_until_formed(timeout=Duration(seconds=5.0))
            time.sleep(1.0)  # beats go on without the simulated clock moving
            assert not first.is_broken()
            assert (item().level, item().message) == (OK, "bond with the lifecycle manager formed")
            first.break_bond()  # the manager lets the node go
            assert graph.wait_for(lambda: item().level == WARN, 2.0)
            assert item().message == (
                "bond with the lifecycle manager broken: the other side broke it"
            )
            assert transition(graph, drive, name, Transition.TRANSITION_DEACTIVATE)
            assert transition(graph, drive, name, Transition.TRANSITION_ACTIVATE)
            second = manager_bond()
            assert second.wait_until_formed(timeout=Duration(seconds=5.0))
            asked = time.monotonic()
            assert transition(graph, drive, name, Transition.TRANSITION_DEACTIVATE)
            assert second.wait_until_broken(timeout=Duration(seconds=3.0))
            assert time.monotonic() - asked < 3.0
            assert bond_items(controller, name) == []
            ended = controller._ended_bond  # answered: its endpoints go by themselves
            assert graph.wait_for(lambda: ended.removed, 2.0)
            assert ended.bond.why_broken == "broken by this side, the other side answered"
        finally:
            for bond in (first, second):
                if bond is not None:
                    bond.shutdown()

    quiet = ManagedControllerNode(
        cli_args=REMAP_PLAN,
        parameter_overrides=[*params, Parameter("bond_heartbeat_period", value=0.0)],
    )
    try:
        assert quiet.autostart()  # configure, activate
        assert quiet._bond is None and quiet.count_publishers("/bond") == 0
    finally:
        quiet.destroy_node()
