"""Training loops: SFT (cross-entropy + flow matching) and GRPO, on Hugging Face accelerate.

accelerate supplies the distribution (one process, DDP under `torchrun` or `accelerate
launch`, FSDP with an accelerate FSDP config), mixed precision (bf16 autocast) and gradient
accumulation; PEFT supplies LoRA adapters on the VLM's language model. The same command
runs on a laptop CPU and on 8 GPUs: only the launcher changes. Checkpoints are written in
the released layout (LoRA merged), so `AlpamayoPolicy.from_pretrained` and the nodes load
what training writes.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from alpamayo_ros.core.atomic_output import finish_staging, prepare_staging, staging_folder
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.tiny import UNTRAINED_KEY
from alpamayo_ros.training.dataset import DamagedPart, DamageLog, ShardDataset
from alpamayo_ros.training.grpo import grpo_step
from alpamayo_ros.training.objectives import DAMAGED, Collator, sft_losses, token_logprobs
from alpamayo_ros.training.rewards import CombinedReward, RewardFn
from alpamayo_ros.training.settings import GRPOTrainSettings, TrainSettings

log = logging.getLogger(__name__)

# LoRA targets: the projections of the VLM's language model (not the vision tower, not the
# expert, which train in full).
LORA_TARGETS = r"vlm\.model\.language_model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj"


class SFTModule(nn.Module):
    """The SFT losses as a module forward, so DDP and FSDP see the computation."""

    def __init__(self, policy: AlpamayoPolicy, settings: TrainSettings) -> None:
        super().__init__()
        self.policy = policy
        self.settings = settings

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.settings
        losses = sft_losses(
            self.policy, batch, flow_matching=s.fm_weight > 0, insulate_vlm=s.insulate_vlm
        )
        total = s.ce_text_weight * losses["ce_text"]
        total = total + s.ce_trajectory_weight * losses["ce_trajectory"]
        if "fm" in losses:
            total = total + s.fm_weight * losses["fm"]
        losses["loss"] = total
        return losses


def prepare_parameters(policy: AlpamayoPolicy, settings: TrainSettings) -> nn.Module:
    """Freeze what the settings freeze and add LoRA adapters; returns the module to train
    (a PEFT model when lora_rank > 0, else the policy)."""
    if settings.freeze_vlm:
        policy.vlm.requires_grad_(False)
    elif settings.freeze_vision:
        policy.vlm.model.visual.requires_grad_(False)
    if settings.lora_rank <= 0:
        return policy
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.lora_rank, lora_alpha=settings.lora_alpha, target_modules=LORA_TARGETS
    )
    model = get_peft_model(policy, config)  # freezes everything but the adapters
    for module in (policy.expert, policy.action_in_proj, policy.action_out_proj):
        module.requires_grad_(True)
    return model


def released_policy(model: nn.Module) -> AlpamayoPolicy:
    """The policy with LoRA adapters merged in (a copy when there are adapters), ready for
    save_pretrained in the released layout; its config no longer says it is untrained."""
    merge = getattr(model, "merge_and_unload", None)
    if callable(merge):
        policy = copy.deepcopy(model).merge_and_unload()  # type: ignore[operator]
    else:
        policy = model
    assert isinstance(policy, AlpamayoPolicy)
    policy.config.data.pop(UNTRAINED_KEY, None)
    policy.untrained = False
    return policy


class _JsonLog:
    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in record.items()))  # fmt: skip


def finite_losses(losses: dict[str, Any], step: int, log_file: Path) -> dict[str, float]:
    """The losses as numbers, or RuntimeError when the total is not finite (diverged, or
    a bad batch): the run stops before it writes its weights (a staged earlier result stays
    in place). Under DDP the rank that meets it stops; the others wait at their next
    collective until the launcher ends them."""
    values = {k: float(v.detach() if isinstance(v, torch.Tensor) else v) for k, v in losses.items()}
    if not math.isfinite(values["loss"]):
        parts = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        raise RuntimeError(
            f"step {step}: the loss is not finite ({parts}); training stopped without writing "
            f"its weights (log so far: {log_file}); a lower learning rate may help"
        )
    return values


def _finish(
    accelerator: Accelerator, model: nn.Module, out_dir: Path, target: Path, damage: DamageLog
) -> None:
    """The end of a finished run: the damaged parts of the dataset summed up, the weights
    written (main process) and the staged folder moved into place."""
    damage.summarise()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        released_policy(model).save_pretrained(out_dir)
        finish_staging(out_dir, target)


def train_sft(
    checkpoint: str | Path,
    dataset: str | Path,
    out_dir: str | Path,
    settings: TrainSettings | None = None,
) -> list[dict[str, Any]]:
    """Supervised fine-tuning of `checkpoint` on a dataset from build_dataset; writes the
    trained checkpoint to out_dir (and out_dir/step-N every save_every steps) and
    out_dir/train_log.jsonl. Where out_dir holds an earlier result, the run writes into
    out_dir.incomplete, which replaces it only when the run has finished (a failed run
    leaves it untouched). Returns the log records."""
    s = settings or TrainSettings()
    target = Path(out_dir)
    out_dir = staging_folder(target)  # decided by every process before any writes
    accelerator = Accelerator(
        gradient_accumulation_steps=s.grad_accum, mixed_precision=s.mixed_precision
    )
    accelerator.wait_for_everyone()
    set_seed(s.seed)
    policy = AlpamayoPolicy.from_pretrained(checkpoint)
    assert policy.processor is not None
    trainable = prepare_parameters(policy, s)
    module = SFTModule(policy, s)
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, s.warmup_steps, s.steps)
    data = ShardDataset(dataset, shuffle=True, seed=s.seed)
    loader = torch.utils.data.DataLoader(
        data, batch_size=s.batch_size, collate_fn=Collator(policy.processor),
        num_workers=s.num_workers, persistent_workers=s.num_workers > 0,
    )  # fmt: skip
    module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    if accelerator.is_main_process:
        prepare_staging(out_dir, target)
        (out_dir / "train_settings.json").write_text(
            json.dumps(
                {"checkpoint": str(checkpoint), "dataset": str(dataset), **asdict(s)}, indent=2
            )
            + "\n"
        )
    jlog = _JsonLog(out_dir / "train_log.jsonl", accelerator.is_main_process)
    records: list[dict[str, Any]] = []
    module.train()
    step, epoch, micro = 0, 0, 0
    sums: dict[str, float] = {}
    damage = DamageLog(dataset)
    start = time.perf_counter()
    while step < s.steps:
        data.set_epoch(epoch)
        batches = 0
        for batch in loader:
            damage.add(batch.pop(DAMAGED))
            if not batch:  # damaged parts alone
                continue
            batches += 1
            with accelerator.accumulate(module):
                losses = module(batch)
                values = finite_losses(losses, step + 1, out_dir / "train_log.jsonl")
                accelerator.backward(losses["loss"])
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, s.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            micro += 1
            if not accelerator.sync_gradients:
                continue
            step += 1
            if step % s.log_every == 0 or step == s.steps:
                record = {"step": step, "epoch": epoch, "lr": scheduler.get_last_lr()[0]}
                record |= {k: v / micro for k, v in sums.items()}
                record["seconds"] = time.perf_counter() - start
                record = damage.note(record)
                records.append(record)
                jlog.write(record)
                sums, micro = {}, 0
            if s.save_every and step % s.save_every == 0 and accelerator.is_main_process:
                released_policy(trainable).save_pretrained(out_dir / f"step-{step}")
            if step >= s.steps:
                break
        if not batches:
            raise damage.nothing_read()
        epoch += 1
    _finish(accelerator, trainable, out_dir, target, damage)
    return records


class LogprobModule(nn.Module):
    """Token log-probabilities as a module forward, so DDP and FSDP see the computation."""

    def __init__(self, policy: AlpamayoPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return token_logprobs(self.policy, batch)


def train_grpo(
    checkpoint: str | Path,
    dataset: str | Path,
    out_dir: str | Path,
    settings: GRPOTrainSettings | None = None,
    reward_fn: RewardFn | None = None,
    reference: str | Path | None = None,
) -> list[dict[str, Any]]:
    """GRPO post-training of `checkpoint` (reference policy: `reference`, default the same
    checkpoint, frozen) with `reward_fn` (default: CombinedReward.default()); writes the
    result to out_dir and out_dir/grpo_log.jsonl (staged as train_sft's: a failed run
    leaves an earlier result untouched)."""
    s = settings or GRPOTrainSettings()
    target = Path(out_dir)
    out_dir = staging_folder(target)  # decided by every process before any writes
    accelerator = Accelerator(mixed_precision=s.mixed_precision)
    accelerator.wait_for_everyone()
    set_seed(s.seed)
    policy = AlpamayoPolicy.from_pretrained(checkpoint, device=accelerator.device)
    ref = AlpamayoPolicy.from_pretrained(reference or checkpoint, device=accelerator.device)
    ref.requires_grad_(False)
    ref.eval()
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=s.lr)
    module, optimizer = accelerator.prepare(LogprobModule(policy), optimizer)
    reward = reward_fn or CombinedReward.default()
    data = ShardDataset(dataset, shuffle=True, seed=s.seed)
    if accelerator.is_main_process:
        prepare_staging(out_dir, target)
    jlog = _JsonLog(out_dir / "grpo_log.jsonl", accelerator.is_main_process)
    records = []
    prompts: list = []
    step, epoch = 0, 0
    damage = DamageLog(dataset)
    start = time.perf_counter()
    while step < s.steps:
        data.set_epoch(epoch)
        read = 0
        for sample in data:
            if isinstance(sample, DamagedPart):
                damage.add([str(sample)])
                continue
            read += 1
            prompts.append(sample)
            if len(prompts) < s.prompts_per_step:
                continue
            stats = grpo_step(
                policy, ref, prompts, reward, optimizer, s.grpo, seed=s.seed + step,
                backward=accelerator.backward, logprob_fn=module,
            )  # fmt: skip
            prompts = []
            finite_losses({"loss": stats["loss"]}, step + 1, out_dir / "grpo_log.jsonl")
            step += 1
            if step % s.log_every == 0:
                record = {"step": step, **stats, "seconds": time.perf_counter() - start}
                parts = getattr(reward, "last", {})
                record |= {f"reward_{k}": float(sum(v) / len(v)) for k, v in parts.items() if v}
                record = damage.note(record)
                records.append(record)
                jlog.write(record)
            if step >= s.steps:
                break
        if not read:
            raise damage.nothing_read()
        epoch += 1
    _finish(accelerator, policy, out_dir, target, damage)
    return records
