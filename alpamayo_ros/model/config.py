"""Configuration of an Alpamayo-R1 checkpoint: reads and writes the released `config.json`.

The released config names its sub-modules by import path (`_target_`, hydra style). We map
each known path to our own class explicitly (TARGETS) and refuse unknown ones, naming the
field and the value. The VLM's own configuration (Qwen3-VL) is taken, in this order, from a
`vlm_config` entry (what our checkpoints write, so loading never needs a hub), or from a
built-in preset for the released base model (VLM_PRESETS). Nothing here downloads.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub.errors import StrictDataclassError
from transformers import Qwen3VLConfig, Qwen3VLTextConfig

from alpamayo_ros.checkpoints import MODEL_TYPES
from alpamayo_ros.core.cameras import ALPAMAYO1_5
from alpamayo_ros.core.tokens import BinLayout, ControlTokenizer, HistoryDeltaTokenizer
from alpamayo_ros.core.trajectory import UnicycleSpec

MODEL_TYPE = "alpamayo_r1"  # Alpamayo 1 (Alpamayo-R1); Alpamayo 1.5 is "alpamayo1_5"
MODEL_TYPE_1_5 = "alpamayo1_5"
ARCHITECTURES = {"alpamayo_r1": ["AlpamayoR1"], "alpamayo1_5": ["Alpamayo1_5"]}


def _released(*paths: str) -> set[str]:
    """Import paths of the release under both package names: Alpamayo 1.5 renamed the
    prefix alpamayo_r1. to alpamayo1_5. and changed nothing else."""
    return {p for path in paths for p in (path, path.replace("alpamayo_r1.", "alpamayo1_5.", 1))}


# Import paths used by the released configs (and by ours) -> what they are here.
ACTION_SPACE_TARGETS = _released(
    "alpamayo_r1.action_space.unicycle_accel_curvature.UnicycleAccelCurvatureActionSpace",
    "alpamayo_ros.model.action_expert.ActionSpace",
)
DIFFUSION_TARGETS = _released(
    "alpamayo_r1.diffusion.flow_matching.FlowMatching",
    "alpamayo_ros.model.flow_matching.FlowMatching",
)
ACTION_IN_PROJ_TARGETS = _released(
    "alpamayo_r1.models.action_in_proj.PerWaypointActionInProjV2",
    "alpamayo_ros.model.action_expert.PerWaypointActionInProj",
)
ACTION_OUT_PROJ_TARGETS = {"torch.nn.Linear", "torch.nn.modules.linear.Linear"}
HISTORY_TOKENIZER_TARGETS = _released(
    "alpamayo_r1.models.delta_tokenizer.DeltaTrajectoryTokenizer",
    "alpamayo_ros.core.tokens.HistoryDeltaTokenizer",
)
FUTURE_TOKENIZER_TARGETS = _released(
    "alpamayo_r1.action_space.discrete_action_space.DiscreteTrajectoryTokenizer",
    "alpamayo_ros.core.tokens.ControlTokenizer",
)

# The 29 special tokens of the release, in the order they are added to the vocabulary
# (after the trajectory tokens <i0>..<iN-1>); <|image_pad|> already exists in Qwen's.
SPECIAL_TOKEN_NAMES: tuple[str, ...] = (
    "prompt_start", "prompt_end", "image_start", "image_pre_tkn", "image_end",
    "traj_history_start", "traj_history_pre_tkn", "traj_history_end", "cot_start", "cot_end",
    "meta_action_start", "meta_action_end", "traj_future_start", "traj_future_pre_tkn",
    "traj_future_end", "traj_history", "traj_future", "image_pad", "vectorized_wm",
    "vectorized_wm_start", "vectorized_wm_end", "vectorized_wm_pre_tkn", "route_start",
    "route_pad", "route_end", "question_start", "question_end", "answer_start", "answer_end",
)  # fmt: skip


# Alpamayo 1.5 renamed nine unused specials to <|_padding_0|>..<|_padding_8|> at the same
# positions (every token the model uses keeps its id).
RENAMED_IN_1_5: tuple[str, ...] = (
    "image_pre_tkn", "traj_history_pre_tkn", "meta_action_start", "meta_action_end",
    "traj_future_pre_tkn", "vectorized_wm", "vectorized_wm_start", "vectorized_wm_end",
    "vectorized_wm_pre_tkn",
)  # fmt: skip
SPECIAL_TOKEN_NAMES_1_5: tuple[str, ...] = tuple(
    f"_padding_{RENAMED_IN_1_5.index(n)}" if n in RENAMED_IN_1_5 else n for n in SPECIAL_TOKEN_NAMES
)
# The specials this package reads or writes (both families have them under these names).
USED_SPECIAL_TOKENS: tuple[str, ...] = tuple(
    n for n in SPECIAL_TOKEN_NAMES if n not in RENAMED_IN_1_5
)


def special_token(name: str) -> str:
    return f"<|{name}|>"


# Architecture of the released base VLM (Qwen3-VL-8B / Cosmos-Reason2-8B), so that a released
# checkpoint, whose config points at a hub id for it, loads offline. Vocabulary size comes
# from the checkpoint's own config.
_QWEN3_VL_8B = {
    "model_type": "qwen3_vl",
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "tie_word_embeddings": False,
    "text_config": {
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "hidden_act": "silu",
        "max_position_embeddings": 262144,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5000000.0,
            "mrope_section": [24, 20, 20],
            "mrope_interleaved": True,
        },
        "attention_bias": False,
        "vocab_size": 151936,
    },
    "vision_config": {
        "depth": 27,
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_heads": 16,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 4096,
        "num_position_embeddings": 2304,
        "deepstack_visual_indexes": [8, 16, 24],
        "hidden_act": "gelu_pytorch_tanh",
    },
}
VLM_PRESETS: dict[str, dict[str, Any]] = {
    "nvidia/Cosmos-Reason2-8B": _QWEN3_VL_8B,
    "Qwen/Qwen3-VL-8B-Instruct": _QWEN3_VL_8B,
}


class ConfigError(ValueError):
    """A checkpoint configuration that cannot be used; the message names the field."""


@dataclass(frozen=True)
class ActionSpaceSettings:
    """Unicycle (acceleration, curvature) action space with its normalisation.

    accel_mean/std: m/s^2; curvature_mean/std: 1/m; bounds as (min, max); dt: s.
    """

    accel_mean: float
    accel_std: float
    curvature_mean: float
    curvature_std: float
    accel_bounds: tuple[float, float]
    curvature_bounds: tuple[float, float]
    dt: float
    n_waypoints: int

    def unicycle_spec(self, integration: str = "trapezoid") -> UnicycleSpec:
        """The core model for these settings (trapezoid: the released discretisation)."""
        return UnicycleSpec(
            num_steps=self.n_waypoints,
            dt=self.dt,
            accel_limits=self.accel_bounds,
            curvature_limits=self.curvature_bounds,
            integration=integration,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class FlowMatchingSettings:
    """num_inference_steps: Euler steps from noise (t=0) to data (t=1);
    use_classifier_free_guidance, inference_guidance_weight: the 1.5 release's navigation
    guidance keys when the file has them (the release passes them per call instead; here
    they are defaults the planner's navigation_guidance setting overrides)."""

    num_inference_steps: int = 10
    int_method: str = "euler"
    use_classifier_free_guidance: bool = False
    inference_guidance_weight: float = 1.0


@dataclass(frozen=True)
class ActionInProjSettings:
    hidden_size: int = 512
    num_enc_layers: int = 2
    num_fourier_feats: int = 20
    max_freq: float = 100.0


def _number(
    cfg: dict[str, Any],
    section: str,
    key: str,
    default: float,
    *,
    integer: bool = False,
    low: float = -math.inf,
    high: float = math.inf,
    above: bool = False,
) -> Any:
    """cfg[key] (default when absent) checked: a finite number (an integer when `integer`)
    in [low, high] ((low, high] when `above`); ConfigError naming section.key and the
    value otherwise."""
    value = cfg.get(key, default)
    key = f"{section}.{key}" if section else key
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"config field {key} must be {kind}, got {value!r}")
    if value < low or (above and value == low) or value > high:
        where = f"{'>' if above else '>='} {low:g}"
        if high < math.inf:
            where += f" and <= {high:g}"
        raise ConfigError(f"config field {key} must be {where}, got {value!r}")
    return int(value) if integer else float(value)


def _numbers(cfg: dict[str, Any], section: str, key: str, default: tuple, size: int) -> tuple:
    """cfg[key] (default when absent): a list of `size` finite numbers; ConfigError naming
    section.key and the value otherwise."""
    value = cfg.get(key, default)
    if (
        not isinstance(value, list | tuple)
        or len(value) != size
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
    ):
        raise ConfigError(
            f"config field {section}.{key} must be a list of {size} numbers, got {value!r}"
        )
    return tuple(float(v) for v in value)


def _ordered(section: str, low_key: str, low: tuple, high_key: str, high: tuple) -> None:
    if not all(a < b for a, b in zip(low, high, strict=True)):
        raise ConfigError(
            f"config fields {section}.{low_key} must be below {section}.{high_key} "
            f"element by element, got {list(low)} and {list(high)}"
        )


def _flag(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"config field {key} must be true or false, got {value!r}")
    return value


def _one_line(err: Exception) -> str:
    """An exception's text on one line (transformers' validation errors span several)."""
    return " ".join(str(err).split())


# Sizes a Qwen3-VL config must hold as positive integers, and its token ids (>= 0).
TEXT_SIZES = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
              "num_key_value_heads", "head_dim", "vocab_size",
              "max_position_embeddings")  # fmt: skip
VISION_SIZES = ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size",
                "patch_size", "spatial_merge_size", "temporal_patch_size",
                "num_position_embeddings", "in_channels")  # fmt: skip
TOKEN_IDS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


def _positive_ints(cfg: Any, section: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = getattr(cfg, key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"config field {section}.{key} must be an integer >= 1, got {value!r}"
            )


def _check_text(cfg: Any, section: str) -> None:
    """A Qwen3-VL text config's sizes, heads, norm epsilon and rotary settings (what would
    otherwise fail, or silently misbehave, when the model is built or run)."""
    _positive_ints(cfg, section, TEXT_SIZES)
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise ConfigError(
            f"config field {section}.num_attention_heads {cfg.num_attention_heads} is not a "
            f"multiple of num_key_value_heads {cfg.num_key_value_heads}"
        )
    eps = cfg.rms_norm_eps
    if not isinstance(eps, int | float) or isinstance(eps, bool) or not 0 < eps < 1:
        raise ConfigError(f"config field {section}.rms_norm_eps must be in (0, 1), got {eps!r}")
    rope = cfg.rope_parameters
    name = f"{section}.rope_parameters"
    if not isinstance(rope, dict):
        raise ConfigError(f"config field {name} must be a mapping, got {rope!r}")
    _number(rope, name, "rope_theta", 5000000.0, low=0.0, above=True)
    if rope.get("rope_type", "default") != "default":
        raise ConfigError(
            f"config field {name}.rope_type must be 'default' (Qwen3-VL's multimodal rotary "
            f"embedding), got {rope.get('rope_type')!r}"
        )
    section_sizes = rope.get("mrope_section")
    if (
        not isinstance(section_sizes, list)
        or len(section_sizes) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in section_sizes)
        or sum(section_sizes) != cfg.head_dim // 2
    ):
        raise ConfigError(
            f"config field {name}.mrope_section must be 3 positive integers summing to "
            f"head_dim / 2 = {cfg.head_dim // 2}, got {section_sizes!r}"
        )
    if not isinstance(rope.get("mrope_interleaved", True), bool):
        raise ConfigError(
            f"config field {name}.mrope_interleaved must be true or false, got "
            f"{rope['mrope_interleaved']!r}"
        )


def expert_text_config(
    vlm_text_config: Qwen3VLTextConfig, overrides: dict[str, Any]
) -> Qwen3VLTextConfig:
    """The VLM's text config with the expert's overrides (config.json's expert_cfg). Layer
    count, KV heads and head size must stay the VLM's: the expert attends to the VLM's KV
    cache layer by layer. ConfigError naming the key and the value otherwise."""
    cfg = copy.deepcopy(vlm_text_config)
    for key, value in overrides.items():
        if not isinstance(key, str) or not hasattr(cfg, key):
            raise ConfigError(f"config field expert_cfg.{key} is no Qwen3-VL text setting")
        if key in ("num_hidden_layers", "num_key_value_heads", "head_dim") and value != getattr(
            cfg, key
        ):
            raise ConfigError(
                f"config field expert_cfg.{key} = {value!r} differs from the VLM's "
                f"{getattr(cfg, key)}: the expert could not read the VLM's KV cache"
            )
        try:
            setattr(cfg, key, value)
        except (StrictDataclassError, TypeError, ValueError) as err:
            raise ConfigError(
                f"config field expert_cfg.{key} = {value!r} is not valid: {_one_line(err)}"
            ) from err
    try:
        cfg.validate()
    except (StrictDataclassError, TypeError, ValueError) as err:
        raise ConfigError(f"config field expert_cfg is not valid: {_one_line(err)}") from err
    _check_text(cfg, "expert_cfg")
    return cfg


def _target(cfg: dict[str, Any] | None, field: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise ConfigError(f"config field {field!r} must be a mapping, got {cfg!r}")
    target = cfg.get("_target_")
    if not isinstance(target, str) or target not in allowed:
        raise ConfigError(
            f"config field {field}._target_ = {target!r} is not a module this package "
            f"implements; known: {sorted(allowed)}"
        )
    return {k: v for k, v in cfg.items() if k != "_target_"}


class AlpamayoConfig:
    """An Alpamayo-R1 config.json, with typed views of the parts this package uses.

    `data` keeps every key of the file, known or not, so load -> save writes back the same
    document (our additions, `vlm_config`, included).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        model_type = data.get("model_type") if isinstance(data, dict) else None
        if not isinstance(model_type, str) or model_type not in MODEL_TYPES:
            got = model_type if isinstance(data, dict) else data
            raise ConfigError(
                f"config field 'model_type' must be one of {sorted(MODEL_TYPES)} (Alpamayo 1, "
                f"Alpamayo 1.5), got {got!r}"
            )
        self.data = copy.deepcopy(data)
        # Parse everything once so a bad config fails at load time, not mid-inference.
        self.action_space = self._action_space()
        self.flow_matching = self._flow_matching()
        self.action_in_proj = self._action_in_proj()
        _target(data.get("action_out_proj_cfg"), "action_out_proj_cfg", ACTION_OUT_PROJ_TARGETS)
        self.history_tokenizer = self._history_tokenizer()
        self.future_tokenizer = self._future_tokenizer()
        self.vlm_config = self._vlm_config()
        text = self.vlm_config.text_config
        assert isinstance(text, Qwen3VLTextConfig)
        # the expert's config as the model builds it (checked now, not when it is built)
        self.expert_config = expert_text_config(text, self._overrides())
        for key in ("traj_vocab_size", "tokens_per_history_traj", "tokens_per_future_traj"):
            value = data.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"config field {key!r} must be a positive integer, got {value!r}")
        start = data.get("traj_token_start_idx")
        if start is not None and (
            not isinstance(start, int) or isinstance(start, bool) or start < 0
        ):
            raise ConfigError(
                f"config field 'traj_token_start_idx' must be a token id (an integer >= 0), "
                f"got {start!r}"
            )
        for key in ("min_pixels", "max_pixels"):  # absent or null: the released budget
            if data.get(key) is not None:
                _number(data, "", key, 1, integer=True, low=1)
        lo, hi = data.get("min_pixels"), data.get("max_pixels")
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"config field min_pixels {lo} is above max_pixels {hi}")
        _flag(data, "expert_non_causal_attention", True)
        _flag(data, "keep_same_dtype", True)

    # -- file I/O ---------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> AlpamayoConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise ConfigError(f"no config.json at {path}") from err
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from err
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        """The config document (a copy; also what PEFT reads, e.g. tie_word_embeddings)."""
        doc = copy.deepcopy(self.data)
        doc.setdefault("tie_word_embeddings", False)
        return doc

    def to_json_string(self) -> str:
        """The config as written: as loaded, plus what the official (hydra) loader needs to
        instantiate it: traj_tokenizer_cfg must not be instantiated recursively (its
        action_space_cfg is passed on as a mapping), so it carries "_recursive_": false."""
        doc = copy.deepcopy(self.data)
        if isinstance(doc.get("traj_tokenizer_cfg"), dict):
            doc["traj_tokenizer_cfg"].setdefault("_recursive_", False)
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "config.json"
        path.write_text(self.to_json_string())
        return path

    # -- simple fields ----------------------------------------------------------------
    @property
    def model_type(self) -> str:
        return str(self.data["model_type"])

    @property
    def family(self) -> str:
        """ "alpamayo1" or "alpamayo1_5" (alpamayo_ros.core.cameras.FAMILIES)."""
        return MODEL_TYPES[self.model_type]

    @property
    def labels_cameras(self) -> bool:
        """Whether prompts label each camera and frame (the 1.5 format). 1.5 was trained
        with the labels and its release code adds them whenever it knows the cameras (it
        never reads include_camera_ids); Alpamayo 1 prompts are unlabelled."""
        return self.family == ALPAMAYO1_5

    @property
    def reads_navigation(self) -> bool:
        """Whether the checkpoint was trained on navigation text (<|route_start|>...)."""
        return self.family == ALPAMAYO1_5

    @property
    def traj_vocab_size(self) -> int:
        return int(self.data["traj_vocab_size"])

    @property
    def tokens_per_history_traj(self) -> int:
        return int(self.data["tokens_per_history_traj"])

    @property
    def tokens_per_future_traj(self) -> int:
        return int(self.data["tokens_per_future_traj"])

    @property
    def traj_token_start_idx(self) -> int | None:
        """Vocabulary id of <i0>, when the file records it (else from the tokenizer)."""
        v = self.data.get("traj_token_start_idx")
        return int(v) if v is not None else None

    @property
    def expert_overrides(self) -> dict[str, Any]:
        return self._overrides()

    def _overrides(self) -> dict[str, Any]:
        cfg = self.data.get("expert_cfg")
        if cfg is None:
            return {}
        if not isinstance(cfg, dict):
            raise ConfigError(f"config field 'expert_cfg' must be a mapping, got {cfg!r}")
        return dict(cfg)

    @property
    def expert_non_causal_attention(self) -> bool:
        return _flag(self.data, "expert_non_causal_attention", True)

    @property
    def keep_same_dtype(self) -> bool:
        return _flag(self.data, "keep_same_dtype", True)

    @property
    def min_pixels(self) -> int | None:
        return self.data.get("min_pixels")

    @property
    def max_pixels(self) -> int | None:
        return self.data.get("max_pixels")

    # -- parsed parts -----------------------------------------------------------------
    def _action_space(self) -> ActionSpaceSettings:
        name = "action_space_cfg"
        cfg = _target(self.data.get(name), name, ACTION_SPACE_TARGETS)
        accel_bounds = _numbers(cfg, name, "accel_bounds", (-9.8, 9.8), 2)
        curvature_bounds = _numbers(cfg, name, "curvature_bounds", (-0.2, 0.2), 2)
        for key, (lo, hi) in (
            ("accel_bounds", accel_bounds),
            ("curvature_bounds", curvature_bounds),
        ):
            if not lo < hi:
                raise ConfigError(f"config field {name}.{key} must be [min, max] with min < max, "
                                  f"got {[lo, hi]}")  # fmt: skip
        return ActionSpaceSettings(
            accel_mean=_number(cfg, name, "accel_mean", 0.0),
            accel_std=_number(cfg, name, "accel_std", 1.0, low=0.0, above=True),
            curvature_mean=_number(cfg, name, "curvature_mean", 0.0),
            curvature_std=_number(cfg, name, "curvature_std", 1.0, low=0.0, above=True),
            accel_bounds=accel_bounds,
            curvature_bounds=curvature_bounds,
            dt=_number(cfg, name, "dt", 0.1, low=0.0, above=True, high=10.0),
            n_waypoints=_number(cfg, name, "n_waypoints", 64, integer=True, low=1, high=10000),
        )

    def _flow_matching(self) -> FlowMatchingSettings:
        name = "diffusion_cfg"
        cfg = _target(self.data.get(name), name, DIFFUSION_TARGETS)
        steps = _number(cfg, name, "num_inference_steps", 10, integer=True, low=1, high=10000)
        method = cfg.get("int_method", "euler")
        if method != "euler":
            raise ConfigError(f"config field {name}.int_method must be 'euler', got {method!r}")
        return FlowMatchingSettings(
            num_inference_steps=steps,
            int_method=method,
            use_classifier_free_guidance=_flag(cfg, "use_classifier_free_guidance", False),
            inference_guidance_weight=_number(cfg, name, "inference_guidance_weight", 1.0),
        )

    def _action_in_proj(self) -> ActionInProjSettings:
        name = "action_in_proj_cfg"
        cfg = _target(self.data.get(name), name, ACTION_IN_PROJ_TARGETS)
        return ActionInProjSettings(
            hidden_size=_number(cfg, name, "hidden_size", 1024, integer=True, low=1),
            num_enc_layers=_number(cfg, name, "num_enc_layers", 4, integer=True, low=1, high=64),
            num_fourier_feats=_number(cfg, name, "num_fourier_feats", 20, integer=True, low=1),
            max_freq=_number(cfg, name, "max_freq", 100.0, low=0.0, above=True),
        )

    def _history_tokenizer(self) -> HistoryDeltaTokenizer:
        name = "hist_traj_tokenizer_cfg"
        cfg = _target(self.data.get(name), name, HISTORY_TOKENIZER_TARGETS)
        lo = _numbers(cfg, name, "ego_xyz_min", (-4, -4, -10), 3)
        hi = _numbers(cfg, name, "ego_xyz_max", (4, 4, 10), 3)
        _ordered(name, "ego_xyz_min", lo, "ego_xyz_max", hi)
        n = _number(cfg, name, "num_bins", 1000, integer=True, low=2)
        if _flag(cfg, "predict_yaw", False):
            raise ConfigError(f"config field {name}.predict_yaw = true is not supported")
        if lo[0] != lo[1] or hi[0] != hi[1]:
            raise ConfigError(
                f"config field {name} must give x and y the same range, got min {list(lo)}, "
                f"max {list(hi)}"
            )
        return HistoryDeltaTokenizer(xy=BinLayout(lo[0], hi[0], n), z=BinLayout(lo[2], hi[2], n))

    def _future_tokenizer(self) -> ControlTokenizer:
        """Future-trajectory tokens in physical units: the release bins normalised controls
        uniformly over [dims_min, dims_max], both channels sharing ids."""
        name = "traj_tokenizer_cfg"
        cfg = _target(self.data.get(name), name, FUTURE_TOKENIZER_TARGETS)
        a = self.action_space
        dmin = _numbers(cfg, name, "dims_min", (-10.0, -10.0), 2)
        dmax = _numbers(cfg, name, "dims_max", (10.0, 10.0), 2)
        _ordered(name, "dims_min", dmin, "dims_max", dmax)
        n = _number(cfg, name, "num_bins", 3000, integer=True, low=2)
        return ControlTokenizer(
            accel=BinLayout(
                a.accel_mean + dmin[0] * a.accel_std, a.accel_mean + dmax[0] * a.accel_std, n
            ),
            curvature=BinLayout(
                a.curvature_mean + dmin[1] * a.curvature_std,
                a.curvature_mean + dmax[1] * a.curvature_std,
                n,
            ),
            accel_offset=0,
            curvature_offset=0,
        )

    @property
    def history_token_offset(self) -> int:
        """Local id of the first history token: after the future tokenizer's vocabulary."""
        return self.future_tokenizer.vocab_size

    def _vlm_config(self) -> Qwen3VLConfig:
        raw = self.data.get("vlm_config")
        if raw is None:
            name = self.data.get("vlm_name_or_path")
            if not isinstance(name, str) or name not in VLM_PRESETS:
                raise ConfigError(
                    "config has no 'vlm_config' and its vlm_name_or_path "
                    f"{name!r} is not a known base model ({sorted(VLM_PRESETS)}); add the "
                    "Qwen3-VL config under 'vlm_config' (nothing is downloaded)"
                )
            raw = copy.deepcopy(VLM_PRESETS[name])
            if self.data.get("vocab_size") is not None:
                vocab = _number(self.data, "", "vocab_size", 1, integer=True, low=1)
                raw["text_config"]["vocab_size"] = vocab
        if not isinstance(raw, dict):
            raise ConfigError(f"config field 'vlm_config' must be a mapping, got {raw!r}")
        if raw.get("model_type", "qwen3_vl") != "qwen3_vl":
            raise ConfigError(
                f"config field vlm_config.model_type must be 'qwen3_vl', got "
                f"{raw.get('model_type')!r}"
            )
        for key in ("text_config", "vision_config"):
            if not isinstance(raw.get(key, {}), dict):
                raise ConfigError(
                    f"config field vlm_config.{key} must be a mapping, got {raw[key]!r}"
                )
        try:
            cfg = Qwen3VLConfig(**{k: v for k, v in raw.items() if k != "model_type"})
        except (StrictDataclassError, TypeError, ValueError, KeyError) as err:
            raise ConfigError(
                f"config field vlm_config is not a valid Qwen3-VL config: {_one_line(err)}"
            ) from err
        _check_text(cfg.text_config, "vlm_config.text_config")
        _positive_ints(cfg.vision_config, "vlm_config.vision_config", VISION_SIZES)
        for key in TOKEN_IDS:
            value = getattr(cfg, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"config field vlm_config.{key} must be a token id (an "
                                  f"integer >= 0), got {value!r}")  # fmt: skip
        return cfg
