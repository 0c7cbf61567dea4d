"""JPEG frames decoded by the model: one batch on the device where it can (nvJPEG through
torchvision on CUDA), OpenCV on the CPU otherwise or when the batch fails; pixels, plans and
the vision cache as with frames decoded on arrival."""

import dataclasses
import types

import cv2
import numpy as np
import pytest
import torch

from alpamayo_ros.core.encoded_image import EncodedImage
from alpamayo_ros.model import frame_decoding
from alpamayo_ros.model.frame_decoding import FrameDecoder, decodes_jpeg_on
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.planning.requests import PlanRequest

KW = dict(num_samples=2, seed=3, max_reasoning_tokens=6, num_flow_steps=3)


def smooth(rng, shape) -> np.ndarray:
    return cv2.GaussianBlur(rng.integers(0, 255, (*shape, 3), dtype=np.uint8), (7, 7), 2)


def encoded(img: np.ndarray, source: str = "") -> EncodedImage:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    return EncodedImage.from_jpeg(buf.tobytes(), source)


def jpeg_request(request: PlanRequest) -> tuple[PlanRequest, PlanRequest]:
    """(the request with every frame as a JPEG, the same with those JPEGs decoded on the CPU)."""
    frames = tuple(encoded(img) for img in request.images)
    decoded = tuple(np.asarray(f).copy() for f in frames)
    return dataclasses.replace(request, images=frames), dataclasses.replace(request, images=decoded)


class FakeDeviceIO:
    """torchvision.io's decode_jpeg as the device decoder, run with OpenCV on the CPU."""

    ImageReadMode = types.SimpleNamespace(RGB="RGB")

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def decode_jpeg(self, data, mode, device):
        assert mode == "RGB" and all(t.dtype == torch.uint8 and t.ndim == 1 for t in data)
        self.calls.append(len(data))
        if self.fail:
            raise RuntimeError("nvjpeg: unsupported")
        out = []
        for t in data:
            bgr = cv2.imdecode(t.numpy(), cv2.IMREAD_COLOR)
            out.append(torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1))
        return out


@pytest.fixture
def fake_device_decoder(monkeypatch):
    io = FakeDeviceIO()
    monkeypatch.setattr(frame_decoding, "_torchvision_io", lambda: io)
    monkeypatch.setattr(frame_decoding, "decodes_jpeg_on", lambda device: True)
    return io


def test_mixed_frames_decode_on_the_cpu_as_on_arrival():
    rng = np.random.default_rng(0)
    arrays = [smooth(rng, (48, 64)) for _ in range(3)]
    frames = [encoded(arrays[0]), arrays[1], encoded(arrays[2])[4:40, 8:]]
    decoder = FrameDecoder()
    out = decoder(frames, "cpu")
    assert [tuple(t.shape) for t in out] == [(3, 48, 64), (3, 48, 64), (3, 36, 56)]
    assert torch.equal(out[0], torch.from_numpy(np.asarray(frames[0])).permute(2, 0, 1))
    assert torch.equal(out[1], torch.from_numpy(arrays[1]).permute(2, 0, 1))
    assert torch.equal(out[2], torch.from_numpy(np.asarray(frames[2])).permute(2, 0, 1))
    assert (decoder.on_device, decoder.on_cpu, decoder.device_failures) == (0, 2, 0)
    assert not decodes_jpeg_on("cpu")


def test_a_device_decodes_all_encoded_frames_in_one_batch_with_their_crops(
    fake_device_decoder,
):
    rng = np.random.default_rng(1)
    arrays = [smooth(rng, (48, 64)) for _ in range(4)]
    frames = [encoded(arrays[0]), arrays[1], encoded(arrays[2])[:, 10:50], encoded(arrays[3])]
    decoder = FrameDecoder()
    out = decoder(frames, "cpu")
    reference = [torch.from_numpy(np.asarray(f)).permute(2, 0, 1) for f in frames]
    assert fake_device_decoder.calls == [3]
    assert all(torch.equal(a, b) for a, b in zip(out, reference, strict=True))
    assert (decoder.on_device, decoder.on_cpu) == (3, 0)


def test_a_failed_device_batch_is_decoded_on_the_cpu_and_counted(monkeypatch):
    io = FakeDeviceIO(fail=True)
    monkeypatch.setattr(frame_decoding, "_torchvision_io", lambda: io)
    monkeypatch.setattr(frame_decoding, "decodes_jpeg_on", lambda device: True)
    frames = [encoded(smooth(np.random.default_rng(2), (32, 48))) for _ in range(2)]
    decoder = FrameDecoder()
    out = decoder(frames, "cpu")
    assert io.calls == [2] and (decoder.device_failures, decoder.on_cpu) == (1, 2)
    assert torch.equal(out[1], torch.from_numpy(np.asarray(frames[1])).permute(2, 0, 1))


def test_plans_from_jpeg_frames_equal_plans_from_the_decoded_frames(
    tiny_policy, request_factory, fake_device_decoder
):
    jpegs, decoded = jpeg_request(request_factory(seed=4, shape=(64, 96)))
    a = tiny_policy.plan([jpegs], **KW)
    b = tiny_policy.plan([decoded], **KW)
    assert fake_device_decoder.calls == [16]
    for sa, sb in zip(a.samples[0], b.samples[0], strict=True):
        assert sa.reasoning_token_ids == sb.reasoning_token_ids
        assert np.abs(sa.xyz - sb.xyz).max() < 1e-5


def test_the_vision_cache_keeps_jpeg_frames_without_decoding_them_again(
    tiny_checkpoint, tiny_policy, request_factory, fake_device_decoder
):
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    policy.enable_vision_cache(32)
    jpegs, decoded = jpeg_request(request_factory(seed=5, shape=(64, 96)))
    policy.plan([jpegs], **KW)
    # the next cycle: per camera the 3 newest frames kept (the same objects), one new
    rng = np.random.default_rng(6)
    images, new_decoded = [], []
    for cam in range(4):
        fresh = encoded(smooth(rng, (64, 96)))
        images += [*jpegs.images[cam * 4 + 1 : cam * 4 + 4], fresh]
        new_decoded += [*decoded.images[cam * 4 + 1 : cam * 4 + 4], np.asarray(fresh).copy()]
    second = dataclasses.replace(jpegs, images=tuple(images))
    a = policy.plan([second], **KW)
    assert fake_device_decoder.calls == [16, 4]
    assert (policy.vision_cache.hits, policy.vision_cache.misses) == (12, 20)
    b = tiny_policy.plan([dataclasses.replace(jpegs, images=tuple(new_decoded))], **KW)
    for sa, sb in zip(a.samples[0], b.samples[0], strict=True):
        assert sa.reasoning_token_ids == sb.reasoning_token_ids
        assert np.abs(sa.xyz - sb.xyz).max() < 1e-5


@pytest.mark.skipif(not decodes_jpeg_on("cuda"), reason="needs CUDA and torchvision")
def test_nvjpeg_pixels_are_close_to_opencv():
    rng = np.random.default_rng(7)
    frames = [encoded(smooth(rng, (1080, 1920))) for _ in range(4)]
    decoder = FrameDecoder()
    gpu = decoder(frames, "cuda")
    assert decoder.on_device == 4
    for f, t in zip(frames, gpu, strict=True):
        diff = (t.cpu().int() - torch.from_numpy(np.asarray(f)).permute(2, 0, 1).int()).abs()
        assert diff.float().mean() < 1.0 and diff.max() <= 16
