"""The planner and controller nodes in a real rclpy graph (skipped without ROS 2).

Each test starts the node(s) in-process on the planner's executor beside a test node that
publishes synthetic cameras (JPEG CompressedImage, the released camera names) and odometry
of a car driving straight at 5 m/s, and listens to what the nodes publish.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from fake_vehicle import SPEED, Drive, Graph, step  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from alpamayo_ros.core.frame_buffer import RELEASED_CAMERAS  # noqa: E402
from alpamayo_ros.messages.inputs import stamp_seconds  # noqa: E402
from alpamayo_ros.model.tiny import make_tiny_checkpoint  # noqa: E402
from alpamayo_ros.msg import DrivingPlan, PlannerStatus  # noqa: E402
from alpamayo_ros.nodes.controller_node import ControllerNode  # noqa: E402
from alpamayo_ros.nodes.parameters import ParameterError  # noqa: E402
from alpamayo_ros.nodes.planner_node import PlannerNode  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / "config"
REMAP_PLAN = ["--ros-args", "-r", "plan:=/alpamayo_planner/plan"]  # as drive.launch.py does
ENGAGED = Parameter("engage_on_start", value=True)  # the controller follows plans at once
# The tests step /clock and wait for each step's work in wall time: on a loaded machine a
# plan can take longer than the controller's default clock_timeout (0.5 s of wall time
# without /clock advancing), whose stop would then replace the tracking a test expects (a
# failure in 1 of ~10 runs of the node set). The watchdog has its own test, at 0.5 s.
STEPPED_CLOCK = Parameter("clock_timeout", value=10.0)


def rosout_qos():
    """/rosout as rcl publishes it (reliable, transient local, the last 1000 kept): a line
    logged before the test's subscription matched the node's publisher still arrives (a
    volatile subscription lost such a line now and then)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def planner_params(checkpoint: Path, **extra) -> list[Parameter]:
    values = {
        "model": str(checkpoint), "device": "cpu", "dtype": "float32", "num_samples": 2,
        "max_reasoning_tokens": 4, "num_flow_steps": 2, "seed": 0, "diagnostics_period": 0.5,
        "camera_config": str(CONFIG / "cameras.yaml"), **extra,
    }  # fmt: skip
    return [Parameter(k, value=v) for k, v in values.items()]


# -- simulated time: counts per simulated second, whatever the machine's load --------------
SIM_START = 100.0


def sim_planner(checkpoint: Path, **extra) -> PlannerNode:
    params = [*planner_params(checkpoint, **extra), Parameter("use_sim_time", value=True)]
    return PlannerNode(parameter_overrides=params)


def ticks(start: float, count: int) -> list[float]:
    return [round(start + 0.1 * k, 6) for k in range(count)]


def node_time(node) -> float:
    """The node's clock (seconds): with use_sim_time, the last /clock it received."""
    return node.get_clock().now().nanoseconds * 1e-9


def wait_for_model(graph: Graph, planner: PlannerNode) -> None:
    assert graph.wait_for(lambda: planner.worker is not None, 120.0), "model did not load"


def test_planner_publishes_plans_then_stops_when_cameras_stop(ros, tiny_checkpoint):
    """On simulated time: model plans once the inputs are complete; the cameras stop, and
    within max_input_age (0.3 s) plus a tick the stop plans say why."""
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 22):
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        plan = drive.received["plan"][-1][1]
        assert not plan.is_fallback, plan.fallback_reason
        assert len(plan.points) == 64 and plan.header.frame_id == "base_link"
        assert list(plan.camera_names) == list(RELEASED_CAMERAS) and len(plan.camera_stamps) == 16
        assert plan.num_samples == 2 and plan.total_ms > 0
        for key in ("path", "reasoning", "markers"):
            assert drive.received[key], f"nothing on {key}"
        assert len(drive.received["path"][-1][1].poses) == 64
        assert graph.wait_for(lambda: bool(drive.received["status"] and drive.received["diag"]), 5)
        assert any(s.state == PlannerStatus.PLANNING for _, s in drive.received["status"])

        drive.cameras_on = False  # odometry goes on
        stopped = SIM_START + 2.2
        for t in ticks(stopped, 5):
            assert step(graph, drive, planner, t)
        stale = [(at, m) for at, m in drive.received["plan"]
                 if at >= stopped and m.fallback_reason.startswith("stale input")]  # fmt: skip
        assert stale and stale[0][0] <= stopped + 0.3 + 0.1 + 1e-6
        stop = stale[0][1]
        assert "camera_" in stop.fallback_reason
        speeds = [p.speed for p in stop.points]
        assert speeds[0] < SPEED + 0.5 and speeds[-1] == pytest.approx(0.0, abs=1e-6)
        assert graph.wait_for(
            lambda: any(s.state == PlannerStatus.FALLBACK for _, s in drive.received["status"]), 5
        )


def test_planner_takes_ego_motion_from_tf(ros, tiny_checkpoint):
    drive = Drive()
    params = planner_params(tiny_checkpoint, ego_source="tf", odom_topic="/not_published")
    planner = PlannerNode(parameter_overrides=params)
    with Graph(drive.node, planner) as graph:
        assert graph.wait_for(
            lambda: any(not m.is_fallback for _, m in drive.received["plan"]), 30.0
        ), {m.fallback_reason for _, m in drive.received["plan"]}


def test_bad_images_are_counted_not_fatal(ros, tiny_checkpoint):
    drive = Drive()
    planner = PlannerNode(parameter_overrides=planner_params(tiny_checkpoint))
    with Graph(drive.node, planner) as graph:
        assert graph.wait_for(lambda: len(drive.received["plan"]) >= 3, 20.0)
        drive.bad_image_next = True
        assert graph.wait_for(
            lambda: any(s.bad_messages >= 4 for _, s in drive.received["status"]), 5.0
        )
        n = len(drive.received["plan"])
        assert graph.wait_for(lambda: len(drive.received["plan"]) > n + 5, 5.0)  # still planning


def test_raw_camera_images_are_read_as_the_replay_reads_them(ros, tmp_path):
    """sensor_msgs/Image cameras: bgr8 rows padded by 2 bytes (not a whole pixel: cv_bridge,
    which the node used before, sheared such an image), a Bayer pattern and a big-endian
    16-bit grey reach the planner's frame buffer as messages.images reads them offline."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from alpamayo_ros.bag.messages import MessageFactory
    from alpamayo_ros.messages.images import decode_image

    h, w = 64, 100
    rng = np.random.default_rng(5)
    bgr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    bayer = rng.integers(0, 256, size=(h, w, 1), dtype=np.uint8)
    grey = rng.integers(0, 65536, size=(h, w, 1)).astype(">u2")
    pictures = {"bgr8": (bgr, 2, 0), "bayer_grbg8": (bayer, 0, 0), "mono16": (grey, 4, 1),
                "rgb8": (bgr[..., ::-1], 0, 0)}  # fmt: skip
    cameras = [{"name": cam, "topic": f"/raw/{cam}", "encoding": "raw"} for cam in RELEASED_CAMERAS]
    rig = tmp_path / "raw_cameras.yaml"
    rig.write_text(yaml.safe_dump({"cameras": cameras}))
    overrides = [Parameter("model", value=""), Parameter("camera_config", value=str(rig))]
    planner = PlannerNode(parameter_overrides=overrides)
    test = rclpy.create_node("raw_cameras")
    f = MessageFactory()
    sent = {}
    for cam, (encoding, (pixels, pad, big)) in zip(RELEASED_CAMERAS, pictures.items(), strict=True):
        rows = pixels.reshape(h, -1).view(np.uint8).reshape(h, -1)
        rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
        msg = Image(height=h, width=w, encoding=encoding, step=rows.shape[1], is_bigendian=big,
                    data=rows.tobytes())  # fmt: skip
        msg.header.stamp.sec = 100
        offline = f.t["sensor_msgs/msg/Image"](
            header=f.header(100.0, cam), height=h, width=w, encoding=encoding,
            is_bigendian=big, step=rows.shape[1], data=rows.reshape(-1),
        )  # fmt: skip
        sent[cam] = (test.create_publisher(Image, f"/raw/{cam}", qos_profile_sensor_data), msg,
                     decode_image(offline, "raw", f"/raw/{cam}"))  # fmt: skip
    np.testing.assert_array_equal(sent[RELEASED_CAMERAS[0]][2], bgr[..., ::-1])
    rings = planner.planner.frames._rings
    with Graph(test, planner) as graph:

        def delivered() -> bool:
            for publisher, msg, _ in sent.values():
                publisher.publish(msg)
            return all(ring.images for ring in rings.values())

        assert graph.wait_for(delivered, 10.0), planner.monitor.bad_messages
    assert planner.monitor.bad_messages == {}
    for cam, (_, _, expected) in sent.items():
        np.testing.assert_array_equal(rings[cam].images[-1], expected, cam)


def test_inputs_published_with_another_type_are_named_once(ros):
    """A driver publishing sensor_msgs/Image where the camera config says compressed, a
    localisation publishing PoseStamped on odom_topic, route poses on navigation_topic: the
    middleware never delivers them (the inputs just went stale); each node names what it
    reads, with what would read it, once."""
    from geometry_msgs.msg import PoseStamped
    from rcl_interfaces.msg import Log
    from sensor_msgs.msg import Image

    # The driver in its own context (its own DDS participant), as in its own process: Fast
    # DDS refuses one topic with two types inside one participant (test_a_topic_the_...).
    elsewhere = rclpy.Context()
    rclpy.init(context=elsewhere)
    driver = rclpy.create_node("wrong_type_driver", context=elsewhere)
    topic = "/camera/camera_front_wide_120fov/image_raw/compressed"  # the rig: compressed
    driver.create_publisher(Image, topic, 10)
    driver.create_publisher(PoseStamped, "/odom", 10)
    driver.create_publisher(PoseStamped, "/route", 10)  # route text is std_msgs/String
    test = rclpy.create_node("rosout_listener")
    logs: list[tuple[str, str]] = []
    test.create_subscription(Log, "/rosout", lambda m: logs.append((m.name, m.msg)), rosout_qos())
    fast = Parameter("diagnostics_period", value=0.2)
    route = Parameter("navigation_topic", value="/route")
    planner = PlannerNode(parameter_overrides=[Parameter("model", value=""), fast, route])
    controller = ControllerNode(cli_args=REMAP_PLAN, parameter_overrides=[fast])
    said = lambda: sorted(entry for entry in logs if " holds " in entry[1])  # noqa: E731
    try:
        with Graph(test, planner, controller) as graph:
            assert graph.wait_for(lambda: len(said()) == 4, 10.0), logs[-5:]
            time.sleep(1.0)  # five more diagnostics periods: still said once each
    finally:
        driver.destroy_node()
        rclpy.try_shutdown(context=elsewhere)
    odometry = (
        "odom_topic /odom holds geometry_msgs/msg/PoseStamped in the ROS graph; the node "
        "reads nav_msgs/msg/Odometry there (or set ego_source: tf)"
    )
    assert said() == [
        ("alpamayo_controller", odometry),
        ("alpamayo_planner", f"camera camera_front_wide_120fov: {topic} holds "
         "sensor_msgs/msg/Image in the ROS graph, but the camera config says encoding "
         "compressed (sensor_msgs/msg/CompressedImage); write encoding: raw"),
        ("alpamayo_planner", "navigation_topic /route holds geometry_msgs/msg/PoseStamped in "
         "the ROS graph; the node reads std_msgs/msg/String there"),
        ("alpamayo_planner", odometry),
    ]  # fmt: skip


def test_a_topic_the_middleware_refuses_fails_at_start_up_naming_it(ros):
    """Fast DDS (Jazzy's default middleware) refuses a topic that another node of the same
    process (one DDS participant) holds with another type, and rcl then says only "invalid
    allocator": the planner's start-up fails naming the topic (exit 1 from the executable,
    "bad configuration: ..."), not with a traceback. Cyclone DDS accepts it."""
    from rclpy.utilities import get_rmw_implementation_identifier
    from sensor_msgs.msg import Image

    if get_rmw_implementation_identifier() != "rmw_fastrtps_cpp":
        pytest.skip("only Fast DDS refuses one topic with two types in one process")
    topic = "/camera/camera_front_wide_120fov/image_raw/compressed"  # the rig: compressed
    driver = rclpy.create_node("same_process_driver")
    driver.create_publisher(Image, topic, 10)
    try:
        with pytest.raises(ParameterError, match=f"{topic}: the middleware refused it"):
            PlannerNode(parameter_overrides=[Parameter("model", value="")])
    finally:
        driver.destroy_node()


@pytest.mark.parametrize("image_decode", ["arrival", "model"])
def test_an_image_too_small_to_be_a_frame_is_counted_not_planned_on(
    ros, tiny_checkpoint, image_decode
):
    """A 1x1 JPEG (decodable, no camera's frame) from every camera once: counted as a bad
    image per camera and skipped, whether decoded on arrival or kept for the model; the
    plans go on from the cameras' real frames."""
    import cv2

    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint, image_decode=image_decode)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 22):
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        _, tiny = cv2.imencode(".jpg", np.full((1, 1, 3), 100, np.uint8))
        drive.bad_image_data, drive.bad_image_next = tiny.tobytes(), True
        for t in ticks(SIM_START + 2.2, 7):
            assert step(graph, drive, planner, t)
        assert planner.monitor.bad_messages.get("image", 0) == 4, planner.monitor.bad_messages
        last = drive.received["plan"][-1][1]
        assert not last.is_fallback, last.fallback_reason


def test_jpeg_images_left_to_the_model_plan_and_a_broken_header_is_counted(ros, tiny_checkpoint):
    """image_decode model: the callback keeps each JPEG as bytes (header checked), the model
    decodes them (OpenCV here, no GPU); a JPEG cut inside its header is counted and skipped."""
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint, image_decode="model")
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 22):
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        plan = drive.received["plan"][-1][1]
        assert not plan.is_fallback, plan.fallback_reason
        decoder = planner.planner.policy.processor.decoder
        assert decoder.on_cpu >= 16 and decoder.on_device == 0
        drive.bad_image_data, drive.bad_image_next = bytes(drive.jpeg[:40]), True
        for t in ticks(SIM_START + 2.2, 7):  # the set lacks that slot until t0 - 0.3 s passes it
            assert step(graph, drive, planner, t)
        assert planner.monitor.bad_messages.get("image", 0) == 4, planner.monitor.bad_messages
        assert not drive.received["plan"][-1][1].is_fallback  # planning again


def test_planner_without_a_model_publishes_stop_plans(ros):
    drive = Drive()
    planner = PlannerNode(parameter_overrides=[Parameter("model", value="")])
    with Graph(drive.node, planner) as graph:
        # Once the inputs are complete, the stop plans say there is no model.
        assert graph.wait_for(
            lambda: any(m.fallback_reason == "no model configured"
                        for _, m in drive.received["plan"]), 10.0,
        )  # fmt: skip
        assert all(m.is_fallback for _, m in drive.received["plan"])


def test_bad_configuration_fails_at_start_up(ros):
    with pytest.raises(ParameterError, match="rate_hz"):
        PlannerNode(parameter_overrides=[Parameter("rate_hz", value=500.0)])
    with pytest.raises(ParameterError, match="dtype = 'int8'"):
        PlannerNode(parameter_overrides=[Parameter("dtype", value="int8")])
    with pytest.raises(ParameterError, match=r"needs a decimal point: 10.0, not 10"):
        PlannerNode(parameter_overrides=[Parameter("rate_hz", value=10)])


def test_a_parameter_the_node_lacks_fails_at_start_up_naming_the_closest(ros):
    # rclpy keeps an unknown override unused: a misspelt name would leave its default
    with pytest.raises(ParameterError, match=r"'rate_hzz' \(did you mean 'rate_hz'\?\)"):
        PlannerNode(parameter_overrides=[Parameter("model", value=""),
                                         Parameter("rate_hzz", value=5.0)])  # fmt: skip
    with pytest.raises(ParameterError, match=r"alpamayo_controller has no parameter 'wheelbas'"):
        ControllerNode(parameter_overrides=[Parameter("wheelbas", value=3.0)])
    qos = "qos_overrides./plan.publisher.depth"  # the planner's plan topic is ~/plan
    with pytest.raises(ParameterError, match=r"/alpamayo_planner/plan \(publisher\)"):
        PlannerNode(parameter_overrides=[Parameter("model", value=""), Parameter(qos, value=1)])


def test_ctrl_c_while_the_node_is_made_exits_0(capfd):
    """Ctrl-C after rclpy.init but before the node exists: rclpy's signal handler shuts the
    context down and creating the node raises (rcl's RCLError "the given context is not
    valid" in the race, rclpy's NotInitializedException here).
    That was a traceback and exit 1 (test_ctrl_c_at_any_moment_exits_0[importing] failed so
    when its 0.3 s fell there); it is a clean exit 0."""
    from rclpy.node import Node

    from alpamayo_ros.nodes.common import run

    def make_node() -> Node:
        rclpy.shutdown()  # what the SIGINT handler does
        return Node("made_after_ctrl_c")

    assert run(make_node, "made_after_ctrl_c", (ParameterError,), ["x"]) == 0
    assert "Traceback" not in capfd.readouterr().err

    def broken() -> Node:
        raise RuntimeError("a bug, not Ctrl-C")

    with pytest.raises(RuntimeError, match="a bug"):
        run(broken, "broken", (ParameterError,), ["x"])
    rclpy.try_shutdown()


def test_ctrl_c_that_shuts_rclpy_down_under_its_try_shutdown_exits_0(capfd, monkeypatch):
    """rclpy's Ctrl-C handler can shut the context down between try_shutdown's check and its
    call, which then raises RCLError "rcl_shutdown already called": that was exit 1 with a
    traceback (test_ctrl_c_at_any_moment_exits_0[importing], 1 run in ~10 on a loaded
    machine). Emulated here: the interrupt comes while the node is made, and try_shutdown
    meets a context shut down under it."""
    from rclpy.node import Node

    from alpamayo_ros.nodes.common import run

    def racing_try_shutdown() -> None:
        if rclpy.ok():
            rclpy.shutdown()  # the handler, first
        raise RuntimeError("failed to shutdown: rcl_shutdown already called on the given context")

    def make_node() -> Node:
        raise KeyboardInterrupt  # Ctrl-C while the node module is imported

    monkeypatch.setattr(rclpy, "try_shutdown", racing_try_shutdown)
    assert run(make_node, "interrupted", (ParameterError,), ["x"]) == 0  # run() inits rclpy
    assert "Traceback" not in capfd.readouterr().err
    monkeypatch.undo()
    rclpy.try_shutdown()


def test_a_params_file_that_does_not_parse_exits_1_with_one_line(tmp_path, capfd):
    from alpamayo_ros.nodes.planner_node import main

    bad = tmp_path / "planner.yaml"
    bad.write_text("alpamayo_planner:\n  ros__parameters:\n    rate_hz: [1, 'a']\n")
    for path, says in [(bad, "line_num 3"), (tmp_path / "missing.yaml", "Error opening YAML")]:
        assert main(["--ros-args", "--params-file", str(path)]) == 1
        err = capfd.readouterr().err
        assert "Traceback" not in err and ".c:" not in err
        assert f"bad arguments: Couldn't parse params file: '--params-file {path}'" in err
        assert says in err
    from alpamayo_ros.nodes.wait_ready import main as wait_ready

    assert wait_ready(["wait", "--ros-args", "--params-file", str(bad)]) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err and "bad arguments: Couldn't parse params file" in err


def test_a_params_file_that_does_not_reach_the_namespaced_node_stops_it(tmp_path):
    """rclpy gives a file keyed `alpamayo_planner:` to /alpamayo_planner only: in a namespace
    the node ran on its defaults without a word. It now stops naming the file and the keys
    that reach it; the same rule (parameter_file.reaches) is checked against rclpy's."""
    from rclpy.node import Node

    from alpamayo_ros.nodes.parameter_file import reaches

    sys.path.insert(0, str(Path(__file__).parent))
    from test_parameter_file import REACHES

    for i, (key, fqn, _) in enumerate(REACHES):
        path = tmp_path / f"reach{i}.yaml"
        path.write_text(yaml.safe_dump({key: {"ros__parameters": {"rate_hz": 5.0}}}))
        namespace, _, name = fqn.rpartition("/")
        context = rclpy.Context()
        rclpy.init(context=context, args=["x", "--ros-args", "--params-file", str(path)])
        try:
            node = Node(name, namespace=namespace or "/", context=context)
            assert node.get_fully_qualified_name() == fqn
            given = "rate_hz" in node._parameter_overrides  # what rclpy gave the node
            node.destroy_node()
        finally:
            rclpy.shutdown(context=context)
        assert reaches(key, fqn) is given, (key, fqn)

    # each node as ros2 run starts it: a process that would spin on (defaults) if not refused
    for node, values in [
        ("alpamayo_planner", {"model": "", "rate_hz": 5.0}),
        ("alpamayo_controller", {"control_rate_hz": 20.0}),
    ]:
        bare = tmp_path / f"{node}.yaml"
        bare.write_text(yaml.safe_dump({node: {"ros__parameters": values}}))
        module = f"alpamayo_ros.nodes.{node.removeprefix('alpamayo_')}_node"
        code = f"import sys, {module} as m; sys.exit(m.main(sys.argv[1:]))"
        args = ["--ros-args", "-r", "__ns:=/vehicle1", "--params-file", str(bare)]
        proc = subprocess.run([sys.executable, "-c", code, *args], env=os.environ.copy(),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 1, proc.stderr[-1000:]
        assert "Traceback" not in proc.stderr
        assert (
            f"bad configuration: {bare}: its parameters for '{node}' do not reach /vehicle1/{node}"
        ) in proc.stderr
        assert f"key them '/**/{node}' (any namespace) or '/vehicle1/{node}'" in proc.stderr


def test_a_camera_topic_that_is_no_topic_name_fails_at_start_up_naming_the_camera(ros, tmp_path):
    rig = yaml.safe_load((CONFIG / "cameras.yaml").read_text())
    rig["cameras"][1]["topic"] = "/camera/front wide/image"
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(rig))
    name = rig["cameras"][1]["name"]
    with pytest.raises(
        ParameterError,
        match=rf"camera_config {path} \({name}\): "
        r"'/camera/front wide/image' is not a topic name \(Invalid topic name",
    ):
        PlannerNode(parameter_overrides=[Parameter("model", value=""),
                                         Parameter("camera_config", value=str(path))])  # fmt: skip
    with pytest.raises(ParameterError, match=r"parameter odom_topic: '/odom/1x' is not a topic"):
        ControllerNode(parameter_overrides=[Parameter("odom_topic", value="/odom/1x")])


PLAN_QOS = "qos_overrides./alpamayo_planner/plan.publisher."
FRONT = "/camera/camera_front_wide_120fov/image_raw/compressed"


def test_qos_overrides_set_the_qos_of_one_topic(ros):
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy, qos_profile_sensor_data

    drive = Drive()
    planner = PlannerNode(parameter_overrides=[
        Parameter("model", value=""),
        Parameter(PLAN_QOS + "durability", value="transient_local"),
        Parameter(PLAN_QOS + "depth", value=1),
        Parameter(f"qos_overrides.{FRONT}.subscription.reliability", value="reliable"),
    ])  # fmt: skip
    with Graph(drive.node, planner):
        # this node's own entities (the graph also holds earlier tests' nodes of its name)
        subs = {sub.topic_name: sub.qos_profile for sub in planner.subscriptions}
        plan, path = planner.pub_plan.qos_profile, planner.pub_path.qos_profile
        assert plan.durability == DurabilityPolicy.TRANSIENT_LOCAL and plan.depth == 1
        assert path.durability == DurabilityPolicy.VOLATILE  # not overridden
        assert subs[FRONT].reliability == ReliabilityPolicy.RELIABLE
        others = [q for t, q in subs.items() if t.startswith("/camera/") and t != FRONT]
        assert len(others) == 3
        assert all(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in others)
        # the shared sensor-data profile itself is untouched
        assert qos_profile_sensor_data.reliability == ReliabilityPolicy.BEST_EFFORT
        assert planner.get_parameter(PLAN_QOS + "durability").value == "transient_local"
        # and the middleware was given it (no other test latches the plan)
        infos = planner.get_publishers_info_by_topic("/alpamayo_planner/plan")
        assert any(i.node_name == "alpamayo_planner"
                   and i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                   for i in infos)  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "value", "message"),
    [
        ("reliability", "sometimes", r"reliability.*sometimes"),
        ("depth", 0, r"depth must be >= 1 with keep_last"),
        ("depth", "ten", r"depth"),
    ],
)
def test_a_bad_qos_override_fails_at_start_up_naming_it(ros, policy, value, message):
    with pytest.raises(ParameterError, match=r"qos_overrides\./alpamayo_planner/plan\.publisher"
                       + ".*" + message):  # fmt: skip
        PlannerNode(parameter_overrides=[Parameter("model", value=""),
                                         Parameter(PLAN_QOS + policy, value=value)])  # fmt: skip


def straight_plan_at(t0: float, speed: float) -> DrivingPlan:
    from alpamayo_ros.core.plan import Plan
    from alpamayo_ros.core.trajectory import integrate
    from alpamayo_ros.messages.plan import driving_plan_msg
    from alpamayo_ros.nodes.controller_node import types

    plan = Plan.from_rollout(integrate(np.zeros((64, 2)), speed), t0, speed)
    return driving_plan_msg(plan, types)


def straight_plan(node, speed: float) -> DrivingPlan:
    return straight_plan_at(node.get_clock().now().nanoseconds * 1e-9, speed)


def controller_steps(graph: Graph, drive: Drive, controller, commands: list):
    """run(start, steps): simulated 0.05 s steps k = start ... start + steps - 1 at
    SIM_START + 0.05 k, each with odometry and a straight plan of that time delivered to the
    controller before /clock moves; returns the commands of those steps (`commands`: what
    the controller sent, appended by the caller's hook on its _send)."""

    def run(start: int, steps: int) -> list:
        first = len(commands)
        for k in range(start, start + steps):
            t = round(SIM_START + 0.05 * k, 6)
            drive._publish_odometry(t)
            drive.pub_plan.publish(straight_plan_at(t, SPEED))
            graph.wait_for(lambda t=t: controller.tracker.poses.latest_stamp == t
                           and controller.tracker.plan.stamp == t, 5.0)  # fmt: skip
            n = len(commands)
            drive.set_clock(t)
            assert graph.wait_for(lambda n=n: len(commands) > n, 5.0), f"no command at {t}"
        return commands[first:]

    return run


def test_controller_follows_plans_and_stops_when_they_stop(ros):
    """On simulated time, 0.05 s per step, each step waited for: plans at 10 Hz are
    followed; when they stop, a controlled stop after plan_timeout (0.5 s) at 2 m/s^2."""
    drive = Drive(sim_start=SIM_START)
    controller = ControllerNode(
        cli_args=REMAP_PLAN,
        parameter_overrides=[Parameter("use_sim_time", value=True), ENGAGED, STEPPED_CLOCK,
                             Parameter("plan_timeout", value=0.5),
                             Parameter("stop_decel", value=2.0)],
    )  # fmt: skip
    commands: list = []
    send = controller._send
    controller._send = lambda c: (commands.append((drive.sim_now, c)), send(c))
    graph = Graph(drive.node, controller)

    def advance(t: float, plan: bool) -> None:
        drive._publish_odometry(t)
        if plan:
            drive.pub_plan.publish(straight_plan_at(t, SPEED))
        graph.wait_for(lambda: controller.tracker.poses.latest_stamp == t and (
            not plan or controller.tracker.plan.stamp == t), 5.0)  # fmt: skip
        n = len(commands)
        drive.set_clock(t)
        assert graph.wait_for(lambda: len(commands) > n, 5.0), f"no command at {t}"

    try:
        for k in range(40):  # 2 s with a plan every 0.1 s
            advance(round(SIM_START + 0.05 * k, 6), plan=k % 2 == 0)
        recent = [c for at, c in commands if at >= SIM_START + 1.0]
        assert all(c.mode == "tracking" for c in recent)
        assert all(c.speed == pytest.approx(SPEED, abs=0.3) for c in recent)
        assert all(abs(c.yaw_rate) < 0.05 for c in recent)
        last_plan = SIM_START + 1.9
        for k in range(40, 80):  # 2 s without plans
            advance(round(SIM_START + 0.05 * k, 6), plan=False)
        after = [(at - last_plan, c) for at, c in commands if at > last_plan]
        assert all(c.mode == "tracking" for dt, c in after if dt <= 0.5 - 1e-6)
        stopping = [c for dt, c in after if dt > 0.5 + 1e-6]
        assert stopping and all(c.mode == "stopping" for c in stopping)
        speeds = [c.speed for c in stopping]
        assert all(b <= a for a, b in itertools.pairwise(speeds))
        assert speeds[-1] < SPEED - 2.0  # 1.5 s of a 2 m/s^2 stop (after the jerk ramp)
        assert graph.wait_for(lambda: any("controller" in s.name and "stopping" in s.message
                                          for _, a in drive.received["diag"]
                                          for s in a.status), 5.0)  # fmt: skip
    finally:
        graph.close()
        controller.destroy_node()
        drive.node.destroy_node()


def test_the_controller_follows_plans_only_while_engaged(ros):
    """Not engaged (the default) it stops under fresh plans; ~/engage true: it tracks them;
    false: a controlled stop again. On simulated time, a plan every 0.05 s step."""
    from std_srvs.srv import SetBool

    from alpamayo_ros.control.engagement import NOT_ENGAGED

    drive = Drive(sim_start=SIM_START)
    controller = ControllerNode(
        cli_args=REMAP_PLAN,
        parameter_overrides=[Parameter("use_sim_time", value=True), STEPPED_CLOCK],
    )
    commands: list = []
    send = controller._send
    controller._send = lambda c: (commands.append(c), send(c))
    graph = Graph(drive.node, controller)
    client = drive.node.create_client(SetBool, "/alpamayo_controller/engage")

    run = controller_steps(graph, drive, controller, commands)

    def engage(data: bool) -> str:
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(SetBool.Request(data=data))
        assert graph.wait_for(future.done, 5.0)
        assert future.result().success
        return future.result().message

    try:
        held = run(0, 20)
        assert all(c.mode != "tracking" and c.reason == NOT_ENGAGED for c in held)
        assert held[-1].speed < SPEED - 1.0  # braking from the car's 5 m/s
        assert engage(True).startswith("engaged")
        tracking = run(20, 20)[5:]  # the setpoint climbs back first
        assert all(c.mode == "tracking" and c.reason == "" for c in tracking)
        assert tracking[-1].speed == pytest.approx(SPEED, abs=0.3)
        assert engage(True).startswith("already engaged")
        assert engage(False).startswith("disengaged")
        stopping = run(40, 20)
        assert all(c.mode == "stopping" and c.reason == NOT_ENGAGED for c in stopping)
        speeds = [c.speed for c in stopping]
        assert all(b <= a for a, b in itertools.pairwise(speeds)) and speeds[-1] < SPEED - 1.0
        assert controller.engagement.changes == 2
    finally:
        graph.close()
        controller.destroy_node()
        drive.node.destroy_node()


def test_odometry_of_another_frame_than_base_frame_is_said_once_by_each_node(ros):
    from rcl_interfaces.msg import Log

    drive = Drive()
    drive.odom_child = "imu_link"
    logs: list[tuple[str, str]] = []
    drive.node.create_subscription(
        Log, "/rosout", lambda m: logs.append((m.name, m.msg)), rosout_qos()
    )
    planner = PlannerNode(parameter_overrides=[Parameter("model", value="")])
    controller = ControllerNode()
    with Graph(drive.node, planner, controller) as graph:

        def notes() -> list[tuple[str, str]]:
            return [(n, m) for n, m in logs if "child_frame_id 'imu_link'" in m]

        assert graph.wait_for(lambda: len(notes()) == 2, 10.0), logs
        time.sleep(0.5)  # about 10 more odometry messages
        assert sorted(n for n, _ in notes()) == ["alpamayo_controller", "alpamayo_planner"]
        assert all("not base_frame 'base_link'" in m for _, m in notes())


def test_not_engaged_and_standing_with_disengaged_output_none_publishes_nothing(ros):
    drive = Drive()
    drive.speed = 0.0  # the car stands
    controller = ControllerNode(
        cli_args=REMAP_PLAN, parameter_overrides=[Parameter("disengaged_output", value="none")]
    )
    with Graph(drive.node, controller) as graph:
        assert graph.wait_for(lambda: controller.last_command is not None
                              and controller.last_command.mode == "stopped", 5.0)  # fmt: skip
        time.sleep(0.5)  # 25 control periods
        assert drive.received["cmd"] == []
        controller.engagement.request(True, 0.0)
        assert graph.wait_for(lambda: len(drive.received["cmd"]) > 5, 5.0)


def test_gains_and_limits_change_while_running_and_a_bad_change_changes_nothing(ros):
    controller = ControllerNode()
    try:
        result = controller.set_parameters([Parameter("max_speed", value=10.0),
                                            Parameter("lookahead_time", value=0.8)])  # fmt: skip
        assert all(r.successful for r in result)
        assert controller.tracker.settings.max_speed == 10.0
        assert controller.tracker.settings.lookahead_time == 0.8
        assert controller.limits.speed == (-0.5, 15.0)  # the plan check follows max_speed
        refused = controller.set_parameters_atomically([Parameter("stop_decel", value=8.0)])
        assert not refused.successful and "must not exceed max_decel" in refused.reason
        assert controller.tracker.settings.stop_decel == 2.0
        assert controller.get_parameter("stop_decel").value == 2.0
        (read_only,) = controller.set_parameters([Parameter("wheelbase", value=3.0)])
        assert not read_only.successful and "read-only" in read_only.reason
        assert controller.tracker.settings.wheelbase == 2.8
    finally:
        controller.destroy_node()


def test_the_planners_checks_change_while_running_its_model_settings_do_not(ros):
    planner = PlannerNode(parameter_overrides=[Parameter("model", value="")])
    try:
        result = planner.set_parameters([Parameter("max_input_age", value=0.5),
                                         Parameter("late_plan", value="drop")])  # fmt: skip
        assert all(r.successful for r in result)
        assert planner.planner.settings.max_input_age == 0.5
        assert planner.config.settings.late_plan == "drop"
        (bad,) = planner.set_parameters([Parameter("sample_choice", value="best")])
        assert not bad.successful and "sample_choice = 'best' is not one of" in bad.reason
        (fixed,) = planner.set_parameters([Parameter("num_samples", value=2)])
        assert not fixed.successful and "read-only" in fixed.reason
        assert planner.planner.settings.num_samples == 6
        assert planner.planner.settings.sample_choice == "consistent"
    finally:
        planner.destroy_node()


def test_controller_ignores_malformed_plans(ros):
    drive = Drive()
    controller = ControllerNode(cli_args=REMAP_PLAN)
    with Graph(drive.node, controller) as graph:
        bad = straight_plan(drive.node, SPEED)
        bad.points[10].speed = math.nan
        for _ in range(5):
            drive.pub_plan.publish(bad)
            time.sleep(0.05)
        assert graph.wait_for(lambda: controller.bad_plans == 5, 3.0)
        assert controller.tracker.plan is None
        assert all(m.linear.x <= SPEED for _, m in drive.received["cmd"])


def test_one_plan_per_simulated_tick_and_model_plans_once_the_history_is_full(ros, tiny_checkpoint):
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 40):  # 4 s of simulated time, in lock step with the model
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        by_tick = {}
        for at, msg in drive.received["plan"]:
            by_tick.setdefault(at, []).append(msg)
        assert all(len(v) == 1 for v in by_tick.values()), "more than one plan for a tick"
        # From 1.6 s on the ego history (1.5 s) and 4 frames per camera are there: every
        # tick gives a model plan made for the frames of that very tick.
        for t in ticks(SIM_START + 1.6, 24):
            (plan,) = by_tick[t]
            assert not plan.is_fallback, (t, plan.fallback_reason)
            assert stamp_seconds(plan.header.stamp) == pytest.approx(t)
        assert planner.monitor.dropped_cycles == 0 and planner.monitor.late_plans == 0


@pytest.mark.parametrize("mode", ["full", "two_lane"])
def test_a_bag_played_three_times_plans_on_each_pass_and_never_drives_on_negative_age(
    ros, tiny_checkpoint, mode
):
    """Each pass plans on its own inputs; in two_lane also with its own causal chains: a
    chain written on an earlier pass (stamped later than the new pass's inputs) is dropped."""
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint, planning_mode=mode)
    controller = ControllerNode(
        cli_args=REMAP_PLAN,
        parameter_overrides=[Parameter("use_sim_time", value=True), ENGAGED, STEPPED_CLOCK,
                             Parameter("plan_timeout", value=1.0)],
    )  # fmt: skip
    commands = []
    send = controller._send
    controller._send = lambda command: (commands.append(command), send(command))
    with Graph(drive.node, planner, controller) as graph:
        wait_for_model(graph, planner)
        for n in range(3):  # ros2 bag play --loop: the clock restarts at SIM_START
            drive.drive_start = SIM_START
            start = len(drive.received["plan"])
            times = ticks(SIM_START, 25)
            if n:  # rcl restarts a timer one period after a backward jump: no tick at SIM_START
                drive.set_clock(times.pop(0))
                assert graph.wait_for(lambda: abs(node_time(planner) - SIM_START) < 1e-6, 5.0)
            for t in times:
                assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
            this_pass = drive.received["plan"][start:]
            for at, msg in this_pass:  # t0 follows the clock: never from the previous pass
                t0 = stamp_seconds(msg.header.stamp)
                assert t0 <= at + 1e-6
                if msg.lane:  # the chain's input time: this pass's, at or before t0
                    chain = stamp_seconds(msg.chain_stamp)
                    assert SIM_START <= chain <= t0 + 1e-6, (t0, chain)
            if mode == "two_lane":
                assert any(m.lane == "trajectory" for _, m in this_pass)
            assert not this_pass[-1][1].is_fallback, this_pass[-1][1].fallback_reason
        assert planner.monitor.time_jumps == 2
        assert controller.tracker.time_jumps == 2
        assert not [c for c in commands if c.mode == "tracking" and c.plan_age < -0.05]
        assert commands[-1].mode == "tracking" and commands[-1].plan_age >= 0.0
        assert graph.wait_for(
            lambda: any(s.time_jumps == 2 for _, s in drive.received["status"]), 5.0
        )


def test_inputs_stamped_ahead_of_the_clock_give_plans_the_controller_follows(ros, tiny_checkpoint):
    """Cameras and odometry stamped 0.1 s ahead of /clock (within future_tolerance): each
    tick plans on the newest input set at or before the clock, so no plan is stamped ahead
    of it and the controller tracks them (it never follows a plan of negative age)."""
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint)
    controller = ControllerNode(
        cli_args=REMAP_PLAN,
        parameter_overrides=[Parameter("use_sim_time", value=True), ENGAGED, STEPPED_CLOCK],
    )
    commands = []
    send = controller._send
    controller._send = lambda command: (commands.append(command), send(command))
    with Graph(drive.node, planner, controller) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 25):
            assert step(graph, drive, planner, t, lead=0.1), f"no plan for the tick at {t}"
        plans = [(at, m) for at, m in drive.received["plan"] if not m.is_fallback]
        assert len(plans) >= 5
        for at, msg in plans:  # the inputs of the tick before: 0.1 s behind the newest
            assert stamp_seconds(msg.header.stamp) == pytest.approx(at)
        assert graph.wait_for(lambda: bool(commands) and commands[-1].mode == "tracking", 5.0)
        assert not [c for c in commands if c.mode == "tracking" and c.plan_age < -1e-6]
        assert graph.wait_for(lambda: any(  # the diagnostics say so, naming the input
            "stamped 0.10 s ahead of the clock" in s.message
            for _, a in drive.received["diag"] for s in a.status if s.name.endswith("inputs")
        ), 5.0)  # fmt: skip


def test_plans_that_finish_after_max_plan_age_become_stop_plans(ros, tiny_checkpoint):
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint, max_plan_age=0.3)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 20):  # history full, model planning
            assert step(graph, drive, planner, t)
        # Now simulated time runs 20x faster than the model: every plan finishes late.
        for t in ticks(SIM_START + 2.0, 60):
            step(graph, drive, planner, t, wait_plan=False)
            time.sleep(0.005)

        # (the inputs also fall behind: most ticks are "stale input" stops)
        def late_stops():
            fast = [m for at, m in drive.received["plan"] if at >= SIM_START + 2.0]
            return [m for m in fast if m.fallback_reason.startswith("late plan")]

        assert graph.wait_for(lambda: bool(late_stops()), 10.0)
        fast = [(at, m) for at, m in drive.received["plan"] if at >= SIM_START + 2.0]
        for at, msg in fast:  # a model plan is never older than max_plan_age when published
            if not msg.is_fallback:  # (received at most one 0.1 s clock step later)
                assert at - stamp_seconds(msg.header.stamp) <= 0.41
        assert graph.wait_for(
            lambda: any(s.late_plans >= 1 for _, s in drive.received["status"]), 5.0
        )


def test_a_stopped_clock_is_an_error_and_the_controller_stops_on_wall_time(ros, tiny_checkpoint):
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint)
    controller = ControllerNode(
        cli_args=REMAP_PLAN,
        parameter_overrides=[Parameter("use_sim_time", value=True), ENGAGED,
                             Parameter("plan_timeout", value=1.0),
                             Parameter("clock_timeout", value=0.5)],
    )  # fmt: skip
    commands = []
    send = controller._send
    controller._send = lambda command: (commands.append((time.monotonic(), command)),
                                        send(command))  # fmt: skip
    with Graph(drive.node, planner, controller) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 30):
            assert step(graph, drive, planner, t)
        # A plan that took over clock_timeout of wall time (a loaded machine) stalled the
        # clock meanwhile: the clock moved on a control period at a time until tracking.
        for k in range(1, 11):
            drive.set_clock(t + 0.02 * k)
            time.sleep(0.1)
            if commands[-1][1].mode == "tracking":
                break
        assert commands[-1][1].mode == "tracking" and commands[-1][1].speed > SPEED - 0.5
        stopped_at = time.monotonic()  # the bag ends: /clock and every input stop
        time.sleep(3.0)
        after = [c for w, c in commands if w > stopped_at]
        assert after and after[-1].mode in ("stopping", "stopped")
        assert "clock stalled" in after[-1].reason
        speeds = [c.speed for c in after]
        assert all(b <= a for a, b in itertools.pairwise(speeds)) and speeds[-1] < SPEED - 3.0
        planner_diag = [
            s for _, a in drive.received["diag"] for s in a.status if s.name.endswith(": model")
        ]
        assert planner_diag and planner_diag[-1].message.startswith("clock stalled")
        assert planner_diag[-1].level == bytes([2]) or planner_diag[-1].level == 2  # ERROR


def test_closing_abandons_the_running_plan_and_publishes_nothing_after(ros, tiny_checkpoint):
    drive = Drive()
    planner = PlannerNode(parameter_overrides=planner_params(tiny_checkpoint))
    with Graph(drive.node, planner) as graph:
        assert graph.wait_for(lambda: planner.worker is not None and planner.worker.busy, 60.0)
        start = time.monotonic()
        assert planner.close(timeout=2.0)
        assert time.monotonic() - start < 2.0
        count = len(drive.received["plan"])
        time.sleep(0.5)
        assert len(drive.received["plan"]) == count


SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"  # what `ros2 run` starts


def interrupt_until_it_exits(proc: subprocess.Popen, period: float = 0.02) -> None:
    """SIGINT every `period` s until `proc` has exited (30 s at most): a terminal's Ctrl-C
    and then its launch's, whenever that one comes."""
    end = time.monotonic() + 30.0
    while proc.poll() is None and time.monotonic() < end:
        proc.send_signal(signal.SIGINT)
        time.sleep(period)


@pytest.mark.parametrize(
    ("after", "repeated"),
    [(0.3, False), (3.0, False), (8.0, False), (8.0, True)],
    ids=["importing", "loading", "planning", "planning-ctrl-c-until-it-exits"],
)
def test_ctrl_c_at_any_moment_exits_0(ros, tiny_checkpoint, after, repeated):
    """Ctrl-C while the planner imports, loads its model or plans: exit 0, no traceback.
    A terminal's Ctrl-C reaches `ros2 launch` and its nodes at once, and the launch then
    sends each node its own SIGINT, which came (repeated: SIGINT every 20 ms until it
    exits) while the planner waited for its worker's inference to end, raising
    KeyboardInterrupt there (a traceback, exit -2), or while the interpreter ended, after
    Python had put SIGINT's default action back (killed by it: exit -2, no traceback).
    Either was "process has died" in the launch's log at the end of the soak runs."""
    drive = Drive()  # inputs on wall time, so the planner is inferring when Ctrl-C comes
    graph = Graph(drive.node)
    args = ["--ros-args", "-p", f"model:={tiny_checkpoint}", "-p", "device:=cpu",
            "-p", "dtype:=float32", "-p", f"camera_config:={CONFIG / 'cameras.yaml'}"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "alpamayo_planner"), *args],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        time.sleep(after)
        if repeated:
            interrupt_until_it_exits(proc)
        else:
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
        assert b"RCLError" not in out and b"terminate called" not in out
        assert b"Traceback" not in out, out.decode(errors="replace")[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        graph.close()
        drive.node.destroy_node()


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT], []],
    ids=["ctrl-c", "sigterm", "ctrl-c-then-the-launch's", "ctrl-c-until-it-exits"],
)
def test_a_controller_ended_while_driving_leaves_zero_speed_commanded(ros, signals):
    """The controller process (as `ros2 run` starts it) follows plans at 5 m/s on wall
    time; Ctrl-C or SIGTERM (the launch stopping it, systemd, docker stop), or a terminal's
    Ctrl-C followed by its launch's: exit 0, and the last cmd_vel is zero speed and zero yaw
    rate, not the last motion command."""
    drive = Drive()  # odometry at 5 m/s on wall time
    graph = Graph(drive.node)
    drive.node.create_timer(0.1, lambda: drive.pub_plan.publish(straight_plan(drive.node, SPEED)))
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "alpamayo_controller"), *REMAP_PLAN,
         "-p", "engage_on_start:=true"],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    commands = drive.received["cmd"]
    try:
        assert graph.wait_for(lambda: any(m.linear.x > SPEED - 1.0 for _, m in commands), 60.0)
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.002)
        if not signals:
            interrupt_until_it_exits(proc)
        out, _ = proc.communicate(timeout=30)
        text = out.decode(errors="replace")
        assert proc.returncode == 0, text[-2000:]
        time.sleep(0.3)
        last = commands[-1][1]
        assert (last.linear.x, last.angular.z) == (0.0, 0.0), text[-1000:]
        assert "controller exiting: zero speed commanded from" in text
    finally:
        if proc.poll() is None:
            proc.kill()
        graph.close()
        drive.node.destroy_node()


@pytest.mark.parametrize("good_model", [True, False])
def test_wait_ready_exits_when_the_model_is_loaded_or_failed(ros, tiny_checkpoint, good_model):
    model = tiny_checkpoint if good_model else tiny_checkpoint.parent / "missing"
    planner = PlannerNode(parameter_overrides=planner_params(model))
    with Graph(planner):
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / "alpamayo_wait_ready"), "--timeout", "60",
             "--status", "/alpamayo_planner/status"],
            env=os.environ.copy(), capture_output=True, timeout=90,
        )  # fmt: skip
        assert proc.returncode == (0 if good_model else 1), proc.stderr[-1000:]
        if good_model:
            assert planner.monitor.model_ready


def test_wait_ready_ignores_a_planner_started_before_it(ros, tiny_checkpoint):
    """A planner already running on the topic (another launch's) is ready, but started before
    the --started-after time replay.launch.py passes: the waiter ignores it, says so, and
    times out rather than starting the bag for a planner that is not this launch's."""
    planner = PlannerNode(parameter_overrides=planner_params(tiny_checkpoint))
    with Graph(planner) as graph:
        assert graph.wait_for(lambda: planner.monitor.model_ready, 60.0)
        launched = time.time()
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / "alpamayo_wait_ready"), "--timeout", "4",
             "--status", "/alpamayo_planner/status", "--started-after", f"{launched:.3f}"],
            env=os.environ.copy(), capture_output=True, timeout=60, text=True,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr[-1000:]
        assert "ignoring the status of a planner started" in proc.stderr
        assert "not ready after 4 s" in proc.stderr


def test_publish_autoware_without_autoware_fails_at_start_up_naming_the_package(ros):
    try:
        import autoware_planning_msgs  # noqa: F401
    except ImportError:
        with pytest.raises(ParameterError, match="autoware_planning_msgs"):
            PlannerNode(parameter_overrides=[Parameter("publish_autoware", value=True)])
    else:
        pytest.skip("Autoware's messages are installed here")


def test_autoware_outputs_carry_each_published_plan(ros, tiny_checkpoint):
    """Where Autoware's message packages are installed, publish_autoware adds a Trajectory
    for each published plan (stamp t0, the ego at t0 first, then the plan's 64 states) and
    CandidateTrajectories holding the published trajectory among the samples, named for
    the model. The converters are tested on rosbags' definitions in CI; this is the node
    with the real generated types."""
    autoware = pytest.importorskip("autoware_planning_msgs.msg")
    internal = pytest.importorskip("autoware_internal_planning_msgs.msg")
    from alpamayo_ros.messages.autoware import states_from_autoware

    drive = Drive(sim_start=SIM_START)
    got: dict[str, list] = {"trajectory": [], "candidates": []}
    for key, kind, topic in (
        ("trajectory", autoware.Trajectory, "trajectory"),
        ("candidates", internal.CandidateTrajectories, "candidate_trajectories"),
    ):
        drive.node.create_subscription(
            kind, f"/alpamayo_planner/autoware/{topic}", got[key].append, 10
        )
    planner = sim_planner(tiny_checkpoint, publish_autoware=True, wheelbase=2.8)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 22):
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        plans = len(drive.received["plan"])
        assert graph.wait_for(
            lambda: len(got["trajectory"]) >= plans and len(got["candidates"]) >= plans, 5.0
        ), {k: len(v) for k, v in got.items()}
    by_stamp = {stamp_seconds(m.header.stamp): m for _, m in drive.received["plan"]}
    trajectories = {stamp_seconds(m.header.stamp): m for m in got["trajectory"]}
    assert set(trajectories) == set(by_stamp)
    model = [t for t, m in by_stamp.items() if not m.is_fallback]
    assert len(model) >= 5
    for t in model:
        plan, trajectory = by_stamp[t], trajectories[t]
        assert trajectory.header.frame_id == "base_link" and len(trajectory.points) == 65
        first = trajectory.points[0]
        assert (first.pose.position.x, first.pose.position.y) == (0.0, 0.0)
        states = states_from_autoware(trajectory)
        xy = np.array([(p.x, p.y) for p in plan.points])
        assert np.allclose(states["xyz"][:, :2], xy, atol=1e-9)
        speed = np.array([p.speed for p in plan.points])
        assert np.allclose(states["speed"], speed, atol=1e-5)  # float32 in Autoware's
        assert np.allclose(states["times"], [0.1 * (k + 1) for k in range(64)])
    for msg in got["candidates"]:
        plan = by_stamp[stamp_seconds(msg.candidate_trajectories[0].header.stamp)]
        (info,) = msg.generator_info
        assert info.generator_name.data == f"alpamayo_ros: {plan.model_id or 'no model'}"
        assert 1 <= len(msg.candidate_trajectories) <= max(plan.num_samples, 1)
        xy = np.array([(p.x, p.y) for p in plan.points])
        assert any(
            np.allclose(states_from_autoware(c)["xyz"][:, :2], xy, atol=1e-9)
            for c in msg.candidate_trajectories
        )


# -- Alpamayo 1.5: navigation and questions ------------------------------------------------
@pytest.fixture(scope="module")
def tiny_checkpoint_1_5(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny15") / "ckpt", family="alpamayo1_5")


def test_navigation_reaches_plans_until_it_is_too_old(ros, tiny_checkpoint_1_5):
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(
        tiny_checkpoint_1_5, navigation_topic="/planning/navigation", navigation_max_age=2.5
    )
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = drive.node.create_publisher(String, "/planning/navigation", latched)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        drive.set_clock(SIM_START)
        pub.publish(String(data="Turn left in 30m"))
        assert graph.wait_for(lambda: planner.planner.navigation is not None, 5.0)
        for t in ticks(SIM_START + 0.1, 32):  # model plans from ~1.6 s (a full history)
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        plans = [(at, m) for at, m in drive.received["plan"] if not m.is_fallback]
        assert plans, {m.fallback_reason for _, m in drive.received["plan"]}
        with_route = [at for at, m in plans if m.navigation == "Turn left in 30m"]
        without = [at for at, m in plans if m.navigation == ""]
        # Received at SIM_START, kept for navigation_max_age = 2.5 s, then dropped.
        assert with_route and max(with_route) <= SIM_START + 2.5 + 1e-6
        assert without and min(without) > SIM_START + 2.5
        assert planner.planner.navigation_dropped == 1
        assert graph.wait_for(
            lambda: any(
                s.name.endswith("navigation") and "dropped" in s.message
                for _, arr in drive.received["diag"]
                for s in arr.status
            ),
            5.0,
        )


def ask(graph: Graph, drive: Drive, question: str, max_tokens: int = 3):
    from alpamayo_ros.srv import AskQuestion

    client = drive.node.create_client(AskQuestion, "/alpamayo_planner/ask")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(AskQuestion.Request(question=question, max_tokens=max_tokens))
    assert graph.wait_for(future.done, 60.0), "no answer"
    return future.result()


def test_ask_answers_about_the_newest_frames_while_planning(ros, tiny_checkpoint_1_5):
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint_1_5)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        refused = ask(graph, drive, "What is ahead?")
        assert not refused.success and "frame" in refused.message  # no frames yet
        for t in ticks(SIM_START, 20):
            assert step(graph, drive, planner, t)
        reply = ask(graph, drive, "What is ahead?", max_tokens=4)
        assert reply.success, reply.message
        assert not reply.complete and reply.latency_ms > 0  # random weights: cut at 4 tokens
        assert list(reply.camera_names) == list(RELEASED_CAMERAS)
        t_last = SIM_START + 1.9
        assert reply.input_stamp.sec + 1e-9 * reply.input_stamp.nanosec == pytest.approx(t_last)
        assert planner.worker.questions_answered == 1
        empty = ask(graph, drive, "  ")
        assert not empty.success and empty.message == "the question is empty"


def test_ask_and_navigation_refused_for_an_alpamayo_1_checkpoint(ros, tiny_checkpoint):
    with pytest.raises(ParameterError, match=r"navigation_topic .* needs an Alpamayo 1\.5"):
        PlannerNode(parameter_overrides=planner_params(tiny_checkpoint, navigation_topic="/route"))
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint)
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 3):
            step(graph, drive, planner, t, wait_plan=False)
        reply = ask(graph, drive, "What is ahead?")
        assert not reply.success and "questions need an Alpamayo 1.5 checkpoint" in reply.message


def test_a_rig_the_checkpoint_cannot_read_fails_at_start_up(ros, tiny_checkpoint, tmp_path):
    from alpamayo_ros.core.cameras import CameraLayoutError

    rig = tmp_path / "rear.yaml"
    rig.write_text(
        "cameras:\n  - name: camera_rear_left_70fov\n    topic: /camera/rear_left/image\n"
    )
    with pytest.raises(CameraLayoutError, match="camera_rear_left_70fov"):
        PlannerNode(parameter_overrides=planner_params(tiny_checkpoint, camera_config=str(rig)))


def test_the_plan_consumer_example_follows_fresh_plans_only(ros):
    """examples/plan_consumer.py, the README's minimal consumer: a fresh plan is taken, one
    stamped in the future or too old is not."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    from plan_consumer import PlanConsumer

    consumer = PlanConsumer()
    pub_node = rclpy.create_node("plan_source")
    pub = pub_node.create_publisher(DrivingPlan, "/alpamayo_planner/plan", 10)
    with Graph(consumer, pub_node) as graph:
        assert graph.wait_for(lambda: pub.get_subscription_count() > 0, 5.0)
        now = consumer.get_clock().now().nanoseconds * 1e-9
        pub.publish(straight_plan_at(now + 5.0, 4.0))
        pub.publish(straight_plan_at(now - 3.0, 4.0))
        assert graph.wait_for(lambda: len(consumer.rejected) == 2, 5.0)
        assert "in the future" in consumer.rejected[0] and "old" in consumer.rejected[1]
        fresh = straight_plan_at(consumer.get_clock().now().nanoseconds * 1e-9, 4.0)
        pub.publish(fresh)
        assert graph.wait_for(lambda: consumer.latest is not None, 5.0)
        assert consumer.latest.points[0].speed == pytest.approx(fresh.points[0].speed)


def test_two_lanes_in_the_node_reuse_the_newest_chain(ros, tiny_checkpoint):
    """planning_mode two_lane on simulated time: after the first (full) plan, trajectory-lane
    plans carry the reasoning lane's newest chain, written for an earlier input time."""
    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(tiny_checkpoint, planning_mode="two_lane")
    with Graph(drive.node, planner) as graph:
        wait_for_model(graph, planner)
        for t in ticks(SIM_START, 26):
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        model = [m for _, m in drive.received["plan"] if not m.is_fallback]
        assert model and model[0].lane == "full"
        lanes = {m.lane for m in model}
        assert "trajectory" in lanes, lanes
        for m in model:
            stamp = m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec
            chain = m.chain_stamp.sec + 1e-9 * m.chain_stamp.nanosec
            assert chain <= stamp + 1e-9
        assert planner.worker.chains >= 1


def test_a_fast_engine_warms_up_before_it_reports_model_ready(ros, tiny_checkpoint):
    """engine fast (warm_up auto): the node plans once on synthetic frames of the cameras'
    size before it reports model_ready, saying so in its status; the first plans, lane plans
    and chains on the cameras' frames then compile nothing (two_lane)."""
    from torch._dynamo.utils import counters

    drive = Drive(sim_start=SIM_START)
    planner = sim_planner(
        tiny_checkpoint, engine="fast", planning_mode="two_lane",
        warm_up_width=160, warm_up_height=120,  # the fake cameras' size
    )  # fmt: skip

    def warming() -> list:
        return [s for _, s in drive.received["status"]
                if s.detail.startswith("warming the fast engine up on 160x120 frames")]  # fmt: skip

    with Graph(drive.node, planner) as graph:
        assert graph.wait_for(lambda: bool(warming()), 120.0), drive.received["status"][-1:]
        assert all(not s.model_ready and s.state == PlannerStatus.STARTING for s in warming())
        assert graph.wait_for(lambda: planner.worker is not None, 300.0), "no warm-up end"
        counters.clear()
        for t in ticks(SIM_START, 25):
            assert step(graph, drive, planner, t), f"no plan for the tick at {t}"
        plans = [m for _, m in drive.received["plan"] if not m.is_fallback]
        assert plans and {m.lane for m in plans} >= {"trajectory"}, [m.lane for m in plans]
        assert planner.worker.chains >= 1
        assert counters["stats"]["unique_graphs"] == 0
        assert graph.wait_for(lambda: drive.received["status"][-1][1].model_ready, 5.0)


def test_closing_during_the_warm_up_ends_it(ros, tiny_checkpoint, monkeypatch):
    """The warm-up's plan is held until the node closes (however fast this machine compiles),
    then runs with the cancel flag set, as a plan cut at its next token: the loading thread
    ends without creating the worker or reporting the model ready."""
    from alpamayo_ros.model.policy import AlpamayoPolicy

    entered = threading.Event()
    plan = AlpamayoPolicy.plan

    def held(self, requests, **kw):
        entered.set()
        kw["cancel"].wait(60.0)
        return plan(self, requests, **kw)

    monkeypatch.setattr(AlpamayoPolicy, "plan", held)
    drive = Drive()
    planner = PlannerNode(parameter_overrides=planner_params(tiny_checkpoint, engine="fast"))
    with Graph(drive.node, planner):
        assert entered.wait(120.0), "the warm-up did not start"
        assert planner._model_problem.startswith("warming the fast engine up")
        planner.close()
        assert planner.planner.cancel.is_set()
        for thread in threading.enumerate():
            if thread.name == "alpamayo-load":
                thread.join(60.0)
                assert not thread.is_alive(), "the warm-up did not end"
        assert planner.worker is None  # the loading thread did not go on to plan
        assert not planner.monitor.model_ready


def test_cameras_of_another_size_than_the_warm_up_are_reported_once(ros, tiny_checkpoint, tmp_path):
    """warm_up on (the eager engine warms up too); the front camera's image_size in the rig
    is the fake cameras' 160x120, the other three warm up at the default 1920x1080: one
    warning per camera topic of another size on /rosout, naming both sizes, none for the
    front camera."""
    from rcl_interfaces.msg import Log

    rig = yaml.safe_load((CONFIG / "cameras.yaml").read_text())
    front = next(c for c in rig["cameras"] if c["name"] == "camera_front_wide_120fov")
    front["image_size"] = [160, 120]
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump(rig))
    drive = Drive()
    logs: list[str] = []
    drive.node.create_subscription(Log, "/rosout", lambda m: logs.append(m.msg), rosout_qos())
    params = planner_params(tiny_checkpoint, warm_up="on", camera_config=str(tmp_path / "rig.yaml"))
    planner = PlannerNode(parameter_overrides=params)
    with Graph(drive.node, planner) as graph:
        assert graph.wait_for(
            lambda: any(not m.is_fallback for _, m in drive.received["plan"]), 60.0
        )
        assert any(line.startswith("warm-up done in") for line in logs), logs
        warming = [line for line in logs if line.startswith("warming the eager engine up on")]
        assert warming and "on 1920x1080 and 160x120 frames" in warming[0], warming

        def size_warnings() -> list[str]:
            return [line for line in logs if "sends 160x120 frames" in line]

        assert graph.wait_for(lambda: len(size_warnings()) == 3, 5.0), size_warnings()
        time.sleep(0.5)
        assert len(size_warnings()) == 3  # once per camera topic of another size
        assert all("warmed up on 1920x1080" in line for line in size_warnings())
        assert not any(front["topic"] in line for line in size_warnings())
