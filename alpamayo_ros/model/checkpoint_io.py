"""Checkpoint I/O of the released layout: config.json, safetensors (one file, or shards
with model.safetensors.index.json), the processor's files; loading without a float32 copy
(built in the target dtype on the target device, filled tensor by tensor), and the lookup
of a checkpoint folder (a local folder, or a repository in the local Hugging Face cache:
nothing is downloaded).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from alpamayo_ros.core.cameras import ALPAMAYO1_5
from alpamayo_ros.model.config import AlpamayoConfig, ConfigError

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Buffers the model rebuilds from its config: Alpamayo 1 checkpoints store them, Alpamayo
# 1.5 made them non-persistent (its shards may lack them): absent is not "missing".
DERIVED_BUFFERS = re.compile(
    r"^(action_space\.(accel|curvature)_(mean|std)|action_in_proj\.(.+\.)?freqs)$"
)


class CheckpointError(RuntimeError):
    """A checkpoint's weights do not fit the model its config describes, or cannot be read."""


def _readable(path: Path) -> None:
    """The mode of a file written by us (safetensors writes 0600): rw-r--r-- less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def _indexed_files(path: Path) -> list[str]:
    """The shard file names a model.safetensors.index.json maps weights to; CheckpointError
    naming the file when it is not such an index."""
    try:
        weight_map = json.loads(path.read_text())["weight_map"]
        files = sorted({str(name) for name in weight_map.values()})
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"{path}: not a readable weight index ({type(err).__name__}: {err}); it maps "
            'each weight to its shard file: {"weight_map": {"name": "file", ...}}'
        ) from err
    if not files:
        raise CheckpointError(f"{path}: its weight_map lists no shard file")
    return files


@contextmanager
def _open_weights(path: Path) -> Iterator[Any]:
    """safe_open of a .safetensors file, its failures as CheckpointError naming the file."""
    try:
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError) as err:
        what = "truncated or corrupt" if "metadata" in str(err) or "header" in str(err) else ""
        raise CheckpointError(
            f"{path}: cannot read the checkpoint file{': ' + what if what else ''} ({err})"
        ) from err
    with handle as f:
        yield f


@dataclass(frozen=True)
class LoadReport:
    """Keys of the checkpoint that the model lacks (unexpected) and the reverse (missing)."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()


def save_checkpoint(
    module: nn.Module,
    config: AlpamayoConfig,
    processor: Any,
    directory: str | Path,
    max_shard_bytes: int = 5 * 1024**3,
) -> None:
    """config.json, safetensors of module's state (sharded with an index above
    max_shard_bytes), and the processor's tokenizer and image-processor files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config.save(directory)
    state = {k: v.detach().contiguous().cpu() for k, v in sorted(module.state_dict().items())}
    if config.family == ALPAMAYO1_5:  # as its release: these are not persistent
        state = {k: v for k, v in state.items() if not DERIVED_BUFFERS.match(k)}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(directory / SINGLE_FILE), metadata={"format": "pt"})
        _readable(directory / SINGLE_FILE)
    else:
        weight_map = {}
        for i, shard in enumerate(shards, start=1):
            name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(directory / name), metadata={"format": "pt"})
            _readable(directory / name)
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(t.numel() * t.element_size() for t in state.values())
        index = {
            "metadata": {"total_size": total},
            "weight_map": dict(sorted(weight_map.items())),
        }
        (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    if processor is not None:
        processor.save_pretrained(directory)


def load_checkpoint(module: nn.Module, directory: str | Path, strict: bool = True) -> LoadReport:
    """Copy the checkpoint's tensors into `module`, shard by shard.

    Raises CheckpointError naming the key on a shape mismatch, an integer tensor where the
    model has floating point (or the reverse), a NaN or infinite value, and (strict) on any
    missing or unexpected key; the report lists them either way. DERIVED_BUFFERS may be
    absent (they keep the values built from the config).
    """
    directory = Path(directory)
    if (directory / INDEX_FILE).is_file():
        files = _indexed_files(directory / INDEX_FILE)
    elif (directory / SINGLE_FILE).is_file():
        files = [SINGLE_FILE]
    else:
        raise CheckpointError(f"no {SINGLE_FILE} or {INDEX_FILE} in {directory}")
    own = module.state_dict()
    seen: set[str] = set()
    unexpected: list[str] = []
    with torch.no_grad():
        for name in files:
            with _open_weights(directory / name) as f:
                for key in f.keys():
                    if key not in own:
                        unexpected.append(key)
                        continue
                    tensor = f.get_tensor(key)
                    if tuple(tensor.shape) != tuple(own[key].shape):
                        raise CheckpointError(
                            f"{name}: {key} has shape {tuple(tensor.shape)}, the model "
                            f"built from config.json expects {tuple(own[key].shape)}"
                        )
                    if tensor.is_floating_point() != own[key].is_floating_point():
                        raise CheckpointError(
                            f"{name}: {key} is {str(tensor.dtype)[6:]}, the model built from "
                            f"config.json holds {str(own[key].dtype)[6:]} there (not weights?)"
                        )
                    own[key].copy_(tensor)
                    # checked where it landed: on a GPU at its bandwidth, and after the cast
                    # (float32 beyond float16's range becomes inf)
                    if own[key].is_floating_point() and not bool(own[key].isfinite().all()):
                        bad = int((~own[key].isfinite()).sum())
                        raise CheckpointError(
                            f"{name}: {key} holds {bad} NaN or infinite value(s) as "
                            f"{str(own[key].dtype)[6:]} (a damaged or diverged checkpoint)"
                        )
                    seen.add(key)
    absent = {k for k in set(own) - seen if not DERIVED_BUFFERS.match(k)}
    report = LoadReport(tuple(sorted(absent)), tuple(sorted(unexpected)))
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(
            f"checkpoint {directory} does not match its config: "
            f"{len(report.missing)} missing (e.g. {list(report.missing[:3])}), "
            f"{len(report.unexpected)} unexpected (e.g. {list(report.unexpected[:3])})"
        )
    return report


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """torch's default floating dtype set to `dtype` within the block (as transformers'
    from_pretrained builds models), so parameters are created in it."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


DTYPES = ("float32", "bfloat16", "float16")


def resolve_device(
    device: torch.device | str, dtype: torch.dtype | str
) -> tuple[torch.device, torch.dtype]:
    """("auto" | name, "auto" | name) -> the device and dtype to load on: auto picks cuda
    when available, else cpu; bfloat16 on cuda, float32 elsewhere. A device that is not
    there (cuda with a CPU build of torch, or with no GPU visible; cuda:N past the last
    one) or a name that is no device or dtype: ConfigError naming it."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(
            f"device {device!r} is not a torch device (cpu, cuda, cuda:N, auto)"
        ) from None
    if dev.type == "cuda":
        _check_cuda(dev, device)
    if dtype == "auto":
        return dev, torch.bfloat16 if dev.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ConfigError(f"dtype {dtype!r} is not one of auto, {', '.join(DTYPES)}")
        return dev, getattr(torch, dtype)
    return dev, dtype


def _check_cuda(dev: torch.device, name: torch.device | str) -> None:
    if not torch.backends.cuda.is_built():
        raise ConfigError(
            f"device {str(name)!r}: this torch ({torch.__version__}) is built without CUDA; "
            "install a CUDA build of torch, or use device cpu"
        )
    count = torch.cuda.device_count()
    if count == 0:
        raise ConfigError(
            f"device {str(name)!r}: no CUDA device is visible (nvidia-smi; "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
            "or use device cpu"
        )
    if dev.index is not None and dev.index >= count:
        raise ConfigError(
            f"device {str(name)!r}: {count} CUDA device(s) visible, cuda:0 to cuda:{count - 1}"
        )


def resolve_checkpoint(path: str | Path) -> Path:
    """A local folder, or a repository id found in the local Hugging Face cache."""
    p = Path(path).expanduser()
    if p.is_dir():
        return p
    if "/" in str(path) and not p.exists():
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(str(path), local_files_only=True))
        except Exception as err:  # not in the cache: say so, never download
            raise ConfigError(
                f"{path!r} is neither a folder nor a repository in the local Hugging Face "
                f"cache ({err.__class__.__name__}); download it on a machine with access "
                "(hf download REPO --local-dir DIR) and pass the folder"
            ) from err
    raise ConfigError(f"checkpoint folder not found: {path}")
