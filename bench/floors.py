"""Hardware floors of one plan, to report every stage as time and as a ratio to its floor
(the brief's "think in floors first").

- decode (reasoning): bandwidth-bound, every token reads the language model's weights and
  the LM head once: text_bytes / bandwidth per decoded token;
- prefill: compute-bound, 2 FLOP per weight per token for the language model over the
  prompt, plus the vision tower over its patches: flops / peak;
- trajectory (expert): bandwidth-bound, each Euler step reads the expert's weights (and the
  action projections): expert_bytes / bandwidth per step.

Defaults are one NVIDIA H100 SXM: 3.0 TB/s measured bandwidth (../shared/perf) and 989
dense bf16 TFLOP/s. Attention's own FLOPs and the KV cache's bytes are left out (small at
these lengths), so real floors are a little higher: ratios are upper bounds on headroom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

H100_BANDWIDTH = 3.0e12  # bytes/s, measured (shared/perf)
H100_BF16_FLOPS = 989e12  # dense bf16 FLOP/s


@dataclass(frozen=True)
class ModelSizes:
    """Parameter counts: text (language model + LM head), vision tower, expert (the expert
    transformer and the action projections)."""

    text: int
    vision: int
    expert: int

    @classmethod
    def of(cls, policy) -> ModelSizes:  # an AlpamayoPolicy
        def count(module) -> int:
            return sum(p.numel() for p in module.parameters())

        vlm = policy.vlm
        text = count(vlm.model.language_model) + count(vlm.lm_head)
        expert = count(policy.expert) + count(policy.action_in_proj)
        expert += count(policy.action_out_proj)
        return cls(text=text, vision=count(vlm.model.visual), expert=expert)


@dataclass(frozen=True)
class Floors:
    """Milliseconds per stage at the hardware floor."""

    prefill_ms: float
    reasoning_ms: float
    trajectory_ms: float

    def ratios(self, measured_ms: dict[str, float]) -> dict[str, float]:
        """measured / floor per stage present in both."""
        out = {}
        for stage, floor in asdict(self).items():
            key = stage.removesuffix("_ms")
            if key in measured_ms and floor > 0:
                out[key] = measured_ms[key] / floor
        return out


def plan_floors(
    sizes: ModelSizes,
    bytes_per_param: float,
    prompt_tokens: int,
    vision_patches: int,
    decoded_tokens: int,
    flow_steps: int,
    bandwidth: float = H100_BANDWIDTH,
    flops: float = H100_BF16_FLOPS,
) -> Floors:
    """Floors of one plan: prompt_tokens through the language model, vision_patches through
    the vision tower, decoded_tokens steps of decode, flow_steps expert passes."""
    prefill_flop = 2.0 * sizes.text * prompt_tokens + 2.0 * sizes.vision * vision_patches
    return Floors(
        prefill_ms=1000.0 * prefill_flop / flops,
        reasoning_ms=1000.0 * decoded_tokens * sizes.text * bytes_per_param / bandwidth,
        trajectory_ms=1000.0 * flow_steps * sizes.expert * bytes_per_param / bandwidth,
    )
