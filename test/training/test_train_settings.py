"""Training settings outside their range are refused before anything runs, named by field
(and on the command line by flag); a run whose loss stops being finite stops without
writing its weights."""

import math

import pytest

from alpamayo_ros.cli import main
from alpamayo_ros.training.settings import GRPOSettings, GRPOTrainSettings, TrainSettings
from alpamayo_ros.training.trainer import train_sft

# Each of these trained or wrote a checkpoint before: a negative warm-up trained at
# learning rate 0, a negative trajectory weight maximised its loss, a NaN weight dropped
# the flow-matching loss, a NaN KL weight wrote a checkpoint of NaN weights.
BAD_SFT = [
    ("warmup_steps", -1),
    ("lora_rank", -1),
    ("fm_weight", math.nan),
    ("ce_trajectory_weight", -1.0),
    ("num_workers", -1),
    ("seed", -1),
    ("save_every", -1),
    ("weight_decay", math.inf),
    ("lr", 0.0),
]
BAD_GRPO = [("kl_beta", math.nan), ("kl_beta", -1.0), ("max_reasoning_tokens", 0),
            ("top_p", 1.5), ("temperature", 0.0), ("group_size", 1)]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), BAD_SFT)
def test_sft_settings_outside_their_range_are_refused(name, value):
    with pytest.raises(ValueError, match=f"TrainSettings.{name} must be"):
        TrainSettings(**{name: value})


@pytest.mark.parametrize(("name", "value"), BAD_GRPO)
def test_grpo_settings_outside_their_range_are_refused(name, value):
    with pytest.raises(ValueError, match=f"GRPOSettings.{name} must be"):
        GRPOSettings(**{name: value})


def test_grpo_iterations_and_prompts_of_zero_are_refused():
    for name in ("steps", "prompts_per_step"):
        with pytest.raises(ValueError, match=f"GRPOTrainSettings.{name} must be >= 1"):
            GRPOTrainSettings(**{name: 0})


def test_all_loss_weights_zero_is_refused():
    with pytest.raises(ValueError, match="fm_weight must be > 0"):
        TrainSettings(ce_text_weight=0.0, ce_trajectory_weight=0.0, fm_weight=0.0)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train-sft", "CK", "DS", "--out", "O", "--warmup", "-1"], "--warmup must be >= 0"),
        (["train-sft", "CK", "DS", "--out", "O", "--workers", "-1"], "--workers must be >= 0"),
        (["train-sft", "CK", "DS", "--out", "O", "--fm-weight", "nan"], "--fm-weight must be a "),
        (["train-sft", "CK", "DS", "--out", "O", "--trajectory-token-weight", "-1"],
         "--trajectory-token-weight must be >= 0"),
        (["train-grpo", "CK", "DS", "--out", "O", "--kl-beta", "nan"], "--kl-beta must be a "),
        (["train-grpo", "CK", "DS", "--out", "O", "--prompts", "0"], "--prompts must be >= 1"),
        (["train-grpo", "CK", "DS", "--out", "O", "--steps", "0"], "--steps must be >= 1"),
    ],
)  # fmt: skip
def test_the_command_line_names_the_flag_before_anything_loads(argv, flag, capsys):
    assert main(argv) == 2  # CK, DS do not exist: the settings are checked first
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err, err


def test_a_diverging_run_stops_without_writing_weights(tiny_checkpoint, dataset, tmp_path):
    """lr 1e8: the loss is NaN within a few steps. The run stops naming the step and the
    losses; an earlier checkpoint in the folder stays (before: a checkpoint of NaN weights
    replaced it, 'trained 6 steps')."""
    out = tmp_path / "out"
    ok = TrainSettings(steps=1, batch_size=2, warmup_steps=0, num_workers=0, log_every=1)
    train_sft(tiny_checkpoint, dataset, out, ok)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    wild = TrainSettings(steps=8, batch_size=2, lr=1e8, warmup_steps=0, num_workers=0)
    with pytest.raises(RuntimeError, match=r"step \d: the loss is not finite \(.*loss=nan"):
        train_sft(tiny_checkpoint, dataset, out, wild)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not (tmp_path / "out.incomplete" / "model.safetensors").exists()
