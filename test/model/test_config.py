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
