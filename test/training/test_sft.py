"""SFT: losses go down on a fixed batch; training writes checkpoints in the released layout
that load back; freezing and LoRA train what they say."""

import numpy as np
import pytest
import torch
from safetensors import safe_open

from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.tiny import make_tiny_checkpoint
from alpamayo_ros.training.objectives import sft_losses, training_batch
from alpamayo_ros.training.trainer import TrainSettings, train_sft


@pytest.fixture(scope="module")
def init_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("init") / "ckpt", seed=1)


def test_targets_and_labels(init_checkpoint, samples):
    policy = AlpamayoPolicy.from_pretrained(init_checkpoint)
    proc = policy.processor
    batch = training_batch(proc, samples[:2])
    labels = batch["labels"]
    for b, s in enumerate(samples[:2]):
        target = torch.tensor(proc.target_ids(s.reasoning, s.tokens))
        assert torch.equal(labels[b][labels[b] != -100], target)
        # <|traj_future_start|> sits right after the text and <|cot_end|>
        assert (
            batch["input_ids"][b, batch["future_start"][b]] == proc.special_ids["traj_future_start"]
        )
    assert int(batch["is_trajectory"][0].sum()) == 128


def test_losses_go_down_on_a_fixed_batch(init_checkpoint, samples):
    torch.manual_seed(0)
    policy = AlpamayoPolicy.from_pretrained(init_checkpoint)
    batch = training_batch(policy.processor, samples[:4])
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    history = []
    for _ in range(25):
        # the same flow times and noise every step: the loss is a function of the weights
        losses = sft_losses(policy, batch, generator=torch.Generator().manual_seed(0))
        total = losses["ce_text"] + losses["ce_trajectory"] + losses["fm"]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    for key in ("ce_text", "ce_trajectory", "fm"):
        first, last = history[0][key], history[-1][key]
        assert last < 0.6 * first, (key, first, last)


def state(path):
    out = {}
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        for key in f.keys():
            out[key] = f.get_tensor(key)
    return out


def test_training_writes_a_loadable_checkpoint(init_checkpoint, dataset, tmp_path):
    settings = TrainSettings(steps=3, batch_size=2, lr=1e-3, warmup_steps=0, num_workers=0,
                             log_every=1)  # fmt: skip
    records = train_sft(init_checkpoint, dataset, tmp_path / "out", settings)
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in records)
    policy = AlpamayoPolicy.from_pretrained(tmp_path / "out")  # strict: zero missing keys
    assert policy.load_report.missing == () and policy.load_report.unexpected == ()
    before, after = state(init_checkpoint), state(tmp_path / "out")
    assert set(before) == set(after)
    assert not torch.equal(before["expert.norm.weight"], after["expert.norm.weight"])
    assert (tmp_path / "out" / "train_log.jsonl").is_file()


def test_freeze_vlm_trains_the_expert_only(init_checkpoint, dataset, tmp_path):
    settings = TrainSettings(steps=2, batch_size=2, warmup_steps=0, num_workers=0,
                             freeze_vlm=True)  # fmt: skip
    train_sft(init_checkpoint, dataset, tmp_path / "out", settings)
    before, after = state(init_checkpoint), state(tmp_path / "out")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and not any(k.startswith("vlm.") for k in changed)
    assert any(k.startswith("expert.") for k in changed)


def test_lora_is_merged_into_the_released_layout(init_checkpoint, dataset, tmp_path):
    settings = TrainSettings(steps=3, batch_size=2, lr=1e-2, warmup_steps=0, num_workers=0,
                             lora_rank=4)  # fmt: skip
    train_sft(init_checkpoint, dataset, tmp_path / "out", settings)
    before, after = state(init_checkpoint), state(tmp_path / "out")
    assert set(before) == set(after)  # no lora_* keys, no base_layer names
    q = "vlm.model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(before[q], after[q])  # the adapter was merged in
    vision = "vlm.model.visual.blocks.0.mlp.linear_fc1.weight"
    assert torch.equal(before[vision], after[vision])  # not adapted, frozen
    AlpamayoPolicy.from_pretrained(tmp_path / "out")


def test_a_failed_run_leaves_the_earlier_checkpoint_untouched(
    init_checkpoint, dataset, tmp_path, monkeypatch
):
    """Training into a folder that holds a checkpoint writes beside it: a run failing at
    its 2nd step leaves the folder as it was (what it wrote, its log and step checkpoint,
    in out.incomplete); a run that finishes replaces the folder, with a log of its own."""
    import alpamayo_ros.training.trainer as trainer

    out = tmp_path / "out"
    settings = TrainSettings(steps=2, batch_size=2, warmup_steps=0, num_workers=0,
                             log_every=1, save_every=1)  # fmt: skip
    train_sft(init_checkpoint, dataset, out, settings)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    steps = []
    backward = trainer.Accelerator.backward

    def failing(self, loss, **kw):
        steps.append(1)
        if len(steps) == 2:
            raise RuntimeError("CUDA out of memory")
        return backward(self, loss, **kw)

    monkeypatch.setattr(trainer.Accelerator, "backward", failing)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train_sft(init_checkpoint, dataset, out, settings)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    incomplete = tmp_path / "out.incomplete"
    assert (incomplete / "step-1" / "model.safetensors").is_file()
    assert len((incomplete / "train_log.jsonl").read_text().splitlines()) == 1
    monkeypatch.undo()
    train_sft(init_checkpoint, dataset, out, TrainSettings(steps=1, batch_size=2,
              warmup_steps=0, num_workers=0, log_every=1))  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 1  # not appended
    assert not (out / "step-1").exists()  # the earlier run's, gone with it
    AlpamayoPolicy.from_pretrained(out)


def _damage_a_sample(dataset, out):
    """A copy of the dataset whose first shard has one sample with a frame that is no JPEG;
    returns that sample's key."""
    import io
    import shutil
    import tarfile

    shutil.copytree(dataset, out)
    shard = sorted(out.glob("shard-*.tar"))[0]
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    key = members[0][0].name.partition(".")[0]
    with tarfile.open(shard, "w") as tar:
        for member, data in members:
            if member.name == f"{key}.cam1.2.jpg":
                data = b"not a jpeg"
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return key


def test_a_damaged_sample_is_skipped_counted_and_named(init_checkpoint, dataset, tmp_path, caplog):
    """One unreadable frame stopped a training run (ValueError naming it); now the sample is
    skipped, named once in a warning and counted in the log, also when DataLoader workers
    read it."""
    damaged = tmp_path / "data"
    key = _damage_a_sample(dataset, damaged)
    for other in sorted(damaged.glob("shard-*.tar"))[1:]:
        other.unlink()  # one shard of 8: both workers read it, each in 2 batches of 4
    settings = TrainSettings(steps=4, batch_size=4, warmup_steps=0, num_workers=2, log_every=1)
    with caplog.at_level("WARNING", logger="alpamayo_ros.training.dataset"):
        records = train_sft(init_checkpoint, damaged, tmp_path / "out", settings)
    assert [r["step"] for r in records] == [1, 2, 3, 4] and records[-1]["damaged_parts"] == 1
    said = [r.getMessage() for r in caplog.records]
    assert said[0].startswith("skipped: ") and said[0].endswith(
        f"shard-000000.tar: sample {key} is malformed (ValueError: image 6 is not a readable JPEG)"
    )
    assert said[1:] == [f"1 damaged parts of {damaged} were skipped (named above)"]
    AlpamayoPolicy.from_pretrained(tmp_path / "out")


def test_a_dataset_with_no_readable_sample_stops_the_run(init_checkpoint, tmp_path):
    """A shard holding no sample (an empty tar) made training loop for ever, epoch after
    empty epoch; a dataset of damaged shards alone stops naming the first."""
    import tarfile

    from alpamayo_ros.training.trainer import GRPOTrainSettings, train_grpo

    empty = tmp_path / "empty"
    empty.mkdir()
    tarfile.open(empty / "shard-000000.tar", "w").close()
    settings = TrainSettings(steps=1, batch_size=1, warmup_steps=0, num_workers=0)
    with pytest.raises(ValueError, match=r"empty: no readable sample in the dataset$"):
        train_sft(init_checkpoint, empty, tmp_path / "out", settings)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "shard-000000.tar").write_bytes(b"\x07" * 4096)
    with pytest.raises(
        ValueError,
        match=r"garbage: no readable sample in the dataset \(damaged "
        r"parts skipped: 1, the first: .*shard-000000.tar: bytes 0-4096 are not",
    ):
        train_grpo(init_checkpoint, garbage, tmp_path / "out", GRPOTrainSettings(steps=1))
    assert not (tmp_path / "out" / "model.safetensors").exists()
