"""The prompt and the model inputs built from frames and ego history."""

import numpy as np
import torch

from alpamayo_ros.model.processor import INSTRUCTION, SYSTEM_PROMPT, build_prompt


def test_prompt_is_the_released_chat():
    prompt = build_prompt(16, 48)
    assert prompt.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n")
    assert prompt.count("<|vision_start|><|image_pad|><|vision_end|>") == 16
    assert (
        "<|traj_history_start|>" + "<|traj_history|>" * 48 + "<|traj_history_end|>" + INSTRUCTION
        in prompt
    )
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n<|cot_start|>")


def _runs(mask: np.ndarray) -> list[int]:
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_inputs_have_16_image_runs_and_the_history_tokens(tiny_policy, request_factory):
    proc = tiny_policy.processor
    req = request_factory()
    batch = proc([req])
    ids = batch["input_ids"][0].numpy()
    per_image = int(batch["image_grid_thw"][0].prod()) // 4
    assert _runs(ids == proc.image_pad_id) == [per_image] * 16
    assert batch["image_grid_thw"].shape == (16, 3)
    expected = tiny_policy.config.history_tokenizer.encode(req.ego.xyz) + proc.history_token_start
    start = proc.special_ids["traj_history_start"]
    pos = int(np.flatnonzero(ids == start)[0])
    np.testing.assert_array_equal(ids[pos + 1 : pos + 49], expected)
    assert ids[pos + 49] == proc.special_ids["traj_history_end"]
    assert torch.equal(
        batch["mm_token_type_ids"][0].bool(), torch.from_numpy(ids == proc.image_pad_id)
    )


def test_prompts_of_different_lengths_are_left_padded(tiny_policy, request_factory):
    proc = tiny_policy.processor
    small = request_factory(shape=(120, 160))
    big = request_factory(shape=(540, 960))
    batch = proc([small, big])
    mask = batch["attention_mask"]
    lengths = mask.sum(dim=1)
    assert lengths[0] != lengths[1]  # other aspect ratio, other token count
    short = int(lengths.argmin())
    assert mask[1 - short].all()
    assert mask[short, -1] == 1 and mask[short, 0] == 0  # padding on the left
    assert (batch["input_ids"][short, : mask.shape[1] - lengths[short]] == proc.pad_id).all()


def test_every_preprocessor_setting_with_a_wrong_value_loads_or_names_itself(tmp_path, monkeypatch):
    """Each value of the demo checkpoint's preprocessor_config.json replaced by a wrong
    type, zero, a negative or huge number: the processor either loads, or fails on one line
    naming the setting (what the CLI prints). Before: 38 of them ended in a TypeError or a
    ZeroDivisionError, and patch sizes that differ from the model's vision config loaded."""
    import json
    import shutil
    from importlib import resources
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    import alpamayo_ros.model.processor as processor_module
    from alpamayo_ros.model.config import AlpamayoConfig
    from alpamayo_ros.model.processor import AlpamayoProcessor

    src = resources.files("alpamayo_ros") / "demo_checkpoint"
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        shutil.copy(str(src / name), tmp_path / name)
    config = AlpamayoConfig.from_file(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    monkeypatch.setattr(  # the tokenizer loaded once: this test is about the image settings
        processor_module,
        "AutoTokenizer",
        SimpleNamespace(from_pretrained=lambda *a, **k: tokenizer),
    )
    base = json.loads((src / "preprocessor_config.json").read_text())
    paths = [(k,) for k in base if k != "size"] + [("size", k) for k in base["size"]]
    refused = 0
    for path in paths:
        for value in ["x", -1, 0, None, [], {}, 1e9, True, float("nan"), 8]:
            doc = json.loads(json.dumps(base))
            parent = doc["size"] if len(path) == 2 else doc
            parent[path[-1]] = value
            (tmp_path / "preprocessor_config.json").write_text(json.dumps(doc))
            try:
                processor = AlpamayoProcessor.from_pretrained(tmp_path, config)
            except (ValueError, RuntimeError) as err:  # what the CLI prints on one line
                refused += 1
                assert "\n" not in str(err) and path[-1] in str(err), (path, value, str(err))
                continue
            processor.images.output_size(1080, 1920)
            if path[-1] in ("patch_size", "merge_size", "temporal_patch_size"):
                assert value == base[path[-1]]
    assert refused > 80
