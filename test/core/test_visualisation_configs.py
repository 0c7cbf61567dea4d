"""The Foxglove layout and the RViz config stay in step with what the planner publishes:
every topic they show exists (the planner's outputs, /diagnostics, the default rig's camera
and its camera_info), every message path names fields of DrivingPlan, the Foxglove layout's
buttons call the controller's engage service, and its tree uses exactly its panels."""

import json
import re
from pathlib import Path

import yaml

from alpamayo_ros.bag.projection import camera_info_topic
from alpamayo_ros.bag.replay import PLAN_TOPICS, PLANNER_NAMESPACE
from alpamayo_ros.core.camera_rig import CameraRig

REPO = Path(__file__).resolve().parents[2]
FRONT = CameraRig.from_yaml(REPO / "config" / "cameras.yaml").by_topic()
FRONT_TOPIC = next(t for t in FRONT if "front_wide" in t)
PUBLISHED = {f"{PLANNER_NAMESPACE}/{k}" for k in PLAN_TOPICS} | {"/diagnostics"}
CAMERA = {FRONT_TOPIC, camera_info_topic(FRONT_TOPIC), FRONT_TOPIC.removesuffix("/compressed")}
PLAN_FIELDS = {
    line.split()[1]
    for line in (REPO / "msg" / "DrivingPlan.msg").read_text().splitlines()
    if line.strip() and not line.startswith("#") and "=" not in line.split("#")[0]
}
POINT_FIELDS = {
    line.split()[1]
    for line in (REPO / "msg" / "TrajectoryPoint.msg").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def leaves(tree):
    if isinstance(tree, str):
        return [tree]
    return leaves(tree["first"]) + leaves(tree["second"])


def test_foxglove_layout_shows_what_the_planner_publishes():
    layout = json.loads((REPO / "config" / "alpamayo.foxglove.json").read_text())
    panels = layout["configById"]
    assert sorted(leaves(layout["layout"])) == sorted(panels)
    kinds = {p.split("!")[0] for p in panels}
    assert {"Image", "3D", "RawMessages", "Plot", "DiagnosticSummary"} <= kinds
    # Engage and Disengage buttons (CallService panels) on the controller's ~/engage
    # (std_srvs/SetBool), for a live vehicle through foxglove_bridge
    calls = {name: panel for name, panel in panels.items() if name.startswith("CallService!")}
    assert {c["serviceName"] for c in calls.values()} == {"/alpamayo_controller/engage"}
    assert sorted(json.loads(c["requestPayload"])["data"] for c in calls.values()) == [0, 1]
    assert {c["buttonText"] for c in calls.values()} == {"Engage", "Disengage"}
    text = json.dumps({k: v for k, v in panels.items() if k not in calls})
    topics = set(re.findall(r'"(/[A-Za-z0-9_/]+?)(?:[.{"])', text))
    assert topics and topics <= PUBLISHED | CAMERA, topics - PUBLISHED - CAMERA
    # Titles for Foxglove and for Lichtblick (its open-source fork, where the screenshot in
    # the README was made), the same; every plotted series labelled.
    for name, panel in panels.items():
        assert panel.get("foxglovePanelTitle") == panel.get("lichtblickPanelTitle"), name
    series = [
        p for name, panel in panels.items() if name.startswith("Plot!") for p in panel["paths"]
    ]
    assert series and all(p.get("label") for p in series)
    paths = re.findall(r"/alpamayo_planner/plan(?:\{[^}]*\})?\.([A-Za-z_\[\]:.]+)", text)
    assert len(paths) >= 5
    for path in paths:
        field, *rest = path.split(".")
        assert field.removesuffix("[:]") in PLAN_FIELDS, path
        if rest:
            assert rest[0] in POINT_FIELDS, path


def test_rviz_config_shows_what_the_planner_publishes():
    rviz = yaml.safe_load((REPO / "config" / "alpamayo.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert {f"{PLANNER_NAMESPACE}/path", f"{PLANNER_NAMESPACE}/markers"} <= topics
    assert topics <= PUBLISHED | CAMERA
    # RViz's image displays take the transport from the topic's last name
    # (rviz_default_plugins getTransportFromTopic: "compressed" -> compressed, else raw), and
    # the rig publishes only CompressedImage: the display must name the compressed topic.
    images = [d for d in displays if d["Class"] == "rviz_default_plugins/Image"]
    assert images and all(d["Topic"]["Value"] == FRONT_TOPIC for d in images)
