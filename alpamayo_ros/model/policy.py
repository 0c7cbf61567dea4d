"""The Alpamayo-R1 policy's modules and their checkpoint I/O.

`AlpamayoPolicy.from_pretrained(folder)` loads a checkpoint in the released layout
(checkpoint_io: config.json, safetensors shards with an index, tokenizer files) with
parameter names identical to the release (`vlm.*`, `expert.*`, `action_in_proj.*`,
`action_out_proj.*`, `action_space.*`), Alpamayo 1 or 1.5. The modules: the Qwen3-VL
backbone, the action expert and its projections, the action space. `backbone_forward` is
the training forward. Inference (`plan`, `reason_steps`, `ask`, `configure`) is the base
class's, model.runtime.
"""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path

import torch
from torch import nn
from transformers import (
    PreTrainedConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLTextConfig,
    StaticCache,
)
from transformers.initialization import no_init_weights

from alpamayo_ros.checkpoints import resolve_model
from alpamayo_ros.model.action_expert import (
    ActionSpace,
    PerWaypointActionInProj,
    build_expert,
)
from alpamayo_ros.model.checkpoint_io import (
    LoadReport,
    default_dtype,
    load_checkpoint,
    resolve_checkpoint,
    resolve_device,
    save_checkpoint,
)
from alpamayo_ros.model.config import AlpamayoConfig, expert_text_config
from alpamayo_ros.model.lane_prefix import LanePrefix
from alpamayo_ros.model.processor import AlpamayoProcessor
from alpamayo_ros.model.runtime import PolicyRuntime
from alpamayo_ros.model.static_decode import DecodeBuffers
from alpamayo_ros.model.tiny import DESCRIPTION_KEY, UNTRAINED_KEY
from alpamayo_ros.model.vision_cache import VisionFeatureCache

log = logging.getLogger(__name__)

ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


class AlpamayoPolicy(PolicyRuntime):
    """VLM backbone + action expert with the released module names."""

    def __init__(self, config: AlpamayoConfig, attn_implementation: str = "sdpa") -> None:
        """attn_implementation: "sdpa" (default), "eager" (the reference path) or
        "flash_attention_2" (when flash-attn is installed), for the VLM and the expert."""
        super().__init__()
        self._cancel: threading.Event | None = None
        if attn_implementation not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"attn_implementation must be one of {ATTENTION_IMPLEMENTATIONS}, "
                f"got {attn_implementation!r}"
            )
        self.config = config
        vlm_config = copy.deepcopy(config.vlm_config)
        vlm_config._attn_implementation = attn_implementation
        for sub in (vlm_config.text_config, vlm_config.vision_config):
            assert isinstance(sub, PreTrainedConfig)
            sub._attn_implementation = attn_implementation
        self.vlm = Qwen3VLForConditionalGeneration(vlm_config)
        text_config = vlm_config.text_config
        assert isinstance(text_config, Qwen3VLTextConfig)
        expert_cfg = expert_text_config(text_config, config.expert_overrides)
        self.expert = build_expert(expert_cfg)
        self.action_space = ActionSpace(config.action_space)
        self.action_in_proj = PerWaypointActionInProj(
            self.action_space.dims[1], expert_cfg.hidden_size, config.action_in_proj
        )
        self.action_out_proj = nn.Linear(expert_cfg.hidden_size, self.action_space.dims[1])
        self.processor: AlpamayoProcessor | None = None
        self.model_id = ""
        self.quantization = "none"  # model.quantization.quantize sets it
        # engine "static": per user ("plan", "reason": the reasoning lane, "ask"), the
        # StaticCache it last filled (and its static_key), refilled by its next call of that
        # shape (the lane and a question keep theirs across plans)
        self._static_caches: dict[str, tuple[tuple, StaticCache]] = {}
        self.vision_cache: VisionFeatureCache | None = None  # enable_vision_cache
        self._chain_banned: torch.Tensor | None = None  # _chain_logits' (V,) mask
        self._decode_buffers: dict[str, DecodeBuffers] = {}  # the static engine's, per user
        # the static engine decodes with model.static_decode (off: its decode step alone)
        self.graph_decode = True
        # the reasoning lane starts from the trajectory lane's prompt (model.lane_prefix)
        self.share_lane_prefix = False
        self._lane_prefix: LanePrefix | None = None
        self.prefix_reuses = 0  # chains started from a kept prompt
        self.default_engine = "eager"  # plan()'s engine when none is given (configure)
        self.load_report = LoadReport()
        # Random weights (our tiny checkpoints): said loudly wherever plans are shown.
        self.untrained = bool(config.data.get(UNTRAINED_KEY, False))
        self.description = str(config.data.get(DESCRIPTION_KEY, ""))

    # -- weights --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, max_shard_bytes: int = 5 * 1024**3) -> None:
        """config.json, safetensors (sharded with an index above max_shard_bytes), and the
        processor's tokenizer and image-processor files (checkpoint_io.save_checkpoint)."""
        save_checkpoint(self, self.config, self.processor, directory, max_shard_bytes)

    def load_weights(self, directory: str | Path, strict: bool = True) -> LoadReport:
        """Copy the checkpoint's tensors into this model (checkpoint_io.load_checkpoint):
        CheckpointError naming the key on a shape mismatch, and (strict) on any missing or
        unexpected key; buffers the config rebuilds may be absent."""
        return load_checkpoint(self, directory, strict)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        dtype: torch.dtype | str = torch.float32,
        device: torch.device | str = "cpu",
        strict: bool = True,
        attn_implementation: str = "sdpa",
        compile_expert: bool = False,
        compile_decode: bool = False,
    ) -> AlpamayoPolicy:
        """Load a local checkpoint folder (the released layout). A repository id is looked up
        in the local Hugging Face cache only; nothing is downloaded.

        device "auto": cuda when available, else cpu; dtype "auto": bfloat16 on cuda,
        float32 elsewhere. path "demo": the demo checkpoint shipped with the package.
        compile_expert: torch.compile the static engine's expert pass (plan(engine="static"),
        mode "reduce-overhead": CUDA graphs on a GPU): one graph per Euler step.
        compile_decode: torch.compile the static engine's decode step (plan(engine="static"))
        with mode "reduce-overhead" (CUDA graphs on a GPU): one captured graph replayed per
        reasoning token instead of hundreds of kernel launches.
        """
        device, dtype = resolve_device(device, dtype)
        folder = resolve_checkpoint(resolve_model(str(path)))
        config = AlpamayoConfig.from_file(folder)
        # The tokenizer and image settings first: a checkpoint without a readable
        # tokenizer.json fails in a second, not after its weights were read (22 GB released).
        processor = AlpamayoProcessor.from_pretrained(folder, config)
        # Built straight in the target dtype on the target device, without initialising
        # what the checkpoint overwrites, then filled tensor by tensor: peak memory is the
        # weights' size (a float32 build first would need 2x the bf16 size: 44 GB for 10B).
        with torch.device(device), default_dtype(dtype), no_init_weights():
            policy = cls(config, attn_implementation=attn_implementation)
        policy.load_report = policy.load_weights(folder, strict=strict)
        policy.processor = processor
        policy.model_id = str(path)
        policy.eval()
        if compile_expert:
            policy.compile_expert()
        if compile_decode:
            policy.compile_decode()
        return policy

    # -- training -------------------------------------------------------------------------
    def backbone_forward(self, inputs: dict[str, torch.Tensor], use_cache: bool = False):
        """The VLM backbone (no LM head) over a training batch's model inputs: (its output:
        hidden states (B, L, H) and, with use_cache, the KV cache; the multimodal rotary
        deltas (B, 1) that the expert's positions continue)."""
        self.vlm.model.rope_deltas = None  # Qwen3-VL caches them between calls
        out = self.vlm.model(**inputs, use_cache=use_cache)
        return out, self.vlm.model.rope_deltas
