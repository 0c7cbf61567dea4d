"""Tiny, randomly initialised checkpoints in exactly the released layout, built offline.

Same files (config.json with the released `_target_` names, safetensors, tokenizer files,
preprocessor_config.json), same parameter names and vocabulary layout (Qwen specials, then
<i0>..<i3999>, then the 29 Alpamayo special tokens), tiny widths: it runs `plan()` end to end
on a CPU in about a second. Also `released_config_data()`: the released model's config, for
benchmarks of its shapes with random weights.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from alpamayo_ros.core.cameras import ALPAMAYO1, ALPAMAYO1_5, FAMILIES
from alpamayo_ros.core.tokens import (
    RELEASED_ACCEL_MEAN,
    RELEASED_ACCEL_STD,
    RELEASED_CURVATURE_MEAN,
    RELEASED_CURVATURE_STD,
)
from alpamayo_ros.model.config import (
    ARCHITECTURES,
    MODEL_TYPE,
    MODEL_TYPE_1_5,
    SPECIAL_TOKEN_NAMES,
    SPECIAL_TOKEN_NAMES_1_5,
    VLM_PRESETS,
    AlpamayoConfig,
    special_token,
)
from alpamayo_ros.model.processor import default_image_processor

UNTRAINED_VLM_NAME = "alpamayo_ros/tiny-random"
# config.json keys of our checkpoints: `untrained` (random weights, said loudly wherever
# plans are shown; training removes it) and `description` (shown in replay reports).
UNTRAINED_KEY, DESCRIPTION_KEY = "untrained", "description"

QWEN_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
)  # fmt: skip
TRAJ_VOCAB_SIZE = 4000


def _action_space_cfg() -> dict[str, Any]:
    return {
        "_target_": (
            "alpamayo_r1.action_space.unicycle_accel_curvature.UnicycleAccelCurvatureActionSpace"
        ),
        "accel_mean": RELEASED_ACCEL_MEAN,
        "accel_std": RELEASED_ACCEL_STD,
        "curvature_mean": RELEASED_CURVATURE_MEAN,
        "curvature_std": RELEASED_CURVATURE_STD,
        "accel_bounds": [-9.8, 9.8],
        "curvature_bounds": [-0.33, 0.33],
        "dt": 0.1,
        "n_waypoints": 64,
    }


def released_config_data() -> dict[str, Any]:
    """The released Alpamayo-R1-10B config.json as documented in shared/reference (the
    VLM comes from the Qwen3-VL-8B preset; the vocabulary is 155697 tokens)."""
    return {
        "model_type": MODEL_TYPE,
        "architectures": ["AlpamayoR1"],
        "vlm_name_or_path": "nvidia/Cosmos-Reason2-8B",
        "vlm_backend": "qwenvl3",
        "vocab_size": 155697,
        "traj_token_start_idx": 151669,
        "traj_vocab_size": TRAJ_VOCAB_SIZE,
        "tokens_per_history_traj": 48,
        "tokens_per_future_traj": 128,
        "model_dtype": "bfloat16",
        "attn_implementation": "sdpa",
        "min_pixels": 163840,
        "max_pixels": 196608,
        "add_special_tokens": True,
        "action_space_cfg": _action_space_cfg(),
        "diffusion_cfg": {
            "_target_": "alpamayo_r1.diffusion.flow_matching.FlowMatching",
            "int_method": "euler",
            "num_inference_steps": 10,
        },
        "action_in_proj_cfg": {
            "_target_": "alpamayo_r1.models.action_in_proj.PerWaypointActionInProjV2",
            "hidden_size": 512,
            "num_enc_layers": 2,
            "num_fourier_feats": 20,
            "max_freq": 100.0,
        },
        "action_out_proj_cfg": {"_target_": "torch.nn.Linear"},
        "expert_cfg": {
            "hidden_size": 2048,
            "intermediate_size": 8256,
            "num_attention_heads": 16,
            "head_dim": 128,
        },
        "keep_same_dtype": True,
        "expert_non_causal_attention": True,
        "traj_tokenizer_cfg": {
            "_target_": (
                "alpamayo_r1.action_space.discrete_action_space.DiscreteTrajectoryTokenizer"
            ),
            "_recursive_": False,  # hydra: pass action_space_cfg on as a mapping
            "action_space_cfg": _action_space_cfg(),
            "dims_min": [-10.0, -10.0],
            "dims_max": [10.0, 10.0],
            "num_bins": 3000,
        },
        "hist_traj_tokenizer_cfg": {
            "_target_": "alpamayo_r1.models.delta_tokenizer.DeltaTrajectoryTokenizer",
            "ego_xyz_min": [-4, -4, -10],
            "ego_xyz_max": [4, 4, 10],
            "num_bins": 1000,
        },
    }


def released_1_5_config_data() -> dict[str, Any]:
    """The Alpamayo 1.5 config.json as the reference documents it: the Alpamayo 1 document
    with model_type alpamayo1_5, architectures Alpamayo1_5, `_target_` paths under
    alpamayo1_5., include_camera_ids / include_frame_nums, and the flow sampler's guidance
    keys (shared/reference/alpamayo_1_5.md, section 2)."""
    return as_alpamayo1_5(released_config_data())


def as_alpamayo1_5(data: dict[str, Any]) -> dict[str, Any]:
    """An Alpamayo 1 config document rewritten as the 1.5 release's converter does."""
    out = copy.deepcopy(data)

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: rename(v) for k, v in node.items()}
        if isinstance(node, str) and node.startswith("alpamayo_r1."):
            return "alpamayo1_5." + node[len("alpamayo_r1.") :]
        return node

    out = rename(out)
    out.update(
        model_type=MODEL_TYPE_1_5,
        architectures=ARCHITECTURES[MODEL_TYPE_1_5],
        include_camera_ids=True,
        include_frame_nums=True,
    )
    out["diffusion_cfg"].update(use_classifier_free_guidance=False, inference_guidance_weight=1.0)
    return out


def build_tokenizer(
    traj_vocab_size: int = TRAJ_VOCAB_SIZE,
    corpus: Sequence[str] = (),
    merges: int = 256,
    family: str = ALPAMAYO1,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with Qwen's chat and vision specials, the trajectory
    tokens and the Alpamayo specials, in the released order (family "alpamayo1_5": nine
    unused ones renamed <|_padding_N|>, as the 1.5 release names them).

    Without a corpus: the 256 byte symbols and no merges. With one: up to `merges` merges
    learnt from it (the prompt and the causal chains a model will write), so those texts
    take a few tokens instead of one per byte; any text still encodes, byte by byte.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if corpus:
        trainer = trainers.BpeTrainer(
            vocab_size=len(alphabet) + merges, initial_alphabet=alphabet, show_progress=False
        )
        tok.train_from_iterator(list(corpus), trainer=trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in QWEN_SPECIALS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.add_tokens([f"<i{v}>" for v in range(traj_vocab_size)])
    names = SPECIAL_TOKEN_NAMES_1_5 if family == ALPAMAYO1_5 else SPECIAL_TOKEN_NAMES
    fast.add_tokens([special_token(n) for n in names], special_tokens=True)
    return fast


# Widths of the presets: "tiny" (tests, ~1 M parameters), "small" (the trained demo,
# ~3 M parameters, a few MB) and "medium" (~80 M parameters: loading and memory tests).
# The small expert's input projection is wider, with more and lower Fourier frequencies (1
# to 10 cycles per unit instead of the release's 1 to 100): a small network trained briefly
# cannot otherwise read the noisy action out of aliased high-frequency features, and its
# velocity ignores x_t (see the README's demo section).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, mlp=128, vision=32,
                 vision_mlp=64, expert=32, expert_mlp=64, proj=32, fourier=8, max_freq=100.0),
    "small": dict(hidden=128, layers=4, heads=4, kv_heads=2, head_dim=32, mlp=256, vision=64,
                  vision_mlp=128, expert=128, expert_mlp=256, proj=256, fourier=32,
                  max_freq=10.0),
    "medium": dict(hidden=1024, layers=4, heads=8, kv_heads=4, head_dim=128, mlp=4096,
                   vision=64, vision_mlp=128, expert=256, expert_mlp=512, proj=256, fourier=8,
                   max_freq=100.0),
}  # fmt: skip


def tiny_config_data(
    tokenizer: PreTrainedTokenizerFast,
    pixels: int = 32768,
    size: str = "tiny",
    family: str = ALPAMAYO1,
) -> dict[str, Any]:
    """A released-layout config with tiny widths (a SIZES preset) around the tokenizer,
    in the layout of `family` ("alpamayo1" or "alpamayo1_5")."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    w = SIZES[size]
    half = w["head_dim"] // 2  # rotary frequencies, split into (t, h, w) sections
    data = released_1_5_config_data() if family == ALPAMAYO1_5 else released_config_data()
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in QWEN_SPECIALS}
    data.update(
        vlm_name_or_path=UNTRAINED_VLM_NAME,
        **{UNTRAINED_KEY: True, DESCRIPTION_KEY: f"untrained {size} random checkpoint"},
        vocab_size=len(tokenizer),
        traj_token_start_idx=tokenizer.convert_tokens_to_ids("<i0>"),
        model_dtype="float32",
        min_pixels=pixels,
        max_pixels=pixels,
        vlm_config={
            "model_type": "qwen3_vl",
            "image_token_id": ids["<|image_pad|>"],
            "video_token_id": ids["<|video_pad|>"],
            "vision_start_token_id": ids["<|vision_start|>"],
            "vision_end_token_id": ids["<|vision_end|>"],
            "tie_word_embeddings": False,
            "text_config": {
                "vocab_size": len(tokenizer),
                "hidden_size": w["hidden"],
                "intermediate_size": w["mlp"],
                "num_hidden_layers": w["layers"],
                "num_attention_heads": w["heads"],
                "num_key_value_heads": w["kv_heads"],
                "head_dim": w["head_dim"],
                "max_position_embeddings": 8192,
                "rms_norm_eps": 1e-6,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 5000000.0,
                    "mrope_section": [half // 2, half // 4, half // 4],
                    "mrope_interleaved": True,
                },
            },
            "vision_config": {
                "depth": 2,
                "hidden_size": w["vision"],
                "intermediate_size": w["vision_mlp"],
                "num_heads": 2,
                "patch_size": 16,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "out_hidden_size": w["hidden"],
                "num_position_embeddings": 64,
                "deepstack_visual_indexes": [1],
            },
        },
        expert_cfg={
            "hidden_size": w["expert"],
            "intermediate_size": w["expert_mlp"],
            "num_attention_heads": w["heads"],
            "head_dim": w["head_dim"],
        },
    )
    data["action_in_proj_cfg"] = {
        **data["action_in_proj_cfg"],
        "hidden_size": w["proj"],
        "num_fourier_feats": w["fourier"],
        "max_freq": w["max_freq"],
    }
    return data


def make_tiny_checkpoint(
    directory: str | Path,
    seed: int = 0,
    pixels: int = 32768,
    size: str = "tiny",
    corpus: Sequence[str] = (),
    family: str = ALPAMAYO1,
) -> Path:
    """Write a random tiny checkpoint to `directory` (created); returns its path.

    pixels: the image budget of its processor (the release uses about 196608; the tiny
    default keeps CPU runs fast); size: a SIZES preset; corpus: texts the tokenizer learns
    merges from (build_tokenizer), e.g. the prompt and the causal chains to be trained;
    family: "alpamayo1" or "alpamayo1_5" (its config, token names, and weights without the
    buffers 1.5 made non-persistent).
    """
    from alpamayo_ros.model.policy import AlpamayoPolicy
    from alpamayo_ros.model.processor import AlpamayoProcessor

    directory = Path(directory)
    tokenizer = build_tokenizer(corpus=corpus, family=family)
    config = AlpamayoConfig(tiny_config_data(tokenizer, pixels, size, family))
    torch.manual_seed(seed)
    policy = AlpamayoPolicy(config)
    policy.processor = AlpamayoProcessor(tokenizer, default_image_processor(pixels, pixels), config)
    policy.save_pretrained(directory)
    return directory


def released_shapes_config_data(tokenizer: PreTrainedTokenizerFast) -> dict[str, Any]:
    """The released config (10B shapes: the Qwen3-VL-8B preset and the 2.3B expert) around
    one of our tokenizers: the embedding keeps the released vocabulary size, and every id
    the network is told (image, video and vision markers, trajectory tokens) is the
    tokenizer's, so the VLM finds the processor's image tokens. For benchmarks and shape
    tests with random weights: which ids they are does not change the cost."""
    data = released_config_data()
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in QWEN_SPECIALS}
    vlm = copy.deepcopy(VLM_PRESETS[data["vlm_name_or_path"]])
    vlm.update(
        model_type="qwen3_vl",
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    vlm["text_config"]["vocab_size"] = int(data["vocab_size"])
    data.update(
        vlm_config=vlm,
        traj_token_start_idx=tokenizer.convert_tokens_to_ids("<i0>"),
        **{UNTRAINED_KEY: True, DESCRIPTION_KEY: "released shapes, random weights"},
    )
    return data


def released_random_policy(
    device: str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    attn: str = "sdpa",
    family: str = ALPAMAYO1,
) -> Any:
    """An AlpamayoPolicy of the released shapes with random weights, built on `device` in
    `dtype` ("meta" for shape checks), with our tokenizer and the released image budget;
    family "alpamayo1_5": the 1.5 config and token names (the same shapes)."""
    from alpamayo_ros.model.checkpoint_io import default_dtype
    from alpamayo_ros.model.policy import AlpamayoPolicy
    from alpamayo_ros.model.processor import AlpamayoProcessor

    tokenizer = build_tokenizer(family=family)
    data = released_shapes_config_data(tokenizer)
    config = AlpamayoConfig(as_alpamayo1_5(data) if family == ALPAMAYO1_5 else data)
    with torch.device(device), default_dtype(dtype):
        policy = AlpamayoPolicy(config, attn_implementation=attn)
    policy.processor = AlpamayoProcessor(
        tokenizer, default_image_processor(config.min_pixels, config.max_pixels), config
    )
    policy.model_id = "random weights, released shapes"
    return policy.eval()


def config_with(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of a config document with top-level changes (for tests and tools)."""
    out = copy.deepcopy(data)
    out.update(changes)
    return out
