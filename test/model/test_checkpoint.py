"""Checkpoints in the released layout: names, round trips, and errors that name the problem."""

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from alpamayo_ros.model.checkpoint_io import CheckpointError
from alpamayo_ros.model.config import AlpamayoConfig, ConfigError
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.tiny import released_config_data

RELEASED_PREFIXES = (
    "vlm.model.language_model.",
    "vlm.model.visual.",
    "vlm.lm_head.",
    "expert.",
    "action_in_proj.",
    "action_out_proj.",
    "action_space.",
)


def test_parameter_names_follow_the_release(tiny_checkpoint):
    keys = load_file(str(tiny_checkpoint / "model.safetensors")).keys()
    assert all(k.startswith(RELEASED_PREFIXES) for k in keys)
    for key in (
        "vlm.lm_head.weight",
        "expert.norm.weight",
        "expert.layers.1.self_attn.k_proj.weight",
        "action_in_proj.encoder.trunk.6.weight",
        "action_in_proj.sinus.1.freqs",
        "action_space.curvature_std",
        "action_out_proj.bias",
    ):
        assert key in keys
    assert not any(k.startswith("expert.embed_tokens") for k in keys)


def test_load_reports_zero_missing_and_unexpected(tiny_policy):
    assert tiny_policy.load_report.missing == () and tiny_policy.load_report.unexpected == ()


def test_save_load_save_is_bit_identical(tiny_checkpoint, tmp_path):
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    policy.save_pretrained(tmp_path / "again")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tiny_checkpoint / name).read_bytes(), (
            name
        )
    # readable by others like every other file we write (safetensors itself writes 0600)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "again" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_sharded_checkpoint_with_index_loads_the_same_weights(tiny_policy, tmp_path):
    tiny_policy.save_pretrained(tmp_path / "sharded", max_shard_bytes=200_000)
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    again = AlpamayoPolicy.from_pretrained(tmp_path / "sharded")
    for (k, a), (_, b) in zip(
        tiny_policy.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


@pytest.mark.parametrize(
    ("index", "said"),
    [
        ('{"weight_map": {"a": "model-1.safetensors"', "JSONDecodeError"),
        ('{"metadata": {}}', "KeyError: 'weight_map'"),
        ('{"weight_map": ["model-1.safetensors"]}', "AttributeError"),
        ('{"weight_map": {}}', "its weight_map lists no shard file"),
    ],
)
def test_a_damaged_weight_index_fails_naming_it(tiny_policy, tmp_path, index, said):
    tiny_policy.save_pretrained(tmp_path / "sharded", max_shard_bytes=200_000)
    path = tmp_path / "sharded" / "model.safetensors.index.json"
    path.write_text(index)
    with pytest.raises(CheckpointError, match=f"{path}: .*{said}"):
        AlpamayoPolicy.from_pretrained(tmp_path / "sharded")


def test_a_wrong_shape_fails_naming_the_key(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    tensors = load_file(str(bad / "model.safetensors"))
    tensors["action_out_proj.weight"] = torch.zeros(3, 32)
    save_file(tensors, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"action_out_proj\.weight has shape \(3, 32\)"):
        AlpamayoPolicy.from_pretrained(bad)


@pytest.mark.parametrize(
    ("value", "dtype", "said"),
    [
        (
            float("nan"),
            None,
            r"action_out_proj\.weight holds 1 NaN or infinite value\(s\) as float32",
        ),
        (float("inf"), None, r"holds 1 NaN or infinite"),
        (1e6, "float16", r"holds 1 NaN or infinite value\(s\) as float16"),  # beyond float16
        (1.0, "int32", r"action_out_proj\.weight is int32, the model .* holds float32"),
    ],
)
def test_weights_that_are_not_finite_numbers_fail_naming_the_key(
    tiny_checkpoint, tmp_path, value, dtype, said
):
    """Before: loaded, and every model plan came out NaN, so the planner published only
    stop plans, saying so per plan rather than once at start-up (the int tensor was cast)."""
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    tensors = load_file(str(bad / "model.safetensors"))
    weight = tensors["action_out_proj.weight"].clone()
    weight[0, 0] = value
    tensors["action_out_proj.weight"] = weight.to(torch.int32) if dtype == "int32" else weight
    save_file(tensors, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match=said):
        AlpamayoPolicy.from_pretrained(bad, dtype=dtype if dtype == "float16" else "float32")


def test_missing_and_unexpected_keys_are_reported(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    tensors = load_file(str(bad / "model.safetensors"))
    del tensors["expert.norm.weight"]
    tensors["expert.embed_tokens.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 missing .*expert\.norm\.weight.*1 unexpected"):
        AlpamayoPolicy.from_pretrained(bad)
    loose = AlpamayoPolicy.from_pretrained(bad, strict=False)
    assert loose.load_report.missing == ("expert.norm.weight",)
    assert loose.load_report.unexpected == ("expert.embed_tokens.weight",)


def test_an_unknown_module_name_fails_naming_it(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    data = json.loads((bad / "config.json").read_text())
    data["action_in_proj_cfg"]["_target_"] = (
        "alpamayo_r1.models.action_in_proj.PerWaypointActionInProjV3"
    )
    (bad / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="PerWaypointActionInProjV3"):
        AlpamayoPolicy.from_pretrained(bad)


def test_a_hub_id_is_never_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # even a regression could not reach a hub
    with pytest.raises(ConfigError, match="local Hugging Face cache"):
        AlpamayoPolicy.from_pretrained("nvidia/Alpamayo-R1-10B")


def test_released_shapes_build_on_the_meta_device():
    with torch.device("meta"):
        policy = AlpamayoPolicy(AlpamayoConfig(released_config_data()))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 8.5e9 < count(policy.vlm) < 9.0e9  # Qwen3-VL-8B with the enlarged vocabulary
    assert 2.2e9 < count(policy.expert) < 2.4e9  # the 2.3B action expert


def test_a_device_that_is_not_there_is_named_before_loading(monkeypatch, tiny_checkpoint):
    """device cuda on a CPU build of torch was a traceback (AssertionError: Torch not
    compiled with CUDA enabled) in replay, evaluate and ask; a misspelt one was torch's list
    of twenty device types."""
    from alpamayo_ros.model.checkpoint_io import resolve_device

    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    with pytest.raises(ConfigError, match=r"device 'cuda': this torch .* without CUDA"):
        AlpamayoPolicy.from_pretrained(tiny_checkpoint, device="cuda")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ConfigError, match=r"device 'cuda': no CUDA device is visible"):
        resolve_device("cuda", "auto")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"'cuda:2': 2 CUDA device\(s\) visible, cuda:0 to"):
        resolve_device("cuda:2", "auto")
    assert resolve_device("cuda:1", "auto") == (torch.device("cuda:1"), torch.bfloat16)
    for bad in ("foo", "cuda:x", "gpu"):
        with pytest.raises(ConfigError, match=rf"device '{bad}' is not a torch device"):
            resolve_device(bad, "auto")
    with pytest.raises(ConfigError, match=r"dtype 'int8' is not one of auto, float32"):
        resolve_device("cpu", "int8")
    assert resolve_device("cpu", "auto") == (torch.device("cpu"), torch.float32)
    assert resolve_device("meta", "bfloat16") == (torch.device("meta"), torch.bfloat16)
