"""Where the package's own checkpoint lives, and the model names that stand for it.

Torch-free, so node parameters and launch files can resolve `model: demo` without torch.
"""

from __future__ import annotations

import json
from pathlib import Path

DEMO_CHECKPOINT = Path(__file__).resolve().parent / "demo_checkpoint"
DEMO_MODEL = "demo"  # the `model` value that means DEMO_CHECKPOINT


def resolve_model(model: str) -> str:
    """The checkpoint a `model` setting names: "demo" -> the shipped demo checkpoint (trained
    on synthetic drives only), anything else unchanged ("" = no model)."""
    return str(DEMO_CHECKPOINT) if model == DEMO_MODEL else model


# config.json model_type -> checkpoint family (alpamayo_ros.core.cameras.FAMILIES).
MODEL_TYPES = {"alpamayo_r1": "alpamayo1", "alpamayo1_5": "alpamayo1_5"}


class CheckpointConfigError(ValueError):
    """A checkpoint folder whose config.json cannot say which model it holds."""


def model_family(model: str) -> str:
    """The family ("alpamayo1" or "alpamayo1_5") of a local checkpoint folder, read from its
    config.json without torch (so a node can check its camera rig before loading weights).
    A name that is not a local folder (a hub id in the local cache) is resolved by the
    model loader instead: "" is returned."""
    folder = Path(resolve_model(model)).expanduser()
    if not folder.is_dir():
        return ""
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointConfigError(f"no config.json in checkpoint folder {folder}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointConfigError(f"{path} is not readable JSON: {err}") from err
    model_type = data.get("model_type") if isinstance(data, dict) else None
    if model_type not in MODEL_TYPES:
        raise CheckpointConfigError(
            f"{path}: config field 'model_type' must be one of {sorted(MODEL_TYPES)}, "
            f"got {model_type!r}"
        )
    return MODEL_TYPES[model_type]
