"""Image preprocessing in torch equals the released pipeline's torchvision processor, with
torchvision absent (stored reference: test/model/data/torchvision_pixels.json, made with
transformers' Qwen2VLImageProcessor on the torchvision backend, as the official code calls it)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alpamayo_ros.model.image_preprocessing import ImagePreprocessor
from alpamayo_ros.model.processor import default_image_processor

REFERENCE = json.loads((Path(__file__).parent / "data" / "torchvision_pixels.json").read_text())


def frames_of(case):
    rng = np.random.default_rng(case["seed"])
    return [rng.integers(0, 256, (case["height"], case["width"], 3), dtype=np.uint8)
            for _ in range(2)]  # fmt: skip


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: f"{c['height']}x{c['width']}")
def test_pixels_equal_the_torchvision_processor(case):
    pre = ImagePreprocessor(min_pixels=case["min_pixels"], max_pixels=case["max_pixels"])
    out = pre(frames_of(case))
    pv = out["pixel_values"].contiguous()
    assert out["image_grid_thw"].tolist() == case["grid"]
    assert pv.dtype == torch.float32
    assert float(pv.double().mean()) == pytest.approx(case["mean"], abs=1e-9)
    assert pv[0, :8].tolist() == case["first"]
    assert hashlib.sha256(pv.numpy().tobytes()).hexdigest() == case["sha256"]  # bit-identical


def test_the_gpu_path_differs_from_the_cpu_kernel_by_a_few_levels_on_camera_like_frames():
    # torchvision's GPU path (float32 interpolation, clamp, round; run here on the CPU) is
    # not the release's CPU uint8 kernel, which rounds between its two passes: on PandaSet
    # frames 1-4 levels at most, ~12 % of pixels by one. Smooth frame with sensor noise:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:540, 0:960]
    smooth = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + rng.normal(0, 4, (540, 960))
    img = np.clip(np.repeat(smooth[..., None], 3, axis=2), 0, 255).astype(np.uint8)
    pre = ImagePreprocessor(min_pixels=163840, max_pixels=196608)
    frames = torch.from_numpy(img).permute(2, 0, 1)[None]
    diff = (pre.resize(frames).int() - pre.resize(frames, uint8_kernel=False).int()).abs()
    assert diff.shape == (1, 3, 320, 576)
    assert int(diff.max()) <= 4 and float((diff > 0).float().mean()) < 0.3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_preprocessing_on_the_gpu_matches_the_float_path():
    pre = ImagePreprocessor(min_pixels=163840, max_pixels=196608)
    frames = frames_of(REFERENCE["cases"][0])
    gpu = pre(frames, device="cuda")["pixel_values"].cpu()
    cpu = pre(frames)["pixel_values"]
    assert float((gpu - cpu).abs().max()) <= 1 / 127.5 + 1e-6


def test_settings_come_from_the_checkpoint_image_processor_and_bad_ones_are_named():
    proc = default_image_processor(4096, 8192)
    pre = ImagePreprocessor.from_image_processor(proc)
    assert (pre.min_pixels, pre.max_pixels, pre.patch_size, pre.merge_size) == (4096, 8192, 16, 2)
    proc.resample = 2  # bilinear
    with pytest.raises(ValueError, match="resample"):
        ImagePreprocessor.from_image_processor(proc)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) numpy"):
        pre([np.zeros((8, 8), np.uint8)])


def test_frames_of_several_sizes_keep_their_order():
    pre = ImagePreprocessor(min_pixels=4096, max_pixels=8192)
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, s, dtype=np.uint8) for s in ((64, 128, 3), (128, 64, 3)))
    mixed = pre([a, b, a])
    assert mixed["image_grid_thw"].tolist() == [[1, 4, 8], [1, 8, 4], [1, 4, 8]]
    alone = pre([b])["pixel_values"]
    assert torch.equal(mixed["pixel_values"][32:64], alone)
