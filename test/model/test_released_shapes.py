"""The released 10B shapes with the tokenizer the benchmark uses, built on the meta device:
the processor's image tokens are the ids the VLM looks for, as many as its vision tower
makes features (the bench once fed 0 image tokens for 2880 features)."""

import numpy as np
import torch

from alpamayo_ros.core.ego_history import EgoPoseBuffer, StampedPose
from alpamayo_ros.model.tiny import released_random_policy
from alpamayo_ros.planning.requests import PlanRequest


def test_released_shapes_agree_on_image_tokens_and_sizes():
    policy = released_random_policy(device="meta", dtype=torch.bfloat16)
    vlm = policy.vlm.config
    n_vlm = sum(p.numel() for p in policy.vlm.parameters())
    n_expert = sum(p.numel() for n, p in policy.named_parameters() if not n.startswith("vlm."))
    assert 8.7e9 < n_vlm < 8.9e9 and 2.2e9 < n_expert < 2.35e9  # 8.80 B + 2.28 B
    proc = policy.processor
    assert vlm.image_token_id == proc.image_pad_id
    assert vlm.vision_start_token_id == proc.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    buf = EgoPoseBuffer()
    for k in range(20):
        buf.add(StampedPose(0.1 * k, (1.0 * k, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    frames = tuple(np.zeros((1080, 1920, 3), np.uint8) for _ in range(16))
    inputs = proc([PlanRequest(frames, buf.history(1.9))])
    image_tokens = int((inputs["input_ids"] == vlm.image_token_id).sum())
    merge = vlm.vision_config.spatial_merge_size
    features = int(inputs["image_grid_thw"].prod(dim=-1).sum()) // merge**2
    assert image_tokens == features == 2880  # 16 frames x 180 tokens at the released budget
    assert inputs["pixel_values"].shape[-1] == (
        3 * vlm.vision_config.temporal_patch_size * vlm.vision_config.patch_size**2
    )


def test_released_1_5_shapes_with_a_labelled_two_camera_prompt():
    """Alpamayo 1.5: the same network; the prompt labels cameras and frames, and the image
    tokens still agree with the vision tower's features."""
    policy = released_random_policy(device="meta", dtype=torch.bfloat16, family="alpamayo1_5")
    assert policy.config.family == "alpamayo1_5"
    vlm, proc = policy.vlm.config, policy.processor
    assert proc.special_ids["route_start"] > proc.special_ids["traj_history"]
    buf = EgoPoseBuffer()
    for k in range(20):
        buf.add(StampedPose(0.1 * k, (1.0 * k, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))
    frames = tuple(np.zeros((1080, 1920, 3), np.uint8) for _ in range(8))
    cams = ("camera_front_wide_120fov", "camera_front_tele_30fov")
    inputs = proc([PlanRequest(frames, buf.history(1.9), cams, "Turn right in 30m")])
    ids = inputs["input_ids"][0]
    assert int((ids == vlm.image_token_id).sum()) == 8 * 180
    text = proc.tokenizer.decode(ids[ids != vlm.image_token_id])
    assert "user\nFront camera: frame 0 <|vision_start|><|vision_end|>frame 1 " in text
    assert "<|vision_end|>Front telephoto camera: frame 0 <|vision_start|>" in text
    assert "<|route_start|>Turn right in 30m<|route_end|>" in text


def test_hardware_floors_of_the_released_shapes():
    """bench/floors.py on the released shapes: the brief's figures (bf16 on an H100 at its
    measured 3.0 TB/s: decode ~5.0 ms per token; the expert reads 2.3 B weights per Euler
    step; a ~3000-token prefill is ~45 TFLOP)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.floors import ModelSizes, plan_floors

    sizes = ModelSizes.of(released_random_policy(device="meta", dtype=torch.bfloat16))
    assert 7.0e9 < sizes.text < 8.3e9 and 2.2e9 < sizes.expert < 2.4e9
    floors = plan_floors(sizes, 2, prompt_tokens=3000, vision_patches=0, decoded_tokens=1,
                         flow_steps=1)  # fmt: skip
    assert 4.5 < floors.reasoning_ms < 5.6  # per decoded token
    assert 1.4 < floors.trajectory_ms < 1.7  # per Euler step
    assert 40 < floors.prefill_ms * 989e12 / 1e15 < 50  # TFLOP of the prompt
    assert floors.ratios({"prefill": 2 * floors.prefill_ms, "total": 1.0}) == {"prefill": 2.0}
