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
