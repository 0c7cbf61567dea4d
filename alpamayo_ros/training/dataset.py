"""Training samples from bags: build once into streaming shards, read with DataLoader workers.

`build_dataset` steps through each bag at the planner's rate with the same playback as the
replay (frame buffer, ego history), and at every tick with a complete input set, the full
6.4 s of logged future and a causal-chain annotation, writes one sample:

- the 16 camera frames (JPEG), camera-major, oldest first;
- the ego history at t0 (16 poses, ego frame at t0) and the speed at t0;
- the logged future: positions and rotations (64), the unicycle controls that reproduce it
  (trapezoid rule, as the model integrates) and their released trajectory tokens (128);
- the causal-chain text and meta-actions of the annotation nearest to t0 (within
  `max_annotation_gap`); other agents' boxes over the future when the annotation has them.

Shards are tar files in the webdataset layout (`{key}.json` + `{key}.cam{c}.{f}.jpg` per
sample, `shard-000000.tar` ...), so the webdataset library reads them too; `ShardDataset`
reads them with the standard library, splitting shards across DataLoader workers and
distributed ranks.

Annotation file (JSON lines): {"bag": folder name, "t": seconds (bag time), "reasoning":
str, "meta_action": str, "agents": [[x, y, yaw, length, width], ...] (optional, odom frame,
m and rad)}.
"""

from __future__ import annotations

import bisect
import io
import json
import logging
import math
import os
import random
import tarfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import transforms3d.quaternions as tq
from tqdm import tqdm

from alpamayo_ros.bag.playback import (
    InputFeed,
    first_tick,
    read_logged_drive,
    step_through,
    tick_times,
)
from alpamayo_ros.bag.reader import Bag, SkipCounts
from alpamayo_ros.core.atomic_output import refuse_a_file, written_atomically
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.core.ego_history import (
    EgoHistory,
    EgoHistoryUnavailable,
    EgoPoseBuffer,
    StampedPose,
)
from alpamayo_ros.core.frame_buffer import FrameBuffer, FrameBufferSpec, FramesUnavailable
from alpamayo_ros.core.meta_actions import META_ACTIONS, extract_meta_actions
from alpamayo_ros.core.tokens import ControlTokenizer
from alpamayo_ros.core.trajectory import UnicycleSpec, fit_controls, integrate, yaw_from_rotation

log = logging.getLogger(__name__)

SAMPLES_PER_SHARD = 256


@dataclass(frozen=True)
class Annotation:
    """A causal chain at bag time t (s); agents: (N, 5) x, y, yaw, length, width in odom."""

    t: float
    reasoning: str
    meta_action: str
    agents: np.ndarray


@dataclass
class DrivingSample:
    """One training sample (see the module docstring). Arrays in SI units, ego frame at t0.

    images: 16 (H, W, 3) uint8 RGB, camera-major; ego_xyz (16, 3), ego_rot (16, 3, 3);
    v0: m/s; future_xyz (64, 3), future_rot (64, 3, 3); controls (64, 2) m/s^2 and 1/m;
    tokens (128,) released trajectory tokens of the controls; agents (64, N, 5): boxes of
    the other agents at t0 + k dt (x, y, yaw in the ego frame at t0, length, width).
    """

    key: str
    bag: str
    t0: float
    images: list[np.ndarray]
    ego_xyz: np.ndarray
    ego_rot: np.ndarray
    v0: float
    future_xyz: np.ndarray
    future_rot: np.ndarray
    controls: np.ndarray
    tokens: np.ndarray
    reasoning: str
    meta_actions: tuple[str, ...]
    agents: np.ndarray = field(default_factory=lambda: np.zeros((64, 0, 5)))

    def ego_history(self) -> EgoHistory:
        """The EgoHistory value the processor reads (stamps relative to t0)."""
        n = len(self.ego_xyz)
        return EgoHistory(
            t0=self.t0,
            stamps=self.t0 + 0.1 * np.arange(-(n - 1), 1),
            xyz=self.ego_xyz,
            rot=self.ego_rot,
            speed=self.v0,
            pose_t0=StampedPose(self.t0, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)),
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "key": self.key, "bag": self.bag, "t0": self.t0, "v0": self.v0,
            "ego_xyz": self.ego_xyz.tolist(), "ego_rot": self.ego_rot.tolist(),
            "future_xyz": self.future_xyz.tolist(), "future_rot": self.future_rot.tolist(),
            "controls": self.controls.tolist(), "tokens": self.tokens.tolist(),
            "reasoning": self.reasoning, "meta_actions": list(self.meta_actions),
            "agents": self.agents.tolist(), "num_images": len(self.images),
        }  # fmt: skip

    @classmethod
    def from_parts(cls, meta: dict[str, Any], images: list[np.ndarray]) -> DrivingSample:
        agents = np.asarray(meta.get("agents", []), dtype=np.float64)
        if agents.size == 0:
            agents = np.zeros((len(meta["controls"]), 0, 5))
        return cls(
            key=meta["key"], bag=meta["bag"], t0=float(meta["t0"]), images=images,
            ego_xyz=np.asarray(meta["ego_xyz"]), ego_rot=np.asarray(meta["ego_rot"]),
            v0=float(meta["v0"]), future_xyz=np.asarray(meta["future_xyz"]),
            future_rot=np.asarray(meta["future_rot"]), controls=np.asarray(meta["controls"]),
            tokens=np.asarray(meta["tokens"], dtype=np.int64), reasoning=meta["reasoning"],
            meta_actions=tuple(meta["meta_actions"]), agents=agents,
        )  # fmt: skip


def _annotation(row: Any) -> tuple[str, Annotation]:
    """One annotation line's JSON value -> (its bag's name, the annotation); ValueError
    naming the field and the value."""
    if not isinstance(row, dict):
        raise ValueError(f"a line must be a JSON object, got {type(row).__name__}")
    for key in ("bag", "t", "reasoning"):
        if key not in row:
            raise ValueError(f"missing field {key!r}")
        if key != "t" and not isinstance(row[key], str):
            raise ValueError(f"field {key!r} must be a string, got {_shown(row[key])}")
    try:
        t = float(row["t"])
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(row["t"], bool) or not math.isfinite(t):
        raise ValueError(f"field 't' must be a finite number (bag time, s), got {_shown(row['t'])}")
    action = row.get("meta_action")
    action = "" if action is None else action  # absent or null: none given
    if action != "" and action not in META_ACTIONS:
        raise ValueError(f"field 'meta_action' must be one of {META_ACTIONS}, got {_shown(action)}")
    try:
        agents = np.asarray(row.get("agents", []), dtype=np.float64).reshape(-1, 5)
    except (TypeError, ValueError):
        agents = np.full((1, 5), np.nan)
    if not np.isfinite(agents).all():
        raise ValueError(
            "field 'agents' must be a list of [x, y, yaw, length, width] boxes of finite "
            f"numbers (m, m, rad, m, m), got {_shown(row.get('agents'))}"
        )
    return row["bag"], Annotation(t, row["reasoning"], action, agents)


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_annotations(path: str | Path) -> dict[str, list[Annotation]]:
    """Bag name -> its annotations sorted by time. Raises ValueError naming the line, the
    field and the value."""
    by_bag: dict[str, list[Annotation]] = defaultdict(list)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ValueError(f"cannot read the annotations {path}: {why}") from err
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            bag, note = _annotation(json.loads(line))
            by_bag[bag].append(note)
        except ValueError as err:  # json.JSONDecodeError too
            raise ValueError(f"{path}:{n}: bad annotation ({err}): {line[:120]}") from err
    for rows in by_bag.values():
        rows.sort(key=lambda a: a.t)
    return dict(by_bag)


def _nearest(rows: list[Annotation], t: float) -> Annotation | None:
    if not rows:
        return None
    i = bisect.bisect_left([a.t for a in rows], t)
    cands = [rows[j] for j in (i - 1, i) if 0 <= j < len(rows)]
    return min(cands, key=lambda a: abs(a.t - t))


def _boxes_in_ego_frame(boxes: np.ndarray, pose: StampedPose) -> np.ndarray:
    """(N, 5) boxes in odom -> in the ego frame of `pose` (planar)."""
    if boxes.size == 0:
        return boxes.reshape(0, 5)
    r = tq.quat2mat(pose.quaternion)
    yaw0 = math.atan2(r[1, 0], r[0, 0])
    c, s = math.cos(yaw0), math.sin(yaw0)
    d = boxes[:, :2] - np.asarray(pose.position[:2])
    out = boxes.copy()
    out[:, 0] = c * d[:, 0] + s * d[:, 1]
    out[:, 1] = -s * d[:, 0] + c * d[:, 1]
    out[:, 2] = boxes[:, 2] - yaw0
    return out


@dataclass
class BuildReport:
    """Counts of a dataset build: samples written, ticks skipped by reason."""

    samples: int = 0
    shards: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "shards": self.shards, "skipped": dict(self.skipped)}


class ShardWriter:
    """Writes DrivingSamples into tar shards of `per_shard` samples."""

    def __init__(self, out_dir: Path, per_shard: int = SAMPLES_PER_SHARD, quality: int = 90):
        self.out_dir = out_dir
        self.per_shard = per_shard
        self.quality = quality
        self.count = 0
        self.shards = 0
        self._tar: tarfile.TarFile | None = None
        out_dir.mkdir(parents=True, exist_ok=True)

    def _add(self, name: str, data: bytes) -> None:
        assert self._tar is not None
        info = tarfile.TarInfo(name)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def write(self, sample: DrivingSample) -> None:
        if self._tar is None or self.count % self.per_shard == 0:
            self.close()
            self._tar = tarfile.open(self.out_dir / f"shard-{self.shards:06d}.tar", "w")
            self.shards += 1
        self._add(f"{sample.key}.json", json.dumps(sample.metadata()).encode())
        for i, img in enumerate(sample.images):
            ok, buf = cv2.imencode(
                ".jpg",
                cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, self.quality],
            )
            if not ok:
                raise ValueError(f"JPEG encoding failed for {sample.key} image {i}")
            self._add(f"{sample.key}.cam{i // 4}.{i % 4}.jpg", buf.tobytes())
        self.count += 1

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None


def build_dataset(
    bags: Sequence[str | Path],
    annotations: str | Path,
    out_dir: str | Path,
    rig: CameraRig,
    odom_source: str = "/odom",
    rate_hz: float = 10.0,
    max_annotation_gap: float = 0.06,
    per_shard: int = SAMPLES_PER_SHARD,
    progress: bool = True,
) -> BuildReport:
    """Turn bags into shards in out_dir (see the module docstring); writes index.json. The
    dataset is written beside out_dir and replaces it whole when complete: an earlier
    dataset there is never mixed with this one's shards, nor lost to a failed run."""
    if isinstance(per_shard, bool) or not isinstance(per_shard, int) or per_shard < 1:
        raise ValueError(f"per_shard must be a whole number >= 1, got {per_shard!r}")
    refuse_a_file(Path(out_dir))
    notes = read_annotations(annotations)
    with written_atomically(Path(out_dir)) as partial:
        report = _build_shards(
            bags, notes, partial, rig, odom_source, rate_hz, max_annotation_gap, per_shard,
            progress,
        )  # fmt: skip
        if not report.samples:  # a failed build: an earlier dataset in out_dir stays
            raise ValueError(
                f"no samples (skipped: {dict(report.skipped) or 'nothing'}); {out_dir} was "
                "not written"
            )
    return report


def _build_shards(
    bags: Sequence[str | Path],
    notes: dict[str, list[Annotation]],
    out_dir: Path,
    rig: CameraRig,
    odom_source: str,
    rate_hz: float,
    max_annotation_gap: float,
    per_shard: int,
    progress: bool,
) -> BuildReport:
    """build_dataset's work, into the fresh folder out_dir."""
    spec = UnicycleSpec(integration="trapezoid")
    tokenizer = ControlTokenizer.released()
    writer = ShardWriter(out_dir, per_shard)
    report = BuildReport()
    for bag_path in tqdm(bags, desc="bags", disable=not progress):
        name = Path(bag_path).name
        rows = notes.get(name, [])
        if not rows:
            log.warning("no annotation for bag %s: skipped", name)
            report.skipped["bag without annotations"] += 1
            continue
        skipped = SkipCounts()
        frames = FrameBuffer(FrameBufferSpec(cameras=rig.names))
        with Bag(bag_path) as bag:
            bag.require_inputs(rig, odom_source)
            logged = read_logged_drive(bag, odom_source, skipped=skipped)
            live = EgoPoseBuffer(logged.poses.spec)
            is_tf = bag.topics[odom_source] == "tf2_msgs/msg/TFMessage"
            feed = InputFeed(rig, odom_source, is_tf, frames.add, live.add, skipped)
            ticks = tick_times(first_tick(bag, live.spec), bag.end_time, rate_hz)
            for k, _ in enumerate(step_through(bag, feed, ticks)):
                t0 = frames.newest_complete_t0()
                note = _nearest(rows, t0) if t0 is not None else None
                if t0 is None or note is None or abs(note.t - t0) > max_annotation_gap:
                    report.skipped["no annotation at t0" if t0 is not None else "no frames"] += 1
                    continue
                try:
                    frame_set = frames.assemble(t0)
                    hist = live.history(t0)
                    fut_xyz, fut_rot = logged.poses.future(t0, spec.num_steps, spec.dt)
                except FramesUnavailable:
                    report.skipped["incomplete frames"] += 1
                    continue
                except EgoHistoryUnavailable as err:
                    why = "future" if "future" in str(err) else "history"
                    report.skipped[f"no full {why}"] += 1
                    continue
                heading = np.unwrap(yaw_from_rotation(fut_rot))
                controls = fit_controls(fut_xyz[:, :2], hist.speed, spec, heading=heading)
                roll = integrate(controls, hist.speed, spec)
                extracted = extract_meta_actions(
                    roll.speed, roll.heading, roll.y, hist.speed, spec.dt
                )
                agents = _future_agents(rows, hist.pose_t0, t0, spec, max_annotation_gap)
                stated = (note.meta_action,) if note.meta_action else ()
                writer.write(
                    DrivingSample(
                        key=f"{name}_{k:06d}".replace(".", "_"), bag=name, t0=t0,
                        images=frame_set.flat(), ego_xyz=hist.xyz, ego_rot=hist.rot,
                        v0=hist.speed, future_xyz=fut_xyz, future_rot=fut_rot,
                        controls=controls, tokens=tokenizer.encode(controls),
                        reasoning=note.reasoning, meta_actions=stated + extracted[1:],
                        agents=agents,
                    )
                )  # fmt: skip
                report.samples += 1
        for reason, n in skipped.as_dict().items():
            report.skipped[reason] += n
    writer.close()
    report.shards = writer.shards
    (out_dir / "index.json").write_text(
        json.dumps({**report.as_dict(), "bags": [str(b) for b in bags]}, indent=2) + "\n"
    )
    return report


def _future_agents(
    rows: list[Annotation], pose_t0: StampedPose, t0: float, spec: UnicycleSpec, gap: float
) -> np.ndarray:
    """(T, N, 5) boxes of the other agents at t0 + dt ... t0 + T dt in the ego frame at t0,
    from the annotations (padded with far-away boxes where fewer or none are known)."""
    n = max((len(r.agents) for r in rows), default=0)
    out = []
    for j in range(1, spec.num_steps + 1):
        note = _nearest(rows, t0 + j * spec.dt)
        known = note is not None and abs(note.t - (t0 + j * spec.dt)) <= gap
        boxes = note.agents if known and note is not None else np.zeros((0, 5))
        out.append(_pad_boxes(_boxes_in_ego_frame(boxes, pose_t0), n))
    return np.stack(out) if out else np.zeros((0, n, 5))


def _pad_boxes(boxes: np.ndarray, n: int) -> np.ndarray:
    """(M, 5) -> (n, 5), far-away zero-size boxes filling the missing rows (never hit)."""
    out = np.zeros((n, 5))
    out[:, 0] = 1e6
    out[: len(boxes)] = boxes[:n]
    return out


def shard_paths(path: str | Path) -> list[Path]:
    """The shards of a dataset folder (or one shard file)."""
    p = Path(path)
    shards = [p] if p.is_file() else sorted(p.glob("shard-*.tar"))
    if not shards:
        raise FileNotFoundError(f"no shard-*.tar in {p}")
    return shards


@dataclass(frozen=True)
class DamagedPart:
    """A part of a shard that could not be read, skipped by the readers that skip: one
    sample (`part` "sample KEY"), or a stretch of bytes whose samples cannot be named
    (`part` "bytes A-B", offsets in the tar stream). str() names the shard, part and why."""

    shard: Path
    part: str
    why: str

    def __str__(self) -> str:
        return f"{self.shard}: {self.part} {self.why}"


def _tar_members(path: Path) -> Iterator[tuple[str, bytes] | DamagedPart]:
    """(name, data) of each file in the tar at `path`, in order, and a DamagedPart for each
    stretch that is not tar data. The standard library ends an archive silently at the
    first damaged header, or where a file was cut at a header: here the reader steps over
    bytes that are no header (`ignore_zeros`) to the next header it finds, and reports the
    gap, a cut, and a file that ends without the archive's end marker."""
    try:
        tar = tarfile.open(path, ignore_zeros=True)
    except (tarfile.TarError, OSError, EOFError) as err:
        yield DamagedPart(path, "the file", f"is not a readable shard ({_why(err)})")
        return
    with tar:
        expected = 0  # where the next header starts when nothing is damaged
        start = 0  # where the file being read starts
        try:
            for member in tar:
                if member.offset > expected:
                    yield _gap(path, expected, member.offset)
                start = member.offset
                blocks = math.ceil(member.size / tarfile.BLOCKSIZE)
                expected = member.offset_data + blocks * tarfile.BLOCKSIZE
                f = tar.extractfile(member)
                if f is not None:
                    yield member.name, f.read()
            assert tar.fileobj is not None
            start = expected
            tar.fileobj.seek(expected)
            rest, zeros = 0, True  # what follows the last file: the end marker's zeros
            while chunk := tar.fileobj.read(1 << 20):
                rest, zeros = rest + len(chunk), zeros and not chunk.strip(b"\0")
        except (tarfile.TarError, OSError, EOFError) as err:
            yield DamagedPart(path, f"bytes {start}-", f"cannot be read ({_why(err)})")
            return
    if not zeros:
        yield _gap(path, expected, expected + rest)
    elif rest < 2 * tarfile.BLOCKSIZE:
        yield DamagedPart(
            path, f"bytes {expected}-", "are missing: the shard ends without its end marker"
            " (cut short where a file ended; samples after it are lost)",
        )  # fmt: skip


def _gap(path: Path, start: int, end: int) -> DamagedPart:
    return DamagedPart(
        path, f"bytes {start}-{end}", "are not tar data (a damaged header?): samples there are lost"
    )


def _why(err: BaseException) -> str:
    why = str(err).splitlines()[0].rstrip(":") if str(err) else "no reason given"
    return f"{type(err).__name__}: {why}"


@dataclass(frozen=True)
class StoredSample:
    """One sample of a shard as stored: its key and files ({suffix: bytes}, JPEG frames
    undecoded, a few MB at full HD where the decoded sample is ~100 MB). decode() gives the
    DrivingSample, or a DamagedPart naming the sample when it is incomplete or malformed."""

    shard: Path
    key: str
    files: dict[str, bytes]

    def decode(self) -> DrivingSample | DamagedPart:
        try:
            return _sample(self.files)
        except (KeyError, TypeError, ValueError) as err:  # json's errors are ValueErrors
            why = f"is malformed ({type(err).__name__}: {err})"
            return DamagedPart(self.shard, f"sample {self.key}", why)


def stored_samples(path: Path) -> Iterator[StoredSample | DamagedPart]:
    """The samples of one shard as stored, in order, then a DamagedPart for each stretch of
    the file that cannot be read."""
    parts: dict[str, dict[str, bytes]] = defaultdict(dict)
    order: list[str] = []
    damage: list[DamagedPart] = []
    for item in _tar_members(path):
        if isinstance(item, DamagedPart):
            damage.append(item)
            continue
        key, suffix = _key_and_suffix(item[0])
        if key not in parts:
            order.append(key)
        parts[key][suffix] = item[1]
    for key in order:
        yield StoredSample(path, key, parts.pop(key))
    yield from damage


def shard_records(path: Path) -> Iterator[DrivingSample | DamagedPart]:
    """The samples of one shard, in order, with a DamagedPart in place of each sample that
    is incomplete or malformed and of each stretch of the file that cannot be read."""
    for stored in stored_samples(path):
        yield stored.decode() if isinstance(stored, StoredSample) else stored


def _key_and_suffix(name: str) -> tuple[str, str]:
    """A shard member's sample key and file suffix, as webdataset splits them: the key runs
    to the first dot after the last slash ("./lead_000000.cam0.1.jpg", as `tar -cf shard.tar
    .` names it, is sample "./lead_000000", suffix "cam0.1.jpg")."""
    folder, slash, base = name.rpartition("/")
    stem, _, suffix = base.partition(".")
    return folder + slash + stem, suffix


def _sample(files: dict[str, bytes]) -> DrivingSample:
    meta = json.loads(files["json"])
    images = []
    for i in range(int(meta["num_images"])):
        data = np.frombuffer(files[f"cam{i // 4}.{i % 4}.jpg"], np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"image {i} is not a readable JPEG")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return DrivingSample.from_parts(meta, images)


class DamageLog:
    """The damaged parts of a dataset that a run skipped: each named once in a warning
    (DataLoader workers pass them on in their batches), counted as distinct parts."""

    def __init__(self, dataset: str | Path) -> None:
        self.dataset = dataset
        self.parts: list[str] = []

    def add(self, parts: list[str], warn: bool = True) -> None:
        """Count `parts` (text); each new one named in a warning unless `warn` is False
        (an error that names the first is coming)."""
        for part in parts:
            if part not in self.parts:
                self.parts.append(part)
                if warn:
                    log.warning("skipped: %s", part)

    def note(self, record: dict[str, Any]) -> dict[str, Any]:
        """The log record, with the count of damaged parts so far where there are any."""
        return record | {"damaged_parts": len(self.parts)} if self.parts else record

    def nothing_read(self) -> ValueError:
        """The error of an epoch that yielded no readable sample (training would loop)."""
        said = f"{self.dataset}: no readable sample in the dataset"
        if self.parts:
            said += f" (damaged parts skipped: {len(self.parts)}, the first: {self.parts[0]})"
        return ValueError(said)

    def summarise(self) -> None:
        if self.parts:
            log.warning("%d damaged parts of %s were skipped (named above)",
                        len(self.parts), self.dataset)  # fmt: skip


def read_shard(path: Path) -> Iterator[DrivingSample]:
    """The samples of one shard, in order; ValueError naming the shard and the part at the
    first damaged part (`shard_records` reads on past it)."""
    for record in shard_records(path):
        if isinstance(record, DamagedPart):
            raise ValueError(str(record))
        yield record


class ShardDataset(torch.utils.data.IterableDataset):
    """Streams DrivingSamples from shards. Each DataLoader worker (and each distributed
    rank, from RANK / WORLD_SIZE) reads its own subset of the shards; `shuffle` shuffles
    the shard order per epoch and samples within a buffer."""

    def __init__(
        self, path: str | Path, shuffle: bool = True, buffer: int = 512, seed: int = 0
    ) -> None:
        super().__init__()
        self.shards = shard_paths(path)
        self.shuffle = shuffle
        self.buffer = buffer
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _my_shards(self) -> list[Path]:
        shards = list(self.shards)
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(shards)
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        part, parts = rank * workers + worker, world * workers
        mine = shards[part::parts]
        return mine if mine else shards[part % len(shards) :: len(shards)]

    def __iter__(self) -> Iterator[DrivingSample | DamagedPart]:
        """Samples, and a DamagedPart where a part of a shard cannot be read (in place of a
        sample that cannot be decoded; a damaged stretch of a shard at once), so that the
        training loop counts it in any worker. The shuffle buffer holds samples as stored
        and decodes each as it leaves: decoded, a full-HD sample of 16 frames is ~100 MB,
        and a buffer of 512 of them would not fit in memory."""
        rng = random.Random(self.seed + 1000 * self.epoch)
        pool: list[StoredSample] = []
        for shard in self._my_shards():
            for record in stored_samples(shard):
                if isinstance(record, DamagedPart):
                    yield record
                elif not self.shuffle:
                    yield record.decode()
                else:
                    pool.append(record)
                    if len(pool) >= self.buffer:
                        yield pool.pop(rng.randrange(len(pool))).decode()
        rng.shuffle(pool)
        for record in pool:
            yield record.decode()


def iter_samples(
    path: str | Path, damaged: list[DamagedPart] | None = None, stride: int = 1
) -> Iterator[DrivingSample]:
    """Every `stride`-th readable sample of a dataset, in order, decoded as it is reached (a
    list of a large full-HD dataset's samples, decoded, would not fit in memory). Without
    `damaged` the first damaged part of a shard stops the read (ValueError naming it); with
    a list the damaged parts are appended to it and skipped."""
    readable = 0
    for shard in shard_paths(path):
        for record in shard_records(shard) if damaged is not None else read_shard(shard):
            if isinstance(record, DamagedPart):
                assert damaged is not None
                damaged.append(record)
                continue
            if readable % stride == 0:
                yield record
            readable += 1


def load_samples(path: str | Path, damaged: list[DamagedPart] | None = None) -> list[DrivingSample]:
    """Every sample of a dataset, in order, in a list (small datasets; see iter_samples)."""
    return list(iter_samples(path, damaged))
