"""The inference runtime of the Alpamayo policy: what the planner, the replay and the
benchmarks run, apart from the modules and their checkpoint I/O (model.policy).

`PolicyRuntime` is AlpamayoPolicy's base class: the speed settings (`configure`: engine,
vision cache, quantization; attention kernels; what is compiled), `plan()` (preprocess ->
prefill -> reasoning decode (trajectory tokens and vision placeholders masked) until
<|traj_future_start|> -> the expert denoises 64 (acceleration, curvature) controls reading
the VLM's KV cache (with navigation guidance: also an unguided cache) -> the core unicycle
model integrates them) and the decoding primitives under it, and, as methods, the reasoning
lane's and questions' step-at-a-time decoders (`reason_steps`: model.reasoning_lane,
`ask_steps`: model.questions) and the expert's context and velocity (its base class
model.expert_sampler.ExpertSampler, which training's flow-matching loss calls too).
Engines: "eager" (the reference, a growing dynamic KV cache) and "static" (a preallocated
StaticCache per user, fixed shapes for CUDA graphs).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import (
    Qwen3VLForConditionalGeneration,
    StaticCache,
)
from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

from alpamayo_ros.core.trajectory import UnicycleRollout, integrate
from alpamayo_ros.model import questions, reasoning_lane
from alpamayo_ros.model.attention import GROUPED_ATTENTION
from alpamayo_ros.model.ego_speed import t0_speed
from alpamayo_ros.model.expert_sampler import ExpertContext, ExpertSampler
from alpamayo_ros.model.flow_matching import euler_sample, guided
from alpamayo_ros.model.frame_decoding import decodes_jpeg_on
from alpamayo_ros.model.fused_layers import fuse_decoder_layers
from alpamayo_ros.model.kv_cache import STATIC_SLOTS, static_copy, static_key
from alpamayo_ros.model.lane_prefix import LanePrefix
from alpamayo_ros.model.processor import AlpamayoProcessor
from alpamayo_ros.model.quantization import quantize
from alpamayo_ros.model.sampling import sample_token, token_distribution, undo_padding_draws
from alpamayo_ros.model.stacked_projections import stack_projections
from alpamayo_ros.model.stage_timing import stage_timer
from alpamayo_ros.model.static_decode import (
    DecodeBuffers,
    decode_static,
)
from alpamayo_ros.model.vision_cache import FrameFeatures, VisionFeatureCache
from alpamayo_ros.planning.requests import (
    Answer,
    PlanRequest,
    PlanResult,
    PolicySample,
    QuestionRequest,
)
from alpamayo_ros.planning.settings import ENGINE_CHOICES

log = logging.getLogger(__name__)


ENGINES = ("eager", "static")
VISION_KEYS = ("pixel_values", "image_grid_thw", "mm_encoder_outputs")  # reused by guidance


class PlanCancelled(RuntimeError):
    """policy.plan was abandoned through its `cancel` event."""


class PolicyRuntime(ExpertSampler):
    """Inference on the modules AlpamayoPolicy builds (see the module text)."""

    # built by AlpamayoPolicy.__init__
    vlm: Qwen3VLForConditionalGeneration  # with ExpertSampler's expert modules
    processor: AlpamayoProcessor | None
    quantization: str
    default_engine: str
    vision_cache: VisionFeatureCache | None
    _static_caches: dict[str, tuple[tuple, StaticCache]]
    _chain_banned: torch.Tensor | None
    _decode_buffers: dict[str, DecodeBuffers]
    graph_decode: bool
    share_lane_prefix: bool
    _lane_prefix: LanePrefix | None
    prefix_reuses: int
    _cancel: threading.Event | None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def decodes_jpeg_on_device(self) -> bool:
        """Whether JPEG frames (EncodedImage) are decoded on the model's device (nvJPEG on
        CUDA with torchvision): the planner's image_decode "auto" keeps them encoded then."""
        return decodes_jpeg_on(self.device)

    def configure(
        self, engine: str = "eager", vision_cache_frames: int = 0, quantization: str = "none"
    ) -> None:
        """The speed settings of the planner node and the replay (their parameters engine,
        vision_cache_frames, quantization): engine "eager" (the reference) or "fast" (every
        plan on the static engine, the decode step and the expert pass on the grouped
        attention kernel (set_attention) and compiled: CUDA graphs on a GPU, inductor on a
        CPU; the layers' work around the attention compiled, compile_prefill; their
        projections of one input as one product, stack_projections); vision_cache_frames:
        enable_vision_cache; quantization: model.quantization.quantize (refused with the
        reason where it cannot run). A bad value raises ValueError naming it."""
        if engine not in ENGINE_CHOICES:
            raise ValueError(f"engine must be one of {ENGINE_CHOICES}, got {engine!r}")
        if vision_cache_frames < 0:
            raise ValueError(f"vision_cache_frames must be >= 0, got {vision_cache_frames}")
        quantize(self, quantization)
        self.enable_vision_cache(vision_cache_frames)
        if engine == "fast":
            mode = "reduce-overhead" if self.device.type == "cuda" else "default"
            self.set_attention("grouped")
            self.compile_prefill()
            self.stack_projections()
            self.compile_decode(mode)
            self.compile_expert(mode)
            self.default_engine = "static"
        else:
            self.default_engine = "eager"
        self.share_lane_prefix = engine == "fast"

    def set_attention(
        self, implementation: str, language_model: bool = True, expert: bool = True
    ) -> None:
        """The attention kernel of the language model's layers (prefill, decode) and/or the
        expert's: "sdpa" (as loaded by default), "eager" (matmul, softmax, matmul) or
        "grouped" (model.attention: the query heads of a key/value head stacked into one
        matrix product, for few queries over a long cache; long prefills still take SDPA).
        The vision tower keeps its own. On an H200 the SDPA path was most of a compiled
        expert pass (64 action queries over ~3300 cache slots: repeat_kv copies and a
        kernel that fills a quarter of the chip, bench/results/h200-2026-11-26.md)."""
        names = {"sdpa": "sdpa", "eager": "eager", "grouped": GROUPED_ATTENTION}
        if implementation not in names:
            raise ValueError(f"attention must be one of {tuple(names)}, got {implementation!r}")
        if language_model:
            self.vlm.model.language_model.config._attn_implementation = names[implementation]
        if expert:
            self.expert.config._attn_implementation = names[implementation]

    def compile_decode(self, mode: str = "reduce-overhead") -> None:
        """torch.compile the static engine's per-token functions: a plan's sampling and its
        step with the decode bookkeeping (model.static_decode), and the bare step of the
        reasoning lane and questions; called again (another mode), they are compiled
        afresh, not the compiled ones wrapped."""
        self._static_step = torch.compile(  # type: ignore[method-assign]
            PolicyRuntime._static_step.__get__(self), mode=mode, dynamic=False
        )
        self._static_sampling = torch.compile(  # type: ignore[method-assign]
            PolicyRuntime._static_sampling.__get__(self), mode=mode, dynamic=False
        )
        self._static_advance = torch.compile(  # type: ignore[method-assign]
            PolicyRuntime._static_advance.__get__(self), mode=mode, dynamic=False
        )

    def compile_prefill(self) -> None:
        """The language model's decoder layers with their elementwise work compiled around
        the attention (model.fused_layers: norms, projections, rotary embedding, residuals
        and MLP as two torch.compile'd functions with dynamic shapes, one graph each for
        all layers). These run in every prefill, whose length changes with the chain; the
        cache update and the attention stay eager. On an H200 the prefill's float32 norm
        arithmetic was ~25 of 170 ms of GPU time and the rotary embedding and residuals
        ~15 ms once the norms were compiled (bench/results/h200-2026-11-26.md). Inside the
        compiled decode step they are inlined into its graph."""
        fuse_decoder_layers(self.vlm.model.language_model.layers)

    def stack_projections(self) -> int:
        """The language model's and the expert's decoder layers on model.fused_layers' forward
        with q/k/v and gate/up as one matrix product each (model.stacked_projections: the
        parameters become views into the stacked weights, no second copy). Quantized
        layers keep their own products. Returns how many groups are stacked."""
        groups = [self.vlm.model.language_model.layers, self.expert.layers]
        for layers in groups:
            fuse_decoder_layers(layers)
        return sum(stack_projections(layers) for layers in groups)

    def compile_expert(self, mode: str = "reduce-overhead") -> None:
        """torch.compile the static engine's expert pass (see from_pretrained): the action
        projections and the expert over a StaticCache, fixed shapes. The eager engine's
        expert reads a growing DynamicCache and is never compiled (its torch.cat outputs
        are what CUDA graphs overwrite between replays). Called again, as compile_decode."""
        self._static_expert_pass = torch.compile(  # type: ignore[method-assign]
            PolicyRuntime._static_expert_pass.__get__(self), mode=mode, dynamic=False
        )

    # -- inference ------------------------------------------------------------------------
    @torch.inference_mode()
    def plan(
        self,
        requests: list[PlanRequest],
        num_samples: int = 1,
        temperature: float = 0.6,
        top_p: float = 0.98,
        max_reasoning_tokens: int = 128,
        seed: int | None = None,
        num_flow_steps: int | None = None,
        discrete: bool = False,
        trajectory_temperature: float = 0.0,
        cancel: threading.Event | None = None,
        reasoning_ids: list[Sequence[int]] | None = None,
        navigation_guidance: float = 1.0,
        noise_temperature: float = 1.0,
        engine: str | None = None,
    ) -> PlanResult:
        """Reasoning and trajectories for a batch of requests, num_samples each.

        discrete: emit the 128 trajectory tokens with the VLM after the reasoning (the
        autoregressive head) instead of running the action expert; trajectory_temperature
        samples them (0: greedy; GRPO rollouts sample).
        cancel: set it (from another thread) to abandon the plan at the next token: raises
        PlanCancelled (the node's shutdown).
        reasoning_ids: per request, a causal chain's token ids (what an earlier plan's
            sample holds in reasoning_token_ids): read with the prompt in the one prefill
            (teacher-forced, followed by <|cot_end|> <|traj_future_start|>) instead of being
            decoded; every sample of that request shares it (the trajectory lane).
        navigation_guidance: classifier-free guidance weight w for requests with navigation
            text (Alpamayo 1.5): the expert also reads an unguided cache (one more prefill:
            the prompt without the route span, then the guided causal chain) and each Euler
            step uses (1 - w) v_uncond + w v_cond. 1 = no guidance, nothing extra is run.
        noise_temperature: scale of the flow sampler's initial noise (1 = released).
        engine: "eager" (the reference: a growing dynamic KV cache) or "static": after the
            prefill the cache moves into a preallocated StaticCache, so every decode step
            and every expert pass has fixed shapes and addresses (what CUDA graphs capture;
            compile_decode in from_pretrained); equal to eager (tested on CPU). None: the
            policy's default_engine (configure; "eager" unless set).
        """
        engine = self.default_engine if engine is None else engine
        self._cancel = cancel
        if self.processor is None:
            raise RuntimeError("policy has no processor: load it with from_pretrained")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if navigation_guidance < 0:
            raise ValueError(f"navigation_guidance must be >= 0, got {navigation_guidance}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        device = self.device
        timings: dict[str, float] = {}
        generator = self._generator(seed)
        total_start = time.perf_counter()

        proc = self.processor
        forced_stop = None
        with stage_timer(timings, "preprocess", device):
            if reasoning_ids is None:
                inputs = self._inputs(requests, device)
            else:
                if len(reasoning_ids) != len(requests):
                    raise ValueError(
                        f"{len(reasoning_ids)} reasoning_ids for {len(requests)} requests"
                    )
                ends = [proc.special_ids["cot_end"], proc.special_ids["traj_future_start"]]
                inputs = self._inputs(requests, device, [[*ids, *ends] for ids in reasoning_ids])
                inputs.pop("labels")
                forced_stop = inputs.pop("future_start")
            inputs = self._on_device(inputs)
        S = num_samples

        # the trajectory lane: keep the prompt for the reasoning lane (model.lane_prefix)
        prompt = None  # its length: all but the chain, <|cot_end|>, <|traj_future_start|>
        if self.share_lane_prefix and reasoning_ids is not None and len(requests) == 1:
            if engine == "static" and not discrete:  # (the continuous expert needs no logits)
                prompt = inputs["input_ids"].shape[1] - len(reasoning_ids[0]) - 2
        with stage_timer(timings, "prefill", device):
            at = None if prompt is None else prompt - 1  # the logits after the prompt
            cache, logits, rope_deltas = self._prefill(inputs, at)
            if prompt is not None:
                self._keep_lane_prefix(requests[0], inputs["input_ids"], cache, prompt,
                                       logits, rope_deltas)  # fmt: skip
            rope_deltas = rope_deltas.repeat_interleave(S, dim=0)  # (B*S, 1)
            logits = logits.repeat_interleave(S, dim=0)
            if S > 1:
                cache.batch_repeat_interleave(S)
            attention = inputs["attention_mask"].repeat_interleave(S, dim=0)
            if engine == "static":
                room = self.action_space.dims[0]
                if discrete:
                    room = max(room, self.config.tokens_per_future_traj)
                decode = 0 if reasoning_ids is not None else max_reasoning_tokens
                cache = self._to_static("plan", cache, attention.shape[1] + decode + room + 1)

        with stage_timer(timings, "reasoning", device):
            if reasoning_ids is None:
                decoded = self._decode_reasoning(
                    logits, cache, attention, rope_deltas, temperature, top_p,
                    max_reasoning_tokens, generator, stop_lag=1 if engine == "static" else 0,
                )  # fmt: skip
                text_ids, full_ids, future_start_pos, complete, attention, stop_logits = decoded
            else:  # the chain was read with the prompt: nothing to decode
                assert forced_stop is not None
                ends = [proc.special_ids["cot_end"], proc.special_ids["traj_future_start"]]
                text_ids = [list(ids) for ids in reasoning_ids for _ in range(S)]
                full_ids = [[*ids, *ends] for ids in text_ids]
                future_start_pos = forced_stop.to(device).repeat_interleave(S)
                complete = np.ones(len(text_ids), dtype=bool)
                stop_logits = logits  # after <|traj_future_start|>, the last position

        traj_tokens = None
        with stage_timer(timings, "trajectory", device):
            if discrete:
                traj_tokens = self._decode_trajectory_tokens(
                    stop_logits, cache, attention, rope_deltas, generator, trajectory_temperature
                )
                controls = torch.from_numpy(
                    self.config.future_tokenizer.decode(traj_tokens)
                ).float()
                traj_ids = (traj_tokens + self.processor.traj_token_start).tolist()
            else:
                self._check_cancel()
                ctx = self.expert_context(cache, attention, future_start_pos, rope_deltas)
                velocity = lambda x, t: self.expert_velocity(ctx, x, t)  # noqa: E731
                weights = [navigation_guidance if r.navigation else 1.0 for r in requests]
                if any(w != 1.0 for w in weights):
                    with stage_timer(timings, "guidance_prefill", device):
                        vision = {k: inputs[k] for k in VISION_KEYS if k in inputs}
                        ctx_u = self._unguided_context(requests, full_ids, S, vision, engine)
                    w = torch.tensor(weights, device=device).repeat_interleave(S)[:, None, None]
                    velocity = guided(velocity, lambda x, t: self.expert_velocity(ctx_u, x, t), w)
                action = euler_sample(
                    velocity, (attention.shape[0], *self.action_space.dims),
                    num_flow_steps or self.config.flow_matching.num_inference_steps,
                    generator=generator, device=device, noise_temperature=noise_temperature,
                )  # fmt: skip
                controls = self.action_space.denormalise(action).cpu()
        timings["total"] = 1000.0 * (time.perf_counter() - total_start)

        spec = self.config.action_space.unicycle_spec("trapezoid")
        controls_np = controls.numpy().astype(np.float64)
        v0s = self.t0_speeds(requests)
        samples: list[list[PolicySample]] = []
        for b, req in enumerate(requests):
            rows = slice(b * S, (b + 1) * S)
            roll = integrate(controls_np[rows], float(v0s[b]), spec)
            xyz, rot = roll.to_xyz_rot(z=float(req.ego.xyz[-1, 2]))
            per: list[PolicySample] = []
            for s in range(S):
                i = b * S + s
                per.append(
                    PolicySample(
                        reasoning=str(
                            self.processor.tokenizer.decode(text_ids[i], skip_special_tokens=True)
                        ).strip(),
                        controls=controls_np[i],
                        rollout=_index_rollout(roll, s),
                        xyz=xyz[s],
                        rot=rot[s],
                        reasoning_complete=bool(complete[i]),
                        reasoning_token_ids=tuple(text_ids[i]),
                        trajectory_tokens=None if traj_tokens is None else traj_tokens[i],
                        generated_ids=tuple(full_ids[i])
                        + (() if traj_tokens is None else tuple(traj_ids[i])),
                    )
                )
            samples.append(per)
        return PlanResult(samples=samples, timings_ms=timings)

    def t0_speeds(self, requests: list[PlanRequest]) -> np.ndarray:
        """(B,) m/s the trajectories are integrated from: the released action space's own
        estimate from each request's ego history (model.ego_speed, float32 as released;
        within float32 rounding of the core's req.ego.speed)."""
        xyz = torch.tensor(np.stack([r.ego.xyz for r in requests]), dtype=torch.float32)
        rot = torch.tensor(np.stack([r.ego.rot for r in requests]), dtype=torch.float32)
        speeds = t0_speed(xyz, rot, self.config.action_space.dt)
        return speeds.double().numpy()

    def _generator(self, seed: int | None) -> torch.Generator:
        """A sampling generator on the model's device: seeded, or fresh randomness."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,))))
        return generator

    def _on_device(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Processor outputs on the model's device, the pixels in the VLM's dtype."""
        out = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        if "pixel_values" in out:
            out["pixel_values"] = out["pixel_values"].to(self.vlm.dtype)
        return out

    # -- the vision cache -------------------------------------------------------------------
    def enable_vision_cache(self, capacity: int = 32) -> None:
        """Keep each frame's vision-tower outputs for later plans (model.vision_cache): a
        frame seen by an earlier plan is neither preprocessed nor encoded again. capacity:
        frames kept (0 turns the cache off)."""
        self.vision_cache = VisionFeatureCache(capacity) if capacity > 0 else None

    def _inputs(
        self,
        requests: list[PlanRequest],
        device: torch.device,
        continuations: list[list[int]] | None = None,
    ) -> dict[str, Any]:
        """The processor's inputs for requests. With the vision cache on, only frames no
        earlier plan encoded are preprocessed; the rest of the vision work is left to
        _prefill (so the prefill stage still holds the vision tower)."""
        assert self.processor is not None
        proc, cache = self.processor, self.vision_cache
        if cache is None:
            return proc(requests, continuations=continuations, device=device)
        frames = [img for r in requests for img in proc.layout(r.images, r.cameras)[0]]
        kept = [cache.get(f) for f in frames]
        missing = [i for i, k in enumerate(kept) if k is None]
        grids = [proc.images.grid(*f.shape[:2]) for f in frames]
        pixels = (
            proc.images([frames[i] for i in missing], device, proc.decoder)["pixel_values"]
            if missing
            else None
        )
        vision: dict[str, Any] = {
            "image_grid_thw": torch.tensor(grids, dtype=torch.long, device=device),
            "pending_frames": (frames, kept, missing, pixels),
        }
        return proc(requests, continuations=continuations, vision=vision)

    def _encode_frames(self, pending: tuple, grids: torch.Tensor) -> dict[str, Any]:
        """The vision tower over the frames the cache lacks (stored there), and every
        frame's features in prompt order, as the VLM's mm_encoder_outputs."""
        frames, kept, missing, pixels = pending
        assert self.vision_cache is not None
        if missing:
            out = self.vlm.model.get_image_features(pixels.to(self.vlm.dtype), grids[missing])
            for k, i in enumerate(missing):
                deep = tuple(d[k] for d in out.deepstack_features)
                kept[i] = FrameFeatures(out.pooler_output[k], deep)
                self.vision_cache.put(frames[i], kept[i])
        # per-frame tuples, as transformers' get_image_features returns them
        tokens: Any = tuple(k.tokens for k in kept)
        deepstack: Any = [
            tuple(k.deepstack[j] for k in kept) for j in range(len(kept[0].deepstack))
        ]
        features = BaseModelOutputWithDeepstackFeatures(
            pooler_output=tokens, deepstack_features=deepstack
        )
        return {"image": features}

    def _prefill(
        self, inputs: dict[str, Any], logits_at: int | None = None
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """The VLM over a prompt: (its KV cache, the last position's logits (B, V), or those
        at position `logits_at`, the multimodal rotary deltas (B, 1) that continue its
        positions). Frames pending from the vision cache are encoded here, and inputs gain
        their mm_encoder_outputs."""
        pending = inputs.pop("pending_frames", None)
        if pending is not None:
            inputs["mm_encoder_outputs"] = self._encode_frames(pending, inputs["image_grid_thw"])
        self.vlm.model.rope_deltas = None  # computed afresh from this prompt's images
        keep: int | torch.Tensor = 1
        if logits_at is not None:
            keep = torch.tensor([logits_at], device=inputs["input_ids"].device)
        out = self.vlm(**inputs, use_cache=True, logits_to_keep=keep)
        return out.past_key_values, out.logits[:, -1], self.vlm.model.rope_deltas

    def _to_static(self, user: str, cache, need: int, length: int | None = None) -> StaticCache:
        """engine "static": a prefilled cache moved into `user`'s StaticCache of at least
        `need` slots (rounded up, so prompts of similar length share one compiled step), the
        one from its last call when the shapes match (refilled in place: graphs captured
        over it replay). length: only the first `length` tokens (default: all)."""
        slots = -(-need // STATIC_SLOTS) * STATIC_SLOTS
        key, kept = static_key(cache, slots), self._static_caches.get(user)
        static = static_copy(cache, slots, kept[1] if kept and kept[0] == key else None, length)
        self._static_caches[user] = (key, static)
        return static

    def _keep_lane_prefix(self, request, input_ids, cache, prompt: int, logits, rope_deltas):
        """A trajectory-lane plan's prompt of `prompt` tokens (its first row: one request)
        kept for the reasoning lane in the "prefix" static cache (model.lane_prefix)."""
        assert self.processor is not None
        frames = self.processor.layout(request.images, request.cameras)[0]
        self._to_static("prefix", cache, prompt, length=prompt)
        self._lane_prefix = LanePrefix.of(frames, input_ids[:, :prompt], logits, rope_deltas)

    def _check_cancel(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise PlanCancelled("plan abandoned: the planner is shutting down")

    def _step_vlm(self, tokens: torch.Tensor, cache, attention: torch.Tensor, rope_deltas):
        """Feed one token per sequence; attention (B, L+1) already includes it. A static
        cache gets the mask padded to its slots (fixed shapes: _static_step)."""
        text_pos = attention[:, :-1].sum(dim=-1, keepdim=True)  # real tokens before it
        pos = (text_pos + rope_deltas).unsqueeze(0).expand(3, -1, -1)
        if isinstance(cache, StaticCache):
            full = attention.new_zeros((attention.shape[0], cache.get_max_length()))
            full[:, : attention.shape[1]] = attention
            return self._static_step(tokens[:, None], full, pos, cache)
        out = self.vlm(
            input_ids=tokens[:, None], attention_mask=attention, position_ids=pos,
            past_key_values=cache, use_cache=True,
        )  # fmt: skip
        return out.logits[:, -1]

    def _static_step(self, tokens, attention, position_ids, cache) -> torch.Tensor:
        """One decode step on a static cache: (B, 1) ids, (B, slots) mask, (3, B, 1)
        positions -> (B, V) logits; fixed shapes, so compile_decode can capture it."""
        out = self.vlm(
            input_ids=tokens, attention_mask=attention, position_ids=position_ids,
            past_key_values=cache, use_cache=True,
        )  # fmt: skip
        return out.logits[:, -1]

    def _chain_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """A copy of next-token logits (B, V) with what a causal chain may not hold masked
        (_chain_mask)."""
        return logits.masked_fill(self._chain_mask(logits.shape[-1], logits.device), -torch.inf)

    def _chain_mask(self, vocab: int, device: torch.device) -> torch.Tensor:
        """(V,) bool: the tokens a causal chain may not hold: the trajectory tokens and the
        vision placeholders (image pad, vision start/end: tokens only the processor places,
        which a teacher-forced chain would turn into image slots). Built once per device
        (one kernel per token, no host-to-device index copy)."""
        banned = self._chain_banned
        if banned is None or banned.device != device or banned.numel() != vocab:
            assert self.processor is not None
            proc = self.processor
            banned = torch.zeros(vocab, dtype=torch.bool)
            banned[proc.traj_token_start : proc.traj_token_start + self.config.traj_vocab_size] = (
                True
            )
            banned[list(proc.vision_token_ids)] = True
            banned = banned.to(device)
            self._chain_banned = banned
        return banned

    def _static_sampling(
        self, logits: torch.Tensor, banned: torch.Tensor, temperature: float, top_p: float
    ) -> torch.Tensor:
        """The static engine's sampling before the draw (model.static_decode): logits (B, V)
        with the chain mask (V,) -> token_distribution. Fixed shapes: compile_decode
        captures it."""
        return token_distribution(logits.masked_fill(banned, -torch.inf), temperature, top_p)

    def _static_advance(
        self, token: torch.Tensor, buffers: DecodeBuffers, cache: StaticCache, rope_deltas
    ) -> None:
        """Feed the drawn ids (B,) of every sequence on the static cache and update the
        decode state in place (model.static_decode): what _decode_reasoning does per token
        around its _step_vlm, as one fixed-shape function that compile_decode captures."""
        assert self.processor is not None
        pad_id, stop_id = self.processor.pad_id, self.processor.special_ids["traj_future_start"]
        b = buffers
        layer: Any = cache.layers[0]
        slot = layer.cumulative_length.clone().view(1)  # this token's slot
        live = ~b.finished
        token = torch.where(b.finished, pad_id, token)
        b.tokens.index_copy_(1, slot, token[:, None])
        b.mask.index_copy_(1, slot, live.long()[:, None])
        position_ids = (b.text_pos + rope_deltas).unsqueeze(0).expand(3, -1, -1)
        b.text_pos.add_(live.long()[:, None])
        newly = live & (token == stop_id)
        b.stop_pos.copy_(torch.where(newly, slot, b.stop_pos))
        out = self.vlm(
            input_ids=token[:, None], attention_mask=b.mask, position_ids=position_ids,
            past_key_values=cache, use_cache=True,
        )  # fmt: skip
        logits = out.logits[:, -1]
        b.stop_logits.copy_(torch.where(newly[:, None], logits, b.stop_logits))
        b.logits.copy_(logits)
        b.finished.logical_or_(newly)
        b.all_finished.index_copy_(0, slot, b.finished.all().view(1))

    def _decode_reasoning(
        self, logits, cache, attention, rope_deltas, temperature, top_p, max_tokens, generator,
        stop_lag: int = 0,
    ):  # fmt: skip
        """Sample the reasoning until <|traj_future_start|> is emitted and fed (so the cache
        holds it), with all trajectory tokens and the vision placeholders (image pad, vision
        start/end: tokens only the processor places) masked out of the logits.

        stop_lag: how many steps old the "all finished" flag read each step is (the only
        host synchronisation of a step). 0 reads the step's own flag, so the host waits for
        every step; with 1 the host queues step k+1 while step k runs on the GPU (on an H200
        0.85 ms of host time per token, bench/results) and at most one step of padding runs
        after every sequence has stopped: finished sequences emit pad tokens with attention
        0, so the chains, stop positions and trajectories are those of stop_lag 0.

        On a StaticCache (engine "static") each token runs as model.static_decode's two
        fixed-shape functions and a draw (what compile_decode captures as CUDA graphs); this
        loop is their reference, and runs instead with graph_decode off (its compiled decode
        step alone, what the static engine did before: gpu_suite compares the two)."""
        assert self.processor is not None
        proc = self.processor
        stop_id = proc.special_ids["traj_future_start"]
        if isinstance(cache, StaticCache) and self.graph_decode:
            gen, stop_pos, finished, attention, stop_logits = decode_static(
                self, logits, cache, attention, rope_deltas, temperature, top_p, max_tokens,
                generator, stop_lag,
            )  # fmt: skip
            text_ids, full_ids = self._chain_ids(gen)
            return text_ids, full_ids, stop_pos, finished.cpu().numpy(), attention, stop_logits
        n = logits.shape[0]
        finished = torch.zeros(n, dtype=torch.bool, device=logits.device)
        stop_pos = torch.full((n,), -1, dtype=torch.long, device=logits.device)
        generated: list[torch.Tensor] = []
        stop_logits = logits.clone()  # next-token logits right after each sequence's stop
        flags: list[torch.Tensor] = []  # per step: every sequence finished (on the device)
        states: list[torch.Tensor] = []  # the generator's state before each step's draw
        for _ in range(max_tokens):
            if len(flags) > stop_lag and bool(flags[-1 - stop_lag]):
                break
            if stop_lag:
                states.append(generator.get_state())
            logits = self._chain_logits(logits)
            token = sample_token(logits, temperature, top_p, generator)
            token = torch.where(finished, torch.full_like(token, proc.pad_id), token)
            generated.append(token)
            live = ~finished
            attention = torch.cat([attention, live.long()[:, None]], dim=1)
            newly = live & (token == stop_id)
            stop_pos = torch.where(
                newly, torch.full_like(stop_pos, attention.shape[1] - 1), stop_pos
            )
            self._check_cancel()
            logits = self._step_vlm(token, cache, attention, rope_deltas)
            stop_logits = torch.where(newly[:, None], logits, stop_logits)
            finished |= newly
            flags.append(finished.all())
            if stop_lag == 0 and bool(flags[-1]):
                break
        if stop_lag and flags:
            undo_padding_draws(generator, states, torch.stack(flags))
        complete = finished.clone()
        stop_logits = torch.where(finished[:, None], stop_logits, logits)
        # Sequences that never stopped: the expert starts after their last token.
        stop_pos = torch.where(
            finished, stop_pos, torch.full_like(stop_pos, attention.shape[1] - 1)
        )
        gen = torch.stack(generated, dim=1) if generated else torch.zeros((n, 0), dtype=torch.long)
        text_ids, full_ids = self._chain_ids(gen)
        return text_ids, full_ids, stop_pos, complete.cpu().numpy(), attention, stop_logits

    def _chain_ids(self, generated: torch.Tensor) -> tuple[list[list[int]], list[list[int]]]:
        """Generated ids (B, steps), pad after each stop -> per sequence the chain up to
        <|cot_end|> and every id up to and with <|traj_future_start|>."""
        assert self.processor is not None
        proc = self.processor
        stop_id, cot_end = proc.special_ids["traj_future_start"], proc.special_ids["cot_end"]
        text_ids, full_ids = [], []
        for row in generated.tolist():
            end = row.index(stop_id) if stop_id in row else len(row)
            text = [t for t in row[:end] if t != proc.pad_id]
            text_ids.append(text[: text.index(cot_end)] if cot_end in text else text)
            full_ids.append([t for t in row[: end + 1] if t != proc.pad_id])
        return text_ids, full_ids

    def _unguided_context(
        self,
        requests: list[PlanRequest],
        full_ids: list[list[int]],
        S: int,
        vision: dict[str, torch.Tensor] | None = None,
        engine: str = "eager",
    ) -> ExpertContext:
        """The expert's context without navigation (classifier-free guidance): one prefill
        of the requests' prompts without the route span, repeated to S samples each, then
        each sample's guided output (full_ids: its causal chain through
        <|traj_future_start|>, B*S rows) fed through that cache in one forward pass, as the
        1.5 release replays the guided chain. vision: the guided prefill's pixel_values and
        image_grid_thw (the same images: not preprocessed again). engine "static": the
        cache then moves into its own StaticCache, so the unguided expert passes run on
        the compiled static pass as the guided ones do."""
        assert self.processor is not None
        device = self.device
        plain = [dataclasses.replace(r, navigation=None) for r in requests]
        inputs = self._on_device(self.processor(plain, vision=vision, device=device))
        self._check_cancel()
        cache, _, rope_deltas = self._prefill(inputs)
        rope_deltas = rope_deltas.repeat_interleave(S, dim=0)
        if S > 1:
            cache.batch_repeat_interleave(S)
        attention = inputs["attention_mask"].repeat_interleave(S, dim=0)
        n, prefix = attention.shape
        lengths = torch.tensor([len(ids) for ids in full_ids], device=device)
        stop_pos = prefix + lengths - 1  # each row's last token: <|traj_future_start|>
        width = int(lengths.max()) if len(full_ids) else 0
        if width:
            tokens = torch.full((n, width), self.processor.pad_id, dtype=torch.long, device=device)
            live = torch.zeros((n, width), dtype=torch.long, device=device)
            for i, ids in enumerate(full_ids):
                tokens[i, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
                live[i, : len(ids)] = 1
            text_pos = attention.sum(dim=-1, keepdim=True) + live.cumsum(dim=-1) - 1
            pos = (text_pos + rope_deltas).unsqueeze(0).expand(3, -1, -1)
            attention = torch.cat([attention, live], dim=1)
            self._check_cancel()
            self.vlm(
                input_ids=tokens, attention_mask=attention, position_ids=pos,
                past_key_values=cache, use_cache=True, logits_to_keep=1,
            )  # fmt: skip
        if engine == "static":
            T = self.action_space.dims[0]
            cache = self._to_static("unguided", cache, attention.shape[1] + T + 1)
        return self.expert_context(cache, attention, stop_pos, rope_deltas)

    # -- the reasoning lane and questions (model.reasoning_lane, model.questions) ----------
    # a causal chain for one request, one step at a time
    reason_steps = reasoning_lane.reason_steps

    def ask(
        self,
        question: QuestionRequest,
        max_tokens: int = 256,
        temperature: float = 0.6,
        top_p: float = 0.98,
        seed: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Answer:
        """Answer a question about the scene with Alpamayo 1.5's question prompt (the
        labelled images, <|question_start|>question<|question_end|>, <|answer_start|>):
        decodes until <|answer_end|> (complete), the end of the turn, or max_tokens.
        cancel: set it to abandon the answer at the next token (PlanCancelled)."""
        steps = self.ask_steps(question, max_tokens, temperature, top_p, seed)
        while True:
            if cancel is not None and cancel.is_set():
                steps.close()
                raise PlanCancelled("question abandoned")
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    ask_steps = questions.ask_steps  # `ask` one step at a time

    def _decode_trajectory_tokens(
        self, logits, cache, attention, rope_deltas, generator, temperature: float = 0.0
    ) -> np.ndarray:
        """The discrete head: 2T tokens (greedy, or sampled at `temperature`), each
        restricted to the future-trajectory ids, starting from the logits right after
        <|traj_future_start|>. Returns local ids (B, 2T)."""
        assert self.processor is not None
        lo = self.processor.traj_token_start
        hi = lo + self.config.future_tokenizer.vocab_size
        ids = []
        for _ in range(self.config.tokens_per_future_traj):
            masked = torch.full_like(logits, float("-inf"))
            masked[:, lo:hi] = logits[:, lo:hi]
            token = sample_token(masked, temperature, 1.0, generator)
            ids.append(token)
            attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
            logits = self._step_vlm(token, cache, attention, rope_deltas)
        return (torch.stack(ids, dim=1) - lo).cpu().numpy()


def _index_rollout(roll: UnicycleRollout, s: int) -> UnicycleRollout:
    return UnicycleRollout(
        x=roll.x[s], y=roll.y[s], heading=roll.heading[s], speed=roll.speed[s],
        accel=roll.accel[s], curvature=roll.curvature[s], dt=roll.dt,
    )  # fmt: skip
