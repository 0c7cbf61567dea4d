"""How the planner plans, declared once: sampling, the sample it publishes, and when it
falls back to a controlled stop. Torch-free (node parameters build it without a model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from alpamayo_ros.core.clock import ClockSettings
from alpamayo_ros.core.plan import PlanLimits

SampleChoice = Literal["first", "median", "consistent"]
SAMPLE_CHOICES: tuple[str, ...] = ("first", "median", "consistent")
LatePlan = Literal["stop", "drop"]
LATE_PLAN_CHOICES: tuple[str, ...] = ("stop", "drop")
# The model's speed settings (AlpamayoPolicy.configure; the node's engine and quantization
# parameters): engine "eager" (the reference) or "fast" (static KV cache, compiled steps).
ENGINE_CHOICES = ("eager", "fast")
QUANTIZATION_CHOICES = ("none", "fp8", "fp8_prefill")
# Where JPEG camera images are decoded: on arrival (OpenCV), by the model on its device,
# or (auto) by the model where it decodes on its device (jpeg_on_model).
IMAGE_DECODE_CHOICES = ("auto", "arrival", "model")


def jpeg_on_model(image_decode: str, policy: object) -> bool:
    """Whether JPEG frames are kept encoded for `policy` to decode: image_decode "model",
    or "auto" with a policy whose `decodes_jpeg_on_device` is true (a CUDA device with
    torchvision's nvJPEG decoder). A bad value raises ValueError naming it."""
    if image_decode not in IMAGE_DECODE_CHOICES:
        raise ValueError(
            f"image_decode must be one of {IMAGE_DECODE_CHOICES}, got {image_decode!r}"
        )
    if image_decode == "auto":
        return bool(getattr(policy, "decodes_jpeg_on_device", False))
    return image_decode == "model"


@dataclass(frozen=True)
class PlannerSettings:
    """How plans are made and when the planner falls back to a stop.

    num_samples, temperature, top_p, max_reasoning_tokens, num_flow_steps: sampling
        (num_flow_steps None = the checkpoint's).
    sample_choice: publish the "first" sample, the one closest to the samples' "median", or
        ("consistent") the one closest to the median among the samples whose causal chain
        states what their own trajectory does (all samples when none does); in every case
        only among the samples that pass the plan checks (limits), when any does.
    max_input_age: seconds; any required input older than this at a tick -> stop plan.
    max_plan_age: seconds; a model plan whose t0 is older than this when it is ready to
        publish is late: late_plan "stop" publishes a flagged stop plan instead, "drop"
        publishes nothing (counted either way).
    stop_decel: m/s^2 of the controlled stop.
    hold_at_standstill: a drawn sample whose speed falls through zero (from forward motion)
        stops there and stays stopped while its speed is negative (core.trajectory
        held_at_standstill) before the plan checks; False: judged as drawn (speeds below the
        limits' minimum make it invalid).
    frame_id: the ego frame the plans are expressed in.
    seed: base seed (each plan adds its tick count); None draws a fresh one every time.
    clock: when the clock counts as jumping back, and how far ahead of it inputs may be.
    navigation_max_age: seconds; navigation text received longer ago than this is dropped
        (not given to the model, counted) (Alpamayo 1.5).
    navigation_guidance: classifier-free guidance weight of plans with navigation text
        (1: none; the 1.5 release's example uses 1.5).
    noise_temperature: scale of the flow sampler's initial noise (1: released; the 1.5
        release's navigation example uses 0.6).
    """

    num_samples: int = 6
    temperature: float = 0.6
    top_p: float = 0.98
    max_reasoning_tokens: int = 128
    num_flow_steps: int | None = None
    sample_choice: SampleChoice = "consistent"
    max_input_age: float = 0.3
    max_plan_age: float = 1.0
    late_plan: LatePlan = "stop"
    stop_decel: float = 2.0
    hold_at_standstill: bool = True
    frame_id: str = "base_link"
    seed: int | None = None
    limits: PlanLimits = field(default_factory=PlanLimits)
    clock: ClockSettings = field(default_factory=ClockSettings)
    navigation_max_age: float = 10.0
    navigation_guidance: float = 1.0
    noise_temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.navigation_max_age > 0:
            raise ValueError(f"navigation_max_age must be > 0 s, got {self.navigation_max_age}")
        if self.navigation_guidance < 0:
            raise ValueError(f"navigation_guidance must be >= 0, got {self.navigation_guidance}")
        if not self.noise_temperature > 0:
            raise ValueError(f"noise_temperature must be > 0, got {self.noise_temperature}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.sample_choice not in SAMPLE_CHOICES:
            raise ValueError(
                f"sample_choice must be one of {SAMPLE_CHOICES}, got {self.sample_choice!r}"
            )
        if not self.max_input_age > 0:
            raise ValueError(f"max_input_age must be > 0 s, got {self.max_input_age}")
        if not self.max_plan_age > 0:
            raise ValueError(f"max_plan_age must be > 0 s, got {self.max_plan_age}")
        if self.late_plan not in LATE_PLAN_CHOICES:
            raise ValueError(
                f"late_plan must be one of {LATE_PLAN_CHOICES}, got {self.late_plan!r}"
            )
        if not self.stop_decel > 0:
            raise ValueError(f"stop_decel must be > 0 m/s^2, got {self.stop_decel}")
