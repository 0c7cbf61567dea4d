"""Dataset from bags: what a sample holds, shards split across workers, bad annotations."""

import io
import json

import numpy as np
import pytest
import torch

from alpamayo_ros.core.meta_actions import extract_meta_actions
from alpamayo_ros.core.tokens import ControlTokenizer
from alpamayo_ros.core.trajectory import UnicycleSpec, integrate
from alpamayo_ros.training.dataset import (
    DamagedPart,
    ShardDataset,
    read_annotations,
    read_shard,
    shard_records,
)


def test_samples_hold_inputs_future_controls_tokens_and_text(dataset, samples):
    index = json.loads((dataset / "index.json").read_text())
    # 9 s drives, ticks from 1.6 s, a full 6.4 s future needed: t0 up to ~2.6 s each.
    assert index["samples"] == len(samples) >= 16 and index["shards"] >= 2
    s = samples[0]
    assert len(s.images) == 16 and s.images[0].shape == (90, 160, 3)
    assert s.ego_xyz.shape == (16, 3) and np.allclose(s.ego_xyz[-1], 0.0)
    assert s.future_xyz.shape == (64, 3) and s.controls.shape == (64, 2)
    spec = UnicycleSpec(integration="trapezoid")
    for s in samples:
        roll = integrate(s.controls, s.v0, spec)
        assert np.abs(roll.xy - s.future_xyz[:, :2]).max() < 0.05  # controls reproduce the log
        decoded = ControlTokenizer.released().decode(s.tokens)
        assert np.abs(decoded - s.controls).max() < 0.01
        # the annotated action is what the logged future does (templated causal chains)
        extracted = extract_meta_actions(roll.speed, roll.heading, roll.y, s.v0, spec.dt)
        assert s.meta_actions[0] == extracted[0], (s.key, s.reasoning)


def test_agent_boxes_are_in_the_ego_frame(samples):
    lead = [s for s in samples if s.bag == "lead"]
    assert lead
    box = lead[0].agents[0, 0]  # the lead vehicle, 0.1 s after t0: ahead in our lane
    assert 5.0 < box[0] < 60.0 and abs(box[1]) < 0.5 and box[3:] == pytest.approx([4.5, 1.8])


def test_workers_read_every_sample_once(dataset, samples):
    data = ShardDataset(dataset, shuffle=True, buffer=4, seed=3)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
    keys = [s.key for s in loader]
    assert sorted(keys) == sorted(s.key for s in samples)
    assert keys != [s.key for s in samples]  # shuffled


def test_the_shuffle_buffer_holds_samples_as_stored(dataset, samples, monkeypatch):
    """Decoded, a full-HD sample of 16 frames is ~100 MB, and the shuffle buffer (512
    samples) held them decoded: every sample of a shard was decoded before the first left.
    Now the buffer holds them as stored (JPEG) and decodes each as it leaves."""
    import alpamayo_ros.training.dataset as module

    decoded: list[dict] = []
    real = module._sample

    def counting(files):
        decoded.append(files)
        return real(files)

    monkeypatch.setattr(module, "_sample", counting)
    records = iter(ShardDataset(dataset, shuffle=True, buffer=512, seed=3))
    next(records)
    assert len(decoded) == 1
    rest = list(records)
    assert len(rest) + 1 == len(samples) == len(decoded)  # each decoded once


def test_bad_annotation_names_the_line(tmp_path):
    path = tmp_path / "coc.jsonl"
    path.write_text('{"bag": "a", "t": 1.0, "reasoning": "ok", "meta_action": "stop"}\n'
                    '{"bag": "a", "t": 2.0, "reasoning": "x", "meta_action": "fly"}\n')  # fmt: skip
    with pytest.raises(ValueError, match=r'coc.jsonl:2: .*meta_action.*got "fly"'):
        read_annotations(path)


def test_a_damaged_shard_is_named_with_its_sample(dataset, tmp_path):
    import tarfile

    shard = sorted(dataset.glob("shard-*.tar"))[0]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(shard.read_bytes()[:1000])  # a copy cut short
    with pytest.raises(ValueError, match=r"cut\.tar: bytes 0- cannot be read \(ReadError: une"):
        list(read_shard(cut))
    # a sample without its metadata, and one whose frame is not a JPEG
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]
    first = members[0][0].name.partition(".")[0]
    for name, keep in (("nojson", lambda m: m.name != f"{first}.json"), ("badjpeg", None)):
        out = tmp_path / f"{name}.tar"
        with tarfile.open(out, "w") as tar:
            for member, data in members:
                if keep is not None and not keep(member):
                    continue
                if keep is None and member.name == f"{first}.cam0.0.jpg":
                    data = b"not a jpeg"
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
        said = "KeyError: 'json'" if name == "nojson" else "image 0 is not a readable JPEG"
        with pytest.raises(ValueError, match=rf"{name}\.tar: sample {first} is malformed .*{said}"):
            list(read_shard(out))


def _members(shard):
    import tarfile

    with tarfile.open(shard) as tar:
        return [(m.name, m.offset, m.offset_data, m.size) for m in tar]


def test_a_damaged_header_loses_its_sample_only_and_is_named(dataset, tmp_path):
    """The standard library ends a tar silently at a damaged header: 6 of a shard's 8
    samples were lost without a word. The reader steps over it to the next header."""
    shard = sorted(dataset.glob("shard-*.tar"))[0]
    members = _members(shard)
    keys = list(dict.fromkeys(name.partition(".")[0] for name, *_ in members))
    assert len(keys) == 8
    _, offset, data_at, size = next(m for m in members if m[0] == f"{keys[2]}.json")
    raw = bytearray(shard.read_bytes())
    raw[offset : offset + 100] = b"\x07" * 100  # its name and mode: the checksum fails
    damaged = tmp_path / "shard-000000.tar"
    damaged.write_bytes(bytes(raw))
    records = list(shard_records(damaged))
    samples = [r for r in records if not isinstance(r, DamagedPart)]
    parts = [str(r) for r in records if isinstance(r, DamagedPart)]
    assert [s.key for s in samples] == keys[:2] + keys[3:]
    end = data_at + -(-size // 512) * 512
    assert parts == [
        f"{damaged}: sample {keys[2]} is malformed (KeyError: 'json')",
        f"{damaged}: bytes {offset}-{end} are not tar data (a damaged header?): samples there"
        " are lost",
    ]
    with pytest.raises(ValueError, match=rf"sample {keys[2]} is malformed"):
        list(read_shard(damaged))


def test_a_shard_cut_between_two_samples_is_named(dataset, tmp_path):
    """Cut where a file ends (as a full disk or a stopped copy leaves it), the rest of the
    shard was lost without a word."""
    shard = sorted(dataset.glob("shard-*.tar"))[0]
    members = _members(shard)
    keys = list(dict.fromkeys(name.partition(".")[0] for name, *_ in members))
    at = next(offset for name, offset, *_ in members if name == f"{keys[5]}.json")
    cut = tmp_path / "shard-000000.tar"
    cut.write_bytes(shard.read_bytes()[:at])
    records = list(shard_records(cut))
    assert [r.key for r in records[:-1]] == keys[:5]
    assert str(records[-1]) == (
        f"{cut}: bytes {at}- are missing: the shard ends without its end marker (cut short"
        " where a file ended; samples after it are lost)"
    )
    with pytest.raises(ValueError, match=r"ends without its end marker"):
        list(read_shard(cut))
    assert len(list(shard_records(shard))) == 8  # the undamaged shard: its samples alone


@pytest.mark.parametrize("prefix", ["./", "drive.v2/"])
def test_shards_packed_by_tar_from_a_folder_are_read(dataset, tmp_path, prefix):
    """`tar -cf shard.tar .` names the files "./KEY.json" (with a "./" folder entry first),
    and a folder's name may hold a dot: the key was cut at the first dot of the whole name
    ("" for every sample: KeyError 'json'); it is now cut as webdataset cuts it, at the
    first dot after the last slash."""
    import tarfile

    shard = sorted(dataset.glob("shard-*.tar"))[0]
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    packed = tmp_path / "shard-000000.tar"
    with tarfile.open(packed, "w") as tar:
        folder = tarfile.TarInfo(prefix)
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for member, data in members:
            member.name = prefix + member.name
            tar.addfile(member, io.BytesIO(data))
    records = list(shard_records(packed))
    assert not [str(r) for r in records if isinstance(r, DamagedPart)]
    assert [r.key for r in records] == [r.key for r in shard_records(shard)]


def test_a_rebuild_replaces_the_dataset_whole_and_a_failed_one_keeps_it(
    drives, tmp_path, monkeypatch
):
    """Rebuilt with larger shards, the folder holds the new shards only (no stale shard of
    the earlier build for ShardDataset to read); a build failing part-way leaves the
    earlier dataset as it was."""
    import alpamayo_ros.training.dataset as dataset_module
    from alpamayo_ros.core.camera_rig import CameraRig
    from alpamayo_ros.training.dataset import build_dataset, load_samples

    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join((d / "coc_annotations.jsonl").read_text() for d in drives))
    out = tmp_path / "data"
    rig = CameraRig.released_default()
    small = build_dataset(drives, notes, out, rig, per_shard=4, progress=False)
    assert small.shards >= 3
    big = build_dataset(drives, notes, out, rig, per_shard=1000, progress=False)
    assert big.shards == 1 and len(list(out.glob("shard-*.tar"))) == 1
    assert len(load_samples(out)) == big.samples == small.samples
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def failing(self, sample):
        raise OSError("disk full")

    monkeypatch.setattr(dataset_module.ShardWriter, "write", failing)
    with pytest.raises(OSError, match="disk full"):
        build_dataset(drives, notes, out, rig, per_shard=4, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "notes.jsonl"]


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ('{"bag": "a", "t": NaN, "reasoning": "x"}', "field 't' must be a finite number .*got nan"),
        ('{"bag": "a", "t": "inf", "reasoning": "x"}', "field 't' must be .*got \"inf\""),
        ('{"bag": "a", "t": "soon", "reasoning": "x"}', "field 't' must be .*got \"soon\""),
        ('{"bag": "a", "t": true, "reasoning": "x"}', "field 't' must be .*got true"),
        ('{"bag": "a", "t": 1.0, "reasoning": 5}', "field 'reasoning' must be a string, got 5"),
        ('{"bag": null, "t": 1.0, "reasoning": "x"}', "field 'bag' must be a string, got null"),
        ('{"t": 1.0, "reasoning": "x"}', "missing field 'bag'"),
        ('{"bag": "a", "reasoning": "x"}', "missing field 't'"),
        ('{"bag": "a", "t": 1.0}', "missing field 'reasoning'"),
        (
            '{"bag": "a", "t": 1.0, "reasoning": "x", "agents": [[1, 2, 3, 4, NaN]]}',
            "field 'agents' must be .*finite numbers .*got \\[\\[1, 2, 3, 4, NaN\\]\\]",
        ),
        (
            '{"bag": "a", "t": 1.0, "reasoning": "x", "agents": [[1, 2]]}',
            "field 'agents' must be a list of \\[x, y, yaw, length, width\\] boxes",
        ),
        (
            '{"bag": "a", "t": 1.0, "reasoning": "x", "agents": "car"}',
            "field 'agents' .*got \"car\"",
        ),
        ("[1, 2]", "must be a JSON object, got list"),
        ('{"bag": "a", "t": 1.0, "reasoning": "x", "meta_action": 0}', "'meta_action' .*got 0"),
        (
            '{"bag": "a", "t": 1.0, "reasoning": "x", "meta_action": []}',
            "'meta_action' .*got \\[\\]",
        ),
    ],
)
def test_an_annotation_of_the_wrong_kind_names_its_line(tmp_path, row, said):
    path = tmp_path / "coc.jsonl"
    path.write_text('{"bag": "a", "t": 1.0, "reasoning": "ok"}\n' + row + "\n")
    with pytest.raises(ValueError, match=rf"coc.jsonl:2: bad annotation \(.*{said}"):
        read_annotations(path)
