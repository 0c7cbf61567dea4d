"""Training settings, declared once: each field's default, range and description
(`core.settings_table`), checked when made; the train-sft and train-grpo flags are derived
from them. torch-free, so the command line builds its flags without loading torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from alpamayo_ros.core.settings_table import SettingError, check_settings, setting


@dataclass(frozen=True)
class TrainSettings:
    """SFT: AdamW with linear warm-up and cosine decay, the loss weights, what trains; each
    field's range and description beside its default (the train-sft flags are derived from
    them)."""

    steps: int = setting(1000, "optimiser steps", low=1)
    batch_size: int = setting(8, "samples per step and process, before accumulation", low=1)
    grad_accum: int = setting(1, "micro-batches per optimiser step", low=1)
    lr: float = setting(1e-4, "peak learning rate (AdamW)", above=0)
    weight_decay: float = setting(0.01, "AdamW weight decay", low=0)
    warmup_steps: int = setting(50, "linear warm-up steps", low=0, flag="--warmup")
    mixed_precision: str = setting("no", "bf16 autocast or none", choices=("no", "bf16"))
    ce_text_weight: float = setting(
        1.0, "weight of the causal chain's cross-entropy", low=0, flag="--text-weight"
    )
    ce_trajectory_weight: float = setting(
        0.1, "weight of the trajectory tokens' cross-entropy", low=0,
        flag="--trajectory-token-weight",
    )  # fmt: skip
    fm_weight: float = setting(1.0, "flow-matching loss weight (0: no expert loss)", low=0)
    insulate_vlm: bool = setting(
        True,
        "the flow-matching loss trains the VLM too (clears insulate_vlm)",
        flag="--fm-into-vlm",
        negate=True,
    )
    freeze_vlm: bool = setting(False, "train the action expert only")
    freeze_vision: bool = setting(False, "keep the vision tower fixed")
    lora_rank: int = setting(0, "LoRA adapters on the language model (PEFT); 0: none", low=0)
    lora_alpha: int = setting(16, "LoRA scale", above=0)
    num_workers: int = setting(2, "DataLoader workers", low=0, flag="--workers")
    seed: int = setting(0, "seed of data order, dropout and noise", low=0, high=2**32 - 1)
    save_every: int = setting(0, "steps between checkpoints in OUT/step-N; 0: at the end", low=0)
    log_every: int = setting(10, "steps between log lines", low=1)
    max_grad_norm: float = setting(1.0, "gradient clipping norm", above=0)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.ce_text_weight + self.ce_trajectory_weight + self.fm_weight == 0:
            raise SettingError(
                "TrainSettings", "fm_weight", "must be > 0 when both cross-entropy weights are 0"
            )


@dataclass(frozen=True)
class GRPOSettings:
    """The GRPO objective and its rollouts; each field's range and description beside its
    default."""

    group_size: int = setting(4, "rollouts per prompt (advantages are relative)", low=2)
    clip_low: float = setting(0.2, "ratio clipping below 1", low=0, below=1)
    clip_high: float = setting(0.28, "ratio clipping above 1", low=0)
    kl_beta: float = setting(0.04, "weight of the KL term to the reference policy", low=0)
    temperature: float = setting(1.0, "reasoning sampling temperature", above=0)
    top_p: float = setting(1.0, "reasoning nucleus", above=0, high=1)
    trajectory_temperature: float = setting(
        1.0, "trajectory-token sampling temperature (0: greedy)", low=0
    )
    max_reasoning_tokens: int = setting(64, "causal-chain tokens per rollout", low=1)
    updates: int = setting(1, "optimiser steps per rollout batch", low=1)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class GRPOTrainSettings:
    """GRPO iterations over the dataset's prompts; each field's range and description beside
    its default (the train-grpo flags are derived from them and from GRPOSettings')."""

    steps: int = setting(100, "GRPO iterations", low=1)
    prompts_per_step: int = setting(
        2, "prompts per iteration (each rolled out group_size times)", low=1, flag="--prompts"
    )
    lr: float = setting(1e-5, "learning rate (AdamW)", above=0)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    seed: int = setting(0, "seed of prompt order and rollouts", low=0, high=2**32 - 1)
    log_every: int = setting(1, "iterations between log lines", low=1)
    mixed_precision: str = setting("no", "bf16 autocast or none", choices=("no", "bf16"))

    def __post_init__(self) -> None:
        check_settings(self)
