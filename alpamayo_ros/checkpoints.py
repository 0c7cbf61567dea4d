"""Where the package's own checkpoint lives, and the model names that stand for it.

Torch-free, so node parameters and launch files can resolve `model: demo` without torch.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CHECKPOINT = Path(__file__).resolve().parent / "demo_checkpoint"
DEMO_MODEL = "demo"  # the `model` value that means DEMO_CHECKPOINT


def resolve_model(model: str) -> str:
    """The checkpoint a `model` setting names: "demo" -> the shipped demo checkpoint (trained
    on synthetic drives only), anything else unchanged ("" = no model)."""
    return str(DEMO_CHECKPOINT) if model == DEMO_MODEL else model
