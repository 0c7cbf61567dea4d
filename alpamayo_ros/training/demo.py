"""The demo model: a small checkpoint trained here, on the CPU, on synthetic drives.

`train_demo` does everything from nothing, deterministically from its seeds: synthetic
drives from `make-sample-bag` (lead vehicle braking, pedestrian crossing, clear road, and
both together) with their templated causal chains, a training and a held-out dataset,
a small random checkpoint in the released layout, SFT (cross-entropy on the causal chain
and the trajectory tokens, flow matching for the expert), and the held-out evaluation
against the constant-velocity baseline. `alpamayo-ros train-demo` runs it; the result
ships as the replay's default model (alpamayo_ros/demo_checkpoint/).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alpamayo_ros.bag.sample_drive import ScenarioKind, causal_chain_texts, write_sample_bag
from alpamayo_ros.core.atomic_output import refuse_a_file, written_atomically
from alpamayo_ros.core.camera_rig import CameraRig
from alpamayo_ros.model.processor import INSTRUCTION, SYSTEM_PROMPT
from alpamayo_ros.model.tiny import DESCRIPTION_KEY
from alpamayo_ros.training.dataset import build_dataset, load_samples
from alpamayo_ros.training.evaluate import evaluate_as_planner
from alpamayo_ros.training.trainer import TrainSettings, train_sft

log = logging.getLogger(__name__)

KINDS: tuple[ScenarioKind, ...] = ("combined", "lead_brake", "pedestrian", "clear")
TRAIN_SEED, TEST_SEED = 1000, 5000  # scene seeds: the held-out scenes never overlap
LONG_TRAIN_SEED = 3000  # the long training drives' scenes


@dataclass(frozen=True)
class DemoSettings:
    """train_bags / test_bags: synthetic drives (kinds in turn) of `duration` s, rendered
    at width x height; model_size, pixels: make_tiny_checkpoint's preset and image budget
    (its tokenizer learns merges from the prompt and the causal chains); train: the SFT
    settings;
    long_train_bags: further training drives of long_train_duration s (lasting slow
    follows and stops, which short drives hold only briefly);
    eval_samples: held-out samples evaluated (evenly spaced); eval_plan_samples:
    trajectory samples per plan, chosen from as the planner does (the replay's default)."""

    train_bags: int = 64
    test_bags: int = 12
    duration: float = 12.0
    train_duration: float | None = None  # the training drives' length (None: duration)
    long_train_bags: int = 0  # more training drives of long_train_duration (kinds in turn)
    long_train_duration: float = 60.0
    width: int = 240
    height: int = 136
    model_size: str = "small"
    pixels: int = 32768
    model_seed: int = 0
    eval_samples: int = 240
    eval_plan_samples: int = 6
    train: TrainSettings = field(
        default_factory=lambda: TrainSettings(
            steps=1500, batch_size=8, lr=2e-3, warmup_steps=50, ce_trajectory_weight=0.1,
            fm_weight=1.0, insulate_vlm=False, num_workers=1, log_every=25,
        )
    )  # fmt: skip


def synthetic_bags(
    out_dir: Path, count: int, seed: int, settings: DemoSettings, duration: float | None = None
) -> list[Path]:
    """`count` drives of `duration` s (default: settings.duration), kinds in turn, seeds
    seed, seed + 1, ... (skips existing ones)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bags = []
    for i in range(count):
        path = out_dir / f"drive_{seed + i:05d}"
        if not (path / "coc_annotations.jsonl").is_file():
            shutil.rmtree(path, ignore_errors=True)
            write_sample_bag(
                path, seed=seed + i, kind=KINDS[i % len(KINDS)],
                duration=duration or settings.duration,
                width=settings.width, height=settings.height,
            )  # fmt: skip
        bags.append(path)
    return bags


def _dataset(work: Path, name: str, bags: list[Path]) -> Path:
    out = work / f"{name}_dataset"
    if (out / "index.json").is_file():
        return out
    notes = work / f"{name}_annotations.jsonl"
    notes.write_text("".join((b / "coc_annotations.jsonl").read_text() for b in bags))
    build_dataset(bags, notes, out, CameraRig.released_default(), progress=False)
    return out


def held_out_samples(work: Path, settings: DemoSettings) -> list:
    """The evaluation samples: evenly spaced over the held-out drives' dataset."""
    test = synthetic_bags(work / "test_bags", settings.test_bags, TEST_SEED, settings)
    samples = load_samples(_dataset(work, "test", test))
    stride = max(1, len(samples) // settings.eval_samples)
    return samples[::stride][: settings.eval_samples]


def evaluate_demo(checkpoint: str | Path, work: Path, settings: DemoSettings) -> dict[str, Any]:
    """Held-out metrics of a checkpoint (the bench/eval command), planned as the replay and
    the planner node do by default."""
    from alpamayo_ros.model.policy import AlpamayoPolicy
    from alpamayo_ros.planning.settings import PlannerSettings

    policy = AlpamayoPolicy.from_pretrained(checkpoint)
    planner = PlannerSettings(num_samples=settings.eval_plan_samples, seed=0)
    return evaluate_as_planner(policy, held_out_samples(work, settings), planner).as_dict()


def training_bags(work: Path, s: DemoSettings) -> list[Path]:
    """The training drives (written when missing): train_bags of train_duration (or
    duration), then long_train_bags of long_train_duration, kinds in turn."""
    train = synthetic_bags(work / "train_bags", s.train_bags, TRAIN_SEED, s, s.train_duration)
    if s.long_train_bags:
        train += synthetic_bags(
            work / "long_train_bags", s.long_train_bags, LONG_TRAIN_SEED, s,
            s.long_train_duration,
        )  # fmt: skip
    return train


def train_demo(work: str | Path, out: str | Path, settings: DemoSettings | None = None) -> dict:
    """Build data, train and evaluate the demo checkpoint into `out` (see the module
    docstring); returns (and writes to out/demo_metrics.json) the held-out metrics."""
    from alpamayo_ros.model.tiny import make_tiny_checkpoint

    s = settings or DemoSettings()
    work, out = Path(work), Path(out)
    for folder in (work, out):  # before the drives are made, not after
        refuse_a_file(folder)
    train_data = _dataset(work, "train", training_bags(work, s))
    corpus = [SYSTEM_PROMPT, INSTRUCTION, "system\n", "user\n", "assistant\n"]
    corpus += causal_chain_texts()
    init = make_tiny_checkpoint(
        work / "init", seed=s.model_seed, pixels=s.pixels, size=s.model_size, corpus=corpus
    )
    # Written beside `out` and moved into place when complete: a failed or interrupted run
    # leaves the earlier checkpoint (by default the package's demo checkpoint) untouched.
    with written_atomically(out, create=False) as partial:
        records = train_sft(init, train_data, partial, s.train)
        metrics = evaluate_demo(partial, work, s)
        metrics["training"] = {"final": records[-1] if records else {}, "settings": asdict(s)}
        finalize_demo(partial, metrics)
    return metrics


def finalize_demo(out: Path, metrics: dict[str, Any]) -> None:
    """Write the held-out metrics beside the checkpoint and describe it in its config (the
    replay report shows the description)."""
    (out / "demo_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    config = json.loads((out / "config.json").read_text())
    config[DESCRIPTION_KEY] = (
        "demo checkpoint trained on synthetic drives only (alpamayo-ros train-demo); "
        f"held-out ADE at 3 s {metrics['model']['ade_3.0s']:.2f} m vs "
        f"{metrics['constant_velocity']['ade_3.0s']:.2f} m at constant velocity, "
        f"reasoning-action consistency {100 * metrics['consistency']:.0f} %; "
        "it knows nothing of real roads"
    )
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
