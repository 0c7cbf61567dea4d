"""The checkpoint config: released layout, offline VLM config, clear errors."""

import json

import pytest

from alpamayo_ros.core.tokens import ControlTokenizer
from alpamayo_ros.model.config import AlpamayoConfig, ConfigError
from alpamayo_ros.model.tiny import config_with, released_config_data


def test_released_config_parses_offline_with_the_documented_shapes():
    cfg = AlpamayoConfig(released_config_data())
    text = cfg.vlm_config.text_config
    assert (text.num_hidden_layers, text.hidden_size, text.num_key_value_heads) == (36, 4096, 8)
    assert text.vocab_size == 155697
    assert cfg.vlm_config.vision_config.depth == 27
    assert cfg.flow_matching.num_inference_steps == 10
    assert cfg.action_space.n_waypoints == 64 and cfg.action_space.dt == 0.1
    assert cfg.expert_overrides["hidden_size"] == 2048


def test_future_tokens_match_the_release_layout():
    cfg = AlpamayoConfig(released_config_data())
    assert cfg.future_tokenizer == ControlTokenizer.released()
    assert cfg.history_token_offset == 3000


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "diffusion_cfg",
            {"_target_": "my.own.Diffusion"},
            r"diffusion_cfg\._target_ = 'my\.own\.Diffusion'",
        ),
        ("action_in_proj_cfg", {"_target_": "x.Y"}, "action_in_proj_cfg"),
        ("model_type", "llama", "model_type"),
        ("tokens_per_future_traj", 0, "tokens_per_future_traj"),
        ("vlm_name_or_path", "someone/unknown-vlm", "vlm_config"),
    ],
)
def test_bad_configs_fail_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        AlpamayoConfig(config_with(released_config_data(), **{field: value}))


def test_save_writes_back_every_key(tmp_path):
    data = config_with(released_config_data(), some_future_field={"kept": True})
    AlpamayoConfig(data).save(tmp_path)
    again = AlpamayoConfig.from_file(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == data
    assert again.to_json_string() == AlpamayoConfig(data).to_json_string()


def test_written_configs_keep_the_tokenizer_config_from_hydra_recursion(tmp_path):
    # The official loader instantiates configs with hydra; without "_recursive_": false it
    # would build action_space_cfg into an object before DiscreteTrajectoryTokenizer sees it.
    data = released_config_data()
    del data["traj_tokenizer_cfg"]["_recursive_"]  # an older checkpoint of ours
    AlpamayoConfig(data).save(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["traj_tokenizer_cfg"]["_recursive_"] is False
    assert AlpamayoConfig.from_file(tmp_path).future_tokenizer.vocab_size == 3000


def _leaves(doc, path=()):
    if isinstance(doc, dict) and doc:
        for key, value in doc.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path


@pytest.mark.parametrize("document", ["demo checkpoint", "released"])
def test_every_field_of_a_checkpoint_config_with_a_wrong_value_loads_or_names_itself(document):
    """Each value of a config.json (the demo checkpoint's, with its VLM config; the
    released one, whose VLM comes from a preset) replaced by a wrong type or an
    out-of-range number: either it still loads, or ConfigError names the field and the
    value on one line. Before: 44 of the demo's 602 kinds of change and 6 of the released
    one's ended in a TypeError, ValueError, IndexError, KeyError, TokenError or
    transformers' validation error."""
    from importlib import resources

    if document == "released":
        base = released_config_data()
    else:
        demo = resources.files("alpamayo_ros") / "demo_checkpoint/config.json"
        base = json.loads(demo.read_text())
    refused = 0
    for path in _leaves(base):
        for value in ["x", -1, None, [], {}, 1e9, True, float("nan")]:
            doc = json.loads(json.dumps(base))
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value
            try:
                AlpamayoConfig(doc)
            except ConfigError as err:
                refused += 1
                text = str(err)
                assert "\n" not in text
                named = path[-1] if path[-1] != "_target_" else path[-2]
                assert named in text, (path, value, text)
                if value not in ([], {}, None):
                    assert repr(value) in text or str(value) in text, (path, value, text)
    assert refused > 200


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("action_space_cfg", "accel_std", 0.0, r"accel_std must be > 0, got 0\.0"),
        ("action_space_cfg", "accel_bounds", [2.0, -2.0], r"accel_bounds .* got \[2\.0, -2\.0\]"),
        ("hist_traj_tokenizer_cfg", "ego_xyz_max", [4, 4, -20], r"ego_xyz_min must be below"),
        ("traj_tokenizer_cfg", "num_bins", 1, r"num_bins must be >= 2, got 1"),
        ("diffusion_cfg", "num_inference_steps", 10**9, r"<= 10000, got 1000000000"),
        ("expert_cfg", "hidden_size", "wide", r"expert_cfg\.hidden_size = 'wide'"),
        ("expert_cfg", "head_dim", 64, r"expert_cfg\.head_dim = 64 differs from the VLM's 128"),
        ("expert_cfg", "no_such_setting", 1, r"expert_cfg\.no_such_setting is no Qwen3-VL"),
    ],
)
def test_values_that_would_break_the_model_later_fail_at_load(section, key, value, message):
    data = released_config_data()
    data[section][key] = value
    with pytest.raises(ConfigError, match=message):
        AlpamayoConfig(data)
