"""The per-frame vision cache: frames seen by an earlier plan are neither preprocessed nor
encoded again, and plans are those of the uncached model."""

import dataclasses

import numpy as np
import pytest

from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.vision_cache import FrameFeatures, VisionFeatureCache
from alpamayo_ros.planning.requests import PlanRequest

KW = dict(num_samples=2, seed=3, max_reasoning_tokens=6, num_flow_steps=3)


def assert_same_plans(a, b, atol=1e-5):
    for ra, rb in zip(a.samples, b.samples, strict=True):
        for sa, sb in zip(ra, rb, strict=True):
            assert sa.reasoning_token_ids == sb.reasoning_token_ids
            assert np.abs(sa.xyz - sb.xyz).max() < atol


@pytest.fixture()
def cached_policy(tiny_checkpoint):
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    policy.enable_vision_cache(32)
    return policy


def shifted(request: PlanRequest, rng) -> PlanRequest:
    """The next cycle's frame set: per camera the 3 newest frames kept (the same arrays),
    one new frame appended."""
    images = list(request.images)
    out = []
    for cam in range(4):
        group = images[cam * 4 : cam * 4 + 4]
        new = rng.integers(0, 255, group[0].shape, dtype=np.uint8)
        out += [*group[1:], new]
    return dataclasses.replace(request, images=tuple(out))


def test_a_shifted_frame_set_encodes_only_its_new_frames_and_plans_as_uncached(
    cached_policy, tiny_policy, request_factory
):
    rng = np.random.default_rng(0)
    first = request_factory(seed=1, shape=(64, 96))
    cache = cached_policy.vision_cache
    assert_same_plans(cached_policy.plan([first], **KW), tiny_policy.plan([first], **KW))
    assert (cache.hits, cache.misses) == (0, 16)
    second = shifted(first, rng)
    assert_same_plans(cached_policy.plan([second], **KW), tiny_policy.plan([second], **KW))
    assert (cache.hits, cache.misses) == (12, 20)
    # the trajectory lane (a forced chain) and the static engine read the same features
    forced = dict(KW, reasoning_ids=[[40, 41, 42]])
    a = cached_policy.plan([second], engine="static", **forced)
    assert_same_plans(a, tiny_policy.plan([second], **forced), atol=1e-3)
    assert cache.hits == 28


def test_a_frame_rewritten_in_place_is_a_miss_not_stale_features(cached_policy, request_factory):
    request = request_factory(seed=2, shape=(64, 96))
    cached_policy.plan([request], **KW)
    request.images[5][:] = 255 - request.images[5]  # a buffer that reuses its arrays
    misses = cached_policy.vision_cache.misses
    cached_policy.plan([request], **KW)
    assert cached_policy.vision_cache.misses == misses + 1


def test_the_reasoning_lane_uses_the_cache(cached_policy, request_factory):
    request = request_factory(seed=4, shape=(64, 96))
    cached_policy.plan([request], **KW)
    steps = cached_policy.reason_steps(request, max_tokens=3, seed=0)
    for _ in steps:
        pass
    assert cached_policy.vision_cache.hits == 16


def test_capacity_evicts_the_least_recently_used_and_is_checked():
    cache = VisionFeatureCache(capacity=2)
    frames = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(3)]
    feats = FrameFeatures(tokens=None, deepstack=())  # type: ignore[arg-type]
    for f in frames[:2]:
        cache.put(f, feats)
    assert cache.get(frames[0]) is feats  # frames[1] is now the oldest
    cache.put(frames[2], feats)
    assert cache.get(frames[1]) is None and cache.get(frames[0]) is feats and len(cache) == 2
    assert cache.get(frames[0].copy()) is None  # equal pixels, another array: not trusted
    with pytest.raises(ValueError, match="capacity must be >= 1 frame, got 0"):
        VisionFeatureCache(0)


def test_guidance_reuses_the_cached_features(tiny_checkpoint_1_5, tiny_policy_1_5, request_factory):
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint_1_5)
    policy.enable_vision_cache(32)
    request = dataclasses.replace(
        request_factory(seed=5, shape=(64, 96)), navigation="Turn left in 30m"
    )
    kw = dict(KW, navigation_guidance=1.5)
    assert_same_plans(policy.plan([request], **kw), tiny_policy_1_5.plan([request], **kw))
    assert (policy.vision_cache.hits, policy.vision_cache.misses) == (0, 16)
