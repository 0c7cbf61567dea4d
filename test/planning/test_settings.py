"""Planner settings that depend on the model: where JPEG frames are decoded."""

import types

import pytest

from alpamayo_ros.planning.settings import jpeg_on_model


def test_image_decode_auto_follows_the_model_and_the_others_are_forced():
    gpu = types.SimpleNamespace(decodes_jpeg_on_device=True)
    cpu = types.SimpleNamespace(decodes_jpeg_on_device=False)
    assert jpeg_on_model("auto", gpu) and not jpeg_on_model("auto", cpu)
    assert not jpeg_on_model("auto", object())  # a policy that does not say: on arrival
    assert jpeg_on_model("model", cpu) and not jpeg_on_model("arrival", gpu)
    with pytest.raises(ValueError, match=r"image_decode must be one of .* got 'gpu'"):
        jpeg_on_model("gpu", gpu)


def test_the_tiny_model_on_the_cpu_leaves_decoding_to_arrival(tiny_policy):
    assert tiny_policy.decodes_jpeg_on_device is False
    assert not jpeg_on_model("auto", tiny_policy)
