"""Offline replay: the synthetic sample bag, plans at the rate, a report with real images,
an oracle that scores zero, robustness to bad inputs, Ctrl-C, and the real recording."""

import base64
import json
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from alpamayo_ros.bag.messages import BagWriter, MessageFactory, typestore
from alpamayo_ros.bag.reader import Bag, BagError
from alpamayo_ros.bag.replay import PLAN_TOPICS, PLANNER_NAMESPACE, replay_bag
from alpamayo_ros.bag.sample_drive import write_sample_bag
from alpamayo_ros.cli import main
from alpamayo_ros.core.camera_rig import CameraInput, CameraRig
from alpamayo_ros.core.ego_history import EgoHistorySpec, EgoPoseBuffer
from alpamayo_ros.core.trajectory import UnicycleSpec, fit_controls, integrate, yaw_from_rotation
from alpamayo_ros.messages.inputs import nanoseconds
from alpamayo_ros.planning.realtime import LaneLatency, LaneSharing
from alpamayo_ros.planning.requests import PlanResult, PolicySample
from alpamayo_ros.planning.settings import PlannerSettings

REPO = Path(__file__).resolve().parents[2]
FAST = PlannerSettings(num_samples=2, max_reasoning_tokens=4, num_flow_steps=2, seed=0)


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "drive"
    write_sample_bag(path, seed=3, duration=8.0)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from alpamayo_ros.model.policy import AlpamayoPolicy
    from alpamayo_ros.model.tiny import make_tiny_checkpoint

    return AlpamayoPolicy.from_pretrained(
        make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")
    )


def read_all(path: Path) -> list[tuple[str, int, bytes]]:
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


def report_images(html: str) -> list[np.ndarray]:
    found = re.findall(r"data:image/(?:jpeg|png);base64,([A-Za-z0-9+/=]+)", html)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), 1) for b in found]


class OraclePolicy:
    """Test-only: plans exactly the logged future (what the driver did), fitted by the core
    unicycle model, so every open-loop metric must come out (nearly) zero."""

    model_id = "oracle"

    def __init__(self, bag: Path) -> None:
        with Bag(bag) as b:
            poses = b.read_ego_poses("/odom")
        self.log = EgoPoseBuffer(replace(EgoHistorySpec(), capacity=len(poses)))
        for p in poses:
            self.log.add(p)

    def plan(self, requests, num_samples=1, **_):
        spec = UnicycleSpec(integration="trapezoid")
        samples = []
        for req in requests:
            t0, v0 = req.ego.t0, req.ego.speed
            k = min(spec.num_steps, int((self.log.latest_stamp - t0) / spec.dt + 1e-6))
            controls = np.zeros((spec.num_steps, 2))
            if k >= 2:
                xyz, rot = self.log.future(t0, k, spec.dt)
                short = replace(spec, num_steps=k)
                heading = np.unwrap(yaw_from_rotation(rot))
                controls[:k] = fit_controls(xyz[:, :2], v0, short, heading=heading)
            roll = integrate(controls, v0, spec)
            xyz, rot = roll.to_xyz_rot()
            smp = PolicySample("Keep speed: oracle.", controls, roll, xyz, rot, True)
            samples.append([smp] * num_samples)
        return PlanResult(samples=samples, timings_ms={"total": 0.0})


def test_sample_bag_is_deterministic_and_complete(tmp_path):
    write_sample_bag(tmp_path / "a", seed=5, duration=2.0)
    write_sample_bag(tmp_path / "b", seed=5, duration=2.0)
    write_sample_bag(tmp_path / "c", seed=6, duration=2.0)
    a, b, c = (read_all(tmp_path / n) for n in "abc")
    assert a == b
    assert a != c
    topics = {t for t, _, _ in a}
    for cam in CameraRig.released_default().names:
        assert f"/camera/{cam}/image_raw/compressed" in topics
        assert f"/camera/{cam}/camera_info" in topics
    assert {"/odom", "/tf", "/tf_static"} <= topics
    lines = (tmp_path / "a" / "coc_annotations.jsonl").read_text().splitlines()
    assert len(lines) == 21 and {"bag", "t", "reasoning", "meta_action"} <= set(
        json.loads(lines[0])
    )


def test_replay_of_the_sample_plans_at_the_rate_and_writes_bag_report_summary(
    sample_bag, tiny, tmp_path
):
    rig = CameraRig.released_default()
    result = replay_bag(sample_bag, tiny, rig, tmp_path, FAST, progress=False)
    ticks = np.array([s.tick for s in result.steps])
    with Bag(sample_bag) as bag:
        span = bag.end_time - ticks[0]
    assert np.allclose(np.diff(ticks), 0.1)
    assert len(ticks) == int(span * 10 + 1e-6) + 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["plans"] == len(ticks) and len(summary["steps"]) == len(ticks)
    assert summary["model_plans"] > 0.5 * len(ticks)
    assert summary["untrained_checkpoint"] is True
    assert summary["projected_on_camera"] is True
    # The bag ends before the horizon of the late plans: metrics only where it is known.
    counts = summary["metrics_plan_count"]
    assert 0 < counts["ade_6.4s"] < counts["ade_3.0s"] < counts["ade_1.0s"]

    # The plans bag reads back with our message types and one message per tick and topic.
    store = typestore()
    with AnyReader([tmp_path / "plans"], default_typestore=store) as reader:
        kinds = {c.topic: c.msgtype for c in reader.connections}
        assert kinds == {f"{PLANNER_NAMESPACE}/{k}": v for k, v in PLAN_TOPICS.items()} | {
            "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
            f"{PLANNER_NAMESPACE}/status": "alpamayo_ros/msg/PlannerStatus",
        }
        per_topic = {c.topic: c.msgcount for c in reader.connections}
        assert {per_topic[f"{PLANNER_NAMESPACE}/{k}"] for k in PLAN_TOPICS} == {len(ticks)}
        conn = next(c for c in reader.connections if c.msgtype == PLAN_TOPICS["plan"])
        _, t_ns, raw = next(reader.messages(connections=[conn]))
        plan = reader.deserialize(raw, conn.msgtype)
        # The node's diagnostics and status, once per second of bag time.
        diag = [c for c in reader.connections if c.topic == "/diagnostics"]
        arrays = [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages(diag)]
        status = [c for c in reader.connections if c.topic.endswith("/status")]
        last_status = [reader.deserialize(r, c.msgtype) for c, _, r in reader.messages(status)][-1]
    assert len(plan.points) == 64 and plan.header.frame_id == "base_link"
    assert t_ns == nanoseconds(ticks[0])
    assert len(arrays) == per_topic[f"{PLANNER_NAMESPACE}/status"] == int(span + 1e-6) + 1
    assert np.allclose(np.diff([t for t, _ in arrays]) * 1e-9, 1.0)
    inputs, model = arrays[-1][1].status
    assert inputs.name == "alpamayo_planner: inputs" and inputs.message == "all inputs arriving"
    rates = {kv.key: float(kv.value) for kv in inputs.values if kv.key.endswith("[Hz]")}
    assert set(rates) == {f"{c} rate [Hz]" for c in rig.names} | {"odometry rate [Hz]"}
    assert all(9.0 <= r <= 11.0 for k, r in rates.items() if k != "odometry rate [Hz]"), rates
    published = {kv.key: kv.value for kv in model.values}["plans published"]
    assert int(published) == sum(1 for t in ticks if t <= arrays[-1][0] * 1e-9 + 1e-6)
    assert last_status.plans_published == int(published) and last_status.model_ready

    html = (tmp_path / "report.html").read_text()
    assert "UNTRAINED CHECKPOINT" in html
    images = report_images(html)
    camera_frames = [im for im in images if im.shape[:2] == (360, 640)]
    assert camera_frames, [im.shape for im in images]
    for im in images:
        assert im.std() > 5, "blank image in the report"


def test_oracle_policy_scores_zero(sample_bag, tmp_path):
    rig = CameraRig.released_default()
    result = replay_bag(sample_bag, OraclePolicy(sample_bag), rig, tmp_path, FAST, progress=False)
    metrics = result.summary()["metrics_mean_m"]
    assert {"ade_1.0s", "ade_3.0s", "ade_6.4s", "min_ade_3.0s"} <= set(metrics)
    assert max(metrics.values()) < 0.05
    assert result.summary()["model_plans"] > 0.5 * len(result.steps)
    # the constant-velocity baseline on the same plans: the sample drive brakes and turns
    baseline = result.summary()["constant_velocity_mean_m"]
    assert set(baseline) == {k for k in metrics if not k.startswith("min_")}
    assert baseline["ade_3.0s"] > 10 * metrics["ade_3.0s"]
    # and the constant acceleration/curvature one, on the same plans
    baseline_ca = result.summary()["constant_accel_curvature_mean_m"]
    assert set(baseline_ca) == set(baseline) and baseline_ca["ade_3.0s"] > metrics["ade_3.0s"]


def test_report_charts_and_long_causal_chains(sample_bag, tmp_path):
    """Charts come from matplotlib with titled axes; a long chain shows its start, the rest
    behind a click."""
    from alpamayo_ros.bag.report import chain_html, chart_png

    long_chain = "Decelerate: " + "a cyclist is merging from the right and " * 12 + "stops."

    class Talkative(OraclePolicy):
        def plan(self, requests, num_samples=1, **kw):
            result = super().plan(requests, num_samples, **kw)
            for row in result.samples:
                row[:] = [replace(smp, reasoning=long_chain) for smp in row]
            return result

    rig = CameraRig.released_default()
    replay_bag(sample_bag, Talkative(sample_bag), rig, tmp_path, FAST, progress=False)
    html = (tmp_path / "report.html").read_text()
    assert html.count("<details><summary>") > 3 and "stops.</b></details>" in html
    assert chain_html("Keep speed.") == "<p><b>Keep speed.</b></p>"
    png = chart_png(
        {"a": (np.arange(5.0), np.array([1.0, 2.0, np.nan, 1.0, 0.5])),
         "empty": (np.arange(5.0), np.full(5, np.nan))},
        "ADE", "ADE [m]", stops=np.array([1.0, 3.0]),
    )  # fmt: skip
    chart = cv2.imdecode(np.frombuffer(png, np.uint8), 1)
    assert chart.shape[1] == 720 and chart.std() > 5
    charts = [im for im in report_images(html) if im.shape[1] == 720]
    assert len(charts) == 2


def copy_bag(src: Path, dst: Path, keep, change=None) -> None:
    """Copy a bag message by message; keep(topic, t) filters, change(topic, t, raw) edits."""
    store = typestore()
    with (
        AnyReader([src], default_typestore=store) as reader,
        BagWriter(dst, store=store) as writer,
    ):
        for conn, t, raw in reader.messages():
            if not keep(conn.topic, t * 1e-9):
                continue
            data = change(conn.topic, t * 1e-9, bytes(raw)) if change else bytes(raw)
            writer.write_raw(conn.topic, conn.msgtype, t * 1e-9, data)


def test_corrupt_image_and_odometry_gap_are_counted_and_the_replay_finishes(
    sample_bag, tiny, tmp_path
):
    with Bag(sample_bag) as bag:
        t_start = bag.start_time
    front = "/camera/camera_front_wide_120fov/image_raw/compressed"
    f = MessageFactory()
    garbage = f.compressed_image(0.0, "x", np.zeros((8, 8, 3), np.uint8))
    garbage.data = np.frombuffer(b"this is not a jpeg", np.uint8)
    done = []

    def change(topic, t, raw):
        if topic == front and t > t_start + 2.0 and not done:
            done.append(t)
            msg = f.store.deserialize_cdr(raw, "sensor_msgs/msg/CompressedImage")
            garbage.header = msg.header
            return f.store.serialize_cdr(garbage, "sensor_msgs/msg/CompressedImage")
        return raw

    def keep(topic, t):  # one second of odometry missing
        return not (topic in ("/odom", "/tf") and t_start + 4.0 < t < t_start + 5.0)

    copy_bag(sample_bag, tmp_path / "bad", keep, change)
    result = replay_bag(
        tmp_path / "bad", tiny, CameraRig.released_default(), tmp_path / "out", FAST,
        progress=False,
    )  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["skipped_inputs"] == {"bad_image": 1}
    assert len(summary["odometry_gaps"]) == 1
    assert summary["odometry_gaps"][0]["seconds"] == pytest.approx(1.05, abs=0.06)
    assert sum(summary["fallback_plans"].values()) >= 5  # stops while odometry is missing
    assert len(result.steps) == summary["plans"] > 60  # and it went on to the end
    # The diagnostics in the plans bag say so as it happened: the skipped image, and the
    # odometry silent and stale during the gap.
    with AnyReader([tmp_path / "out" / "plans"], default_typestore=typestore()) as reader:
        diag = [c for c in reader.connections if c.topic == "/diagnostics"]
        arrays = [(t * 1e-9, reader.deserialize(r, c.msgtype)) for c, t, r in reader.messages(diag)]
    inputs = {round(t - t_start, 1): a.status[0] for t, a in arrays}
    assert any(i.message == "1 messages skipped" for i in inputs.values())
    in_gap = [i for t, i in inputs.items() if 4.2 <= t < 5.0]
    after = {kv.key: kv.value for kv in inputs[max(inputs)].values}
    assert after["skipped bad_image"] == "1"
    assert len(in_gap) == 1, sorted(inputs)  # a diagnostics tick inside the second without odometry
    ages = {kv.key: float(kv.value) for kv in in_gap[0].values if kv.key.endswith("[s]")}
    assert ages["odometry age [s]"] > 0.2, ages


def test_ctrl_c_writes_what_is_done(sample_bag, tiny, tmp_path):
    class Interrupting:
        model_id = "interrupting"
        calls = 0

        def plan(self, requests, **kwargs):
            self.calls += 1
            if self.calls == 4:
                raise KeyboardInterrupt
            return tiny.plan(requests, **kwargs)

    result = replay_bag(
        sample_bag, Interrupting(), CameraRig.released_default(), tmp_path, FAST, progress=False
    )
    assert result.interrupted and len(result.steps) >= 3
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["plans"] == len(result.steps)
    assert "interrupted" in (tmp_path / "report.html").read_text()


def test_missing_topic_names_it_and_lists_the_bag(sample_bag, tmp_path):
    rig = CameraRig((CameraInput("camera_front_wide_120fov", "/front/image"),))
    with pytest.raises(BagError, match=r"/front/image.*\n.*the bag has:(.|\n)*/odom"):
        replay_bag(sample_bag, None, rig, tmp_path, progress=False)


def test_cli_without_a_model_falls_back_to_a_loudly_untrained_checkpoint(
    tmp_path, capsys, monkeypatch
):
    import alpamayo_ros.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "DEMO_CHECKPOINT", tmp_path / "no-demo-here")
    assert main(["make-sample-bag", str(tmp_path / "bag"), "--duration", "3"]) == 0
    args = ["replay", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), "--duration", "0.3"]
    args += ["--samples", "1", "--max-reasoning-tokens", "2", "--flow-steps", "1"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "UNTRAINED CHECKPOINT" in out.err
    assert "throughput:" in out.out and "plans/s" in out.out
    assert (tmp_path / "out" / "report.html").is_file()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["plans"] == 4


def test_replay_of_the_real_recording(pandaset_bag, tiny, tmp_path):
    rig = CameraRig.from_dict(yaml.safe_load((REPO / "config/pandaset_cameras.yaml").read_text()))
    result = replay_bag(pandaset_bag, tiny, rig, tmp_path, FAST, duration=1.0, progress=False)
    summary = result.summary()
    assert summary["plans"] == 11 and summary["skipped_inputs"] == {}
    assert summary["projected_on_camera"] is True  # camera_info + /tf_static of `front`
    assert "camera_front_tele_30fov" in summary["camera_notes"]
    assert "image_size" not in str(summary["camera_notes"])  # the rig's 960x540 is the bag's
    assert summary["metrics_plan_count"]["ade_3.0s"] == summary["model_plans"] > 0


def test_realtime_two_lane_replay_publishes_at_the_rate_with_lanes_and_chain_ages(
    sample_bag, tmp_path
):
    """The oracle as a two-lane model on the simulated schedule (full plans 300 ms,
    trajectory-lane plans 60 ms): every tick planned, plans published 60 ms after their
    input, the lanes and chain ages in the plans bag and summary.json."""

    class ChainOracle(OraclePolicy):
        def plan(self, requests, num_samples=1, reasoning_ids=None, **kw):
            result = super().plan(requests, num_samples, **kw)
            ids = tuple(reasoning_ids[0]) if reasoning_ids else (1, 2, 3)
            return PlanResult(
                [[replace(s, reasoning_token_ids=ids) for s in per] for per in result.samples],
                result.timings_ms,
            )

    result = replay_bag(
        sample_bag, ChainOracle(sample_bag), CameraRig.released_default(), tmp_path,
        progress=False, planning_mode="two_lane", latency=LaneLatency(0.3, 0.06),
    )  # fmt: skip
    # The same on one device, as the node's worker shares it: still every tick planned, but
    # the chains get only the 40 ms per tick the trajectory lane leaves.
    shared = replay_bag(
        sample_bag, ChainOracle(sample_bag), CameraRig.released_default(), tmp_path / "one",
        progress=False, planning_mode="two_lane", latency=LaneLatency(0.3, 0.06),
        sharing=LaneSharing(max_chain_age=1.0, stale_chain_slice=0.03),
    )  # fmt: skip
    one = json.loads((tmp_path / "one" / "summary.json").read_text())["realtime"]
    assert len(shared.steps) == len(result.steps) and one["late_plans"] == 0
    assert 0.6 < one["chain_age_s"]["max"] <= 1.8
    with AnyReader([tmp_path / "one" / "plans"], default_typestore=typestore()) as reader:
        diag = [c for c in reader.connections if c.topic == "/diagnostics"]
        models = [reader.deserialize(r, c.msgtype).status[1] for c, _, r in reader.messages(diag)]
    # WARN exactly while the published chain is older than max_chain_age (1 s)
    aged = [(m, {kv.key: kv.value for kv in m.values}) for m in models]
    aged = [(m, float(v["causal-chain age [s]"])) for m, v in aged if "causal-chain age [s]" in v]
    assert any(age > 1.0 for _, age in aged) and any(age <= 1.0 for _, age in aged)
    for m, age in aged:
        if abs(age - 1.0) > 0.006:  # the value is shown to 0.01 s
            assert ("causal chain" in m.message) == (age > 1.0) and (m.level == 1) == (age > 1.0)
    model = [s for s in result.steps if not s.plan.is_fallback]
    assert model and {s.plan.lane for s in model} <= {"full", "trajectory"}
    assert model[-1].plan.lane == "trajectory"
    # published 60 ms after the tick, from frames at most one frame period before it
    assert all(0.06 - 1e-6 <= s.tick - s.plan.stamp <= 0.16 + 1e-6 for s in model[3:])
    rt = json.loads((tmp_path / "summary.json").read_text())["realtime"]
    # 0.5 s of schedule (see test/planning/test_realtime.py) + a frame period of lag
    assert rt["chain_age_s"]["max"] <= 0.6 + 1e-6 and rt["late_plans"] == 0
    assert rt["model_plans_per_bag_second"] >= 0.8 * result.rate_hz * len(model) / len(result.steps)
    ade = [s.metrics["ade_1.0s"] for s in model if "ade_1.0s" in s.metrics]
    assert ade and max(ade) < 0.05  # still the oracle's path, from each plan's own t0
    with AnyReader([tmp_path / "plans"], default_typestore=typestore()) as reader:
        conn = next(c for c in reader.connections if c.msgtype == PLAN_TOPICS["plan"])
        last = [reader.deserialize(raw, conn.msgtype) for _, _, raw in reader.messages([conn])][-1]
    assert last.lane == "trajectory" and last.chain_stamp.sec > 0
    with AnyReader([tmp_path / "plans"], default_typestore=typestore()) as reader:
        diag = [c for c in reader.connections if c.topic == "/diagnostics"]
        *_, (_, _, raw) = reader.messages(diag)
        model = reader.deserialize(raw, diag[0].msgtype).status[1]
    values = {kv.key: kv.value for kv in model.values}
    assert 0 < int(values["reasoning lane chains"]) <= rt["chains_handed_over"]  # at its tick
    assert float(values["trajectory lane total p50 [ms]"]) >= 0.0


def test_jpeg_frames_left_to_the_model_give_the_plans_of_frames_decoded_on_arrival(
    sample_bag, tiny, tmp_path
):
    rig = CameraRig.released_default()
    kw = dict(progress=False, start=1.0, duration=1.5)
    arrival = replay_bag(sample_bag, tiny, rig, tmp_path / "a", FAST, **kw)
    deferred = replay_bag(sample_bag, tiny, rig, tmp_path / "b", FAST, defer_jpeg=True, **kw)
    decoder = tiny.processor.decoder
    assert decoder.on_cpu >= 16 and decoder.device_failures == 0  # no GPU here: OpenCV
    assert len(arrival.steps) == len(deferred.steps) > 10
    for a, b in zip(arrival.steps, deferred.steps, strict=True):
        assert a.plan.reasoning == b.plan.reasoning and not a.plan.is_fallback
        assert np.abs(a.plan.xyz - b.plan.xyz).max() < 1e-5
    assert (tmp_path / "b" / "report.html").read_text().count("data:image/jpeg") > 0


def test_a_jpeg_with_a_broken_header_is_counted_and_skipped_when_left_to_the_model(
    sample_bag, tiny, tmp_path
):
    with Bag(sample_bag) as bag:
        t_start = bag.start_time
    front = "/camera/camera_front_wide_120fov/image_raw/compressed"
    done: list[float] = []

    def change(topic, t, raw):
        if topic == front and t > t_start + 1.0 and not done:
            done.append(t)
            msg = typestore().deserialize_cdr(raw, "sensor_msgs/msg/CompressedImage")
            msg.data = msg.data[:40]  # the quantisation table cut off
            return typestore().serialize_cdr(msg, "sensor_msgs/msg/CompressedImage")
        return raw

    copy_bag(sample_bag, tmp_path / "bad", lambda topic, t: t < t_start + 3.0, change)
    replay_bag(
        tmp_path / "bad", tiny, CameraRig.released_default(), tmp_path / "out", FAST,
        progress=False, defer_jpeg=True,
    )  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["skipped_inputs"] == {"bad_image": 1}
    assert summary["model_plans"] > 0
