"""Alpamayo 1.5 checkpoints: loading, the labelled prompt for any camera subset, navigation
text, questions about the scene, and navigation guidance.

The expected prompts are built here from the reference's exact strings
(shared/reference/alpamayo_1_5.md 5.2 and 5.4: the message list of the release's
create_message / create_vqa_message, rendered as Qwen3-VL's chat template renders it),
independently of alpamayo_ros.model.processor, and compared token for token.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from alpamayo_ros.core.cameras import CameraLayoutError
from alpamayo_ros.model.config import AlpamayoConfig, ConfigError
from alpamayo_ros.model.policy import AlpamayoPolicy
from alpamayo_ros.model.tiny import config_with, released_1_5_config_data
from alpamayo_ros.planning.requests import PlanRequest, QuestionRequest

NAMES = {  # dataset index -> (released camera name, display name): the reference's table
    0: ("camera_cross_left_120fov", "Front left camera"),
    1: ("camera_front_wide_120fov", "Front camera"),
    2: ("camera_cross_right_120fov", "Front right camera"),
    3: ("camera_rear_left_70fov", "Rear left camera"),
    4: ("camera_rear_tele_30fov", "Rear camera"),
    5: ("camera_rear_right_70fov", "Rear right camera"),
    6: ("camera_front_tele_30fov", "Front telephoto camera"),
}
SYSTEM = "You are a driving assistant that generates safe and accurate actions."
INSTRUCTION = (
    "output the chain-of-thought reasoning of the driving process, then output the future "
    "trajectory."
)


def reference_image_content(camera_indices: list[int], frames: int) -> list[dict]:
    """The release's _build_image_content: a camera's name before its first frame, then
    "frame {k} " and the image for each frame."""
    content = []
    for cam in camera_indices:
        for k in range(frames):
            if k == 0:
                content.append({"type": "text", "text": f"{NAMES[cam][1]}: "})
            content.append({"type": "text", "text": f"frame {k} "})
            content.append({"type": "image"})
    return content


def render(messages: list[dict]) -> str:
    """Qwen3-VL's chat template with continue_final_message: items concatenated, an image
    as <|vision_start|><|image_pad|><|vision_end|>, the last turn left open."""
    out = ""
    for i, m in enumerate(messages):
        body = "".join(
            "<|vision_start|><|image_pad|><|vision_end|>" if c["type"] == "image" else c["text"]
            for c in m["content"]
        )
        out += f"<|im_start|>{m['role']}\n{body}"
        out += "" if i == len(messages) - 1 else "<|im_end|>\n"
    return out


def reference_prompt(camera_indices: list[int], frames: int, nav: str | None) -> str:
    history = "<|traj_history_start|>" + "<|traj_history|>" * 48 + "<|traj_history_end|>"
    route = f"<|route_start|>{nav}<|route_end|>" if nav is not None else ""
    return render(
        [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
            {
                "role": "user",
                "content": [
                    *reference_image_content(camera_indices, frames),
                    {"type": "text", "text": f"{history}{route}{INSTRUCTION}"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "<|cot_start|>"}]},
        ]
    )


def reference_question(camera_indices: list[int], frames: int, question: str) -> str:
    return render(
        [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
            {
                "role": "user",
                "content": [
                    *reference_image_content(camera_indices, frames),
                    {"type": "text", "text": f"<|question_start|>{question}<|question_end|>"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "<|answer_start|>"}]},
        ]
    )


def expected_ids(proc, text: str, tokens_per_image: list[int], history: np.ndarray | None):
    """The reference text tokenised, each <|image_pad|> expanded to its image's tokens and
    the 48 history placeholders replaced by the history tokens."""
    ids = proc.tokenizer(text, add_special_tokens=False)["input_ids"]
    out, k = [], 0
    for t in ids:
        if t == proc.image_pad_id:
            out += [t] * tokens_per_image[k]
            k += 1
        else:
            out.append(t)
    out = np.array(out)
    if history is not None:
        out[out == proc.special_ids["traj_history"]] = history
    return out.tolist()


def images_for(request_factory, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    return request_factory(seed=seed, shape=(64, 96)).images[:n] if n <= 16 else ()


LAYOUTS = {  # the release's examples: 1 camera, 2 cameras, the default 4, all 7
    "1cam": [1],
    "2cam": [1, 6],
    "4cam": [0, 1, 2, 6],
    "7cam": [0, 1, 2, 3, 4, 5, 6],
}


@pytest.mark.parametrize("nav", [None, "Turn left onto De La Cruz Boulevard in 40m"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_prompt_ids_equal_the_release_token_for_token(
    tiny_policy_1_5, request_factory, layout, nav
):
    proc = tiny_policy_1_5.processor
    cams = LAYOUTS[layout]
    frames = 2 if layout == "7cam" else 4  # 7 x 4 = 28 images: fewer frames keep it quick
    base = request_factory(seed=1, shape=(64, 96))
    rng = np.random.default_rng(0)
    images = tuple(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in cams * frames)
    req = PlanRequest(images, base.ego, tuple(NAMES[c][0] for c in cams), nav)
    got = proc([req])
    per_image = (got["image_grid_thw"].prod(-1) // 4).tolist()
    want = expected_ids(
        proc, reference_prompt(cams, frames, nav), per_image, proc.history_token_ids(base.ego)
    )
    assert got["input_ids"][0].tolist() == want
    assert got["image_grid_thw"].shape[0] == len(cams) * frames


def test_cameras_are_shown_in_ascending_index_order_whatever_the_rig_order(
    tiny_policy_1_5, request_factory
):
    proc = tiny_policy_1_5.processor
    base = request_factory(seed=2, shape=(64, 96))
    front, tele = base.images[:4], base.images[4:8]
    ascending = PlanRequest(front + tele, base.ego, (NAMES[1][0], NAMES[6][0]))
    reversed_rig = PlanRequest(tele + front, base.ego, (NAMES[6][0], NAMES[1][0]))
    a, b = proc([ascending]), proc([reversed_rig])
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["pixel_values"], b["pixel_values"])  # images moved with their camera
    text = proc.tokenizer.decode(a["input_ids"][0])
    assert text.index("Front camera: frame 0 ") < text.index("Front telephoto camera: frame 0 ")


def test_question_prompt_ids_equal_the_release(tiny_policy_1_5, request_factory):
    proc = tiny_policy_1_5.processor
    images = request_factory(seed=3, shape=(64, 96)).images[:4]
    q = QuestionRequest(images, "Describe the scene.", (NAMES[1][0],))
    got = proc.question_inputs([q])
    per_image = (got["image_grid_thw"].prod(-1) // 4).tolist()
    want = expected_ids(proc, reference_question([1], 4, q.question), per_image, None)
    assert got["input_ids"][0].tolist() == want


def test_alpamayo_1_prompt_has_no_labels_and_refuses_navigation(tiny_policy, request_factory):
    proc = tiny_policy.processor
    req = request_factory(shape=(64, 96))
    text = proc.tokenizer.decode(proc([req])["input_ids"][0])
    assert "camera:" not in text and "frame 0" not in text
    with pytest.raises(ValueError, match=r"only Alpamayo 1\.5 checkpoints read navigation"):
        proc([dataclasses.replace(req, navigation="Turn left in 30m")])
    with pytest.raises(ValueError, match=r"questions need an Alpamayo 1\.5 checkpoint"):
        proc.question_inputs([QuestionRequest(req.images[:4], "Why?", (NAMES[1][0],))])


@pytest.mark.parametrize(
    ("family", "cameras", "frames", "message"),
    [
        ("1", [NAMES[3][0]] + [NAMES[i][0] for i in (0, 1, 2)], 4, "camera_rear_left_70fov"),
        ("1", [NAMES[i][0] for i in (0, 1, 2)], 4, "missing"),
        ("1", [NAMES[i][0] for i in (0, 1, 2, 6)], 2, "frames_per_camera = 2"),
        ("1.5", [NAMES[1][0], NAMES[1][0]], 4, "listed twice"),
        ("1.5", ["camera_front_fisheye"], 4, "not one of the model's cameras"),
        ("1.5", [NAMES[1][0]], 5, "frames_per_camera = 5"),
    ],
)
def test_layouts_a_checkpoint_cannot_read_are_refused_naming_the_camera(
    tiny_policy, tiny_policy_1_5, request_factory, family, cameras, frames, message
):
    proc = (tiny_policy if family == "1" else tiny_policy_1_5).processor
    base = request_factory(shape=(32, 48))
    rng = np.random.default_rng(0)
    images = tuple(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in cameras * frames)
    with pytest.raises(CameraLayoutError, match=message):
        proc([PlanRequest(images, base.ego, tuple(cameras))])


def test_navigation_with_markup_is_refused(tiny_policy_1_5, request_factory):
    base = request_factory(shape=(32, 48))
    req = PlanRequest(base.images[:4], base.ego, (NAMES[1][0],), "left<|route_end|>")
    with pytest.raises(ValueError, match="navigation must not contain"):
        tiny_policy_1_5.processor([req])


# -- config and loading -------------------------------------------------------------------
def test_released_1_5_config_parses_with_its_target_names():
    data = released_1_5_config_data()
    assert data["action_space_cfg"]["_target_"].startswith("alpamayo1_5.")
    cfg = AlpamayoConfig(data)
    assert (cfg.family, cfg.labels_cameras, cfg.reads_navigation) == ("alpamayo1_5", True, True)
    assert cfg.flow_matching.inference_guidance_weight == 1.0


def test_unknown_model_type_fails_naming_the_field():
    with pytest.raises(ConfigError, match=r"'model_type' must be one of .* got 'alpamayo2_super'"):
        AlpamayoConfig(config_with(released_1_5_config_data(), model_type="alpamayo2_super"))


def test_1_5_checkpoint_loads_without_the_derived_buffers(tiny_checkpoint_1_5):
    from safetensors import safe_open

    with safe_open(str(tiny_checkpoint_1_5 / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert not any(k.startswith("action_space.") or k.endswith(".freqs") for k in keys)
    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint_1_5)  # strict
    assert policy.load_report.missing == ()
    stats = policy.config.action_space
    assert float(policy.action_space.accel_std) == pytest.approx(stats.accel_std, rel=1e-7)
    freqs = policy.action_in_proj.sinus[0].freqs
    assert freqs[0, 0] == pytest.approx(1.0) and freqs.dtype == torch.float32


def test_1_5_checkpoint_with_the_buffers_loads_them_too(tmp_path, tiny_checkpoint_1_5):
    """Whether the released 1.5 shards hold the buffers is unverified: both load."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "with_buffers"
    shutil.copytree(tiny_checkpoint_1_5, folder)
    state = load_file(str(folder / "model.safetensors"))
    state["action_space.accel_std"] = torch.tensor(0.5)
    save_file(state, str(folder / "model.safetensors"))
    policy = AlpamayoPolicy.from_pretrained(folder)
    assert float(policy.action_space.accel_std) == 0.5


def test_alpamayo_1_checkpoint_missing_a_real_weight_still_fails(tmp_path, tiny_checkpoint):
    import shutil

    from safetensors.torch import load_file, save_file

    from alpamayo_ros.model.checkpoint_io import CheckpointError

    folder = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, folder)
    state = load_file(str(folder / "model.safetensors"))
    del state["action_out_proj.weight"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="1 missing"):
        AlpamayoPolicy.from_pretrained(folder)


def test_written_1_5_config_round_trips(tmp_path, tiny_checkpoint_1_5):
    doc = json.loads((tiny_checkpoint_1_5 / "config.json").read_text())
    assert doc["model_type"] == "alpamayo1_5" and doc["architectures"] == ["Alpamayo1_5"]
    assert doc["include_camera_ids"] is True


# -- inference ----------------------------------------------------------------------------
def nav_request(request_factory, nav: str | None = "Turn left in 30m") -> PlanRequest:
    base = request_factory(seed=4, shape=(64, 96))
    return PlanRequest(base.images[:8], base.ego, (NAMES[1][0], NAMES[6][0]), nav)


CHAIN = [40, 41, 42, 43]


def test_guidance_weight_1_runs_nothing_extra_and_equals_no_guidance(
    tiny_policy_1_5, request_factory
):
    req = nav_request(request_factory)
    a = tiny_policy_1_5.plan([req], num_samples=2, seed=5, max_reasoning_tokens=6)
    b = tiny_policy_1_5.plan(
        [req], num_samples=2, seed=5, max_reasoning_tokens=6, navigation_guidance=1.0
    )
    assert "guidance_prefill" not in b.timings_ms
    assert np.array_equal(a.samples[0][1].xyz, b.samples[0][1].xyz)


def test_guidance_weight_0_is_the_plan_without_navigation_given_the_same_chain(
    tiny_policy_1_5, request_factory
):
    """w = 0 keeps only the unguided velocity: the expert then reads the prompt without the
    route span followed by the same causal chain, which the unguided prefill + replay must
    build exactly as one prefill of that text does."""
    kw = dict(num_samples=2, seed=6, reasoning_ids=[CHAIN], num_flow_steps=3)
    guided = tiny_policy_1_5.plan([nav_request(request_factory)], navigation_guidance=0.0, **kw)
    plain = tiny_policy_1_5.plan([nav_request(request_factory, None)], **kw)
    for s in range(2):
        assert np.abs(guided.samples[0][s].xyz - plain.samples[0][s].xyz).max() < 1e-4
    conditioned = tiny_policy_1_5.plan([nav_request(request_factory)], **kw)
    assert np.abs(conditioned.samples[0][0].xyz - plain.samples[0][0].xyz).max() > 1e-3


def test_guided_plans_on_the_static_engine_as_on_the_eager_one(tiny_policy_1_5, request_factory):
    """The static engine's guidance: the unguided cache in its own StaticCache (so its
    expert passes are the compiled static pass too), the same trajectories as eager."""
    kw = dict(num_samples=2, seed=6, max_reasoning_tokens=5, num_flow_steps=3,
              navigation_guidance=1.5)  # fmt: skip
    eager = tiny_policy_1_5.plan([nav_request(request_factory)], **kw).samples[0]
    static = tiny_policy_1_5.plan([nav_request(request_factory)], engine="static", **kw)
    assert "unguided" in tiny_policy_1_5._static_caches
    for a, b in zip(eager, static.samples[0], strict=True):
        assert a.reasoning_token_ids == b.reasoning_token_ids
        assert np.abs(a.xyz - b.xyz).max() < 1e-3


def test_guidance_costs_one_more_prefill_and_doubles_only_the_expert(
    tiny_policy_1_5, request_factory
):
    policy = tiny_policy_1_5
    calls = {"vision": 0, "expert": 0}

    def count(name):
        def hook(*_):
            calls[name] += 1

        return hook

    handles = [
        policy.vlm.model.visual.register_forward_hook(count("vision")),
        policy.expert.register_forward_hook(count("expert")),
    ]
    images = policy.processor.images
    calls["preprocess"] = 0

    class Counted:
        merge_size = images.merge_size

        def __call__(self, *a, **k):
            calls["preprocess"] += 1
            return images(*a, **k)

    policy.processor.images = Counted()
    try:
        kw = dict(num_samples=3, seed=7, max_reasoning_tokens=5, num_flow_steps=4)
        policy.plan([nav_request(request_factory)], **kw)
        base = dict(calls)
        calls.update(vision=0, expert=0, preprocess=0)
        policy.plan([nav_request(request_factory)], navigation_guidance=1.5, **kw)
    finally:
        for h in handles:
            h.remove()
        policy.processor.images = images
    assert base == {"vision": 1, "expert": 4, "preprocess": 1}
    # One more prefill (its vision pass included; the pixels are reused), twice the expert.
    assert calls == {"vision": 2, "expert": 8, "preprocess": 1}


def test_noise_temperature_scales_the_initial_noise(tiny_policy_1_5, request_factory):
    kw = dict(num_samples=1, seed=8, reasoning_ids=[CHAIN], num_flow_steps=1)
    req = nav_request(request_factory, None)
    a = tiny_policy_1_5.plan([req], **kw)
    b = tiny_policy_1_5.plan([req], noise_temperature=0.5, **kw)
    assert not np.allclose(a.samples[0][0].controls, b.samples[0][0].controls)
    with pytest.raises(ValueError, match="noise_temperature"):
        tiny_policy_1_5.plan([req], noise_temperature=0.0, **kw)


def test_questions_get_an_answer_up_to_the_token_limit(tiny_policy_1_5, request_factory):
    images = request_factory(seed=9, shape=(64, 96)).images[:4]
    q = QuestionRequest(images, "Is the light red?", (NAMES[1][0],))
    a = tiny_policy_1_5.ask(q, max_tokens=6, seed=0)
    b = tiny_policy_1_5.ask(q, max_tokens=6, seed=0)
    assert a.text == b.text and not a.complete  # random weights never write <|answer_end|>
    assert {"prefill", "answer"} <= set(a.timings_ms)
    tiny_policy_1_5.default_engine = "static"  # engine fast: its own StaticCache
    try:
        c = tiny_policy_1_5.ask(q, max_tokens=6, seed=0)
    finally:
        tiny_policy_1_5.default_engine = "eager"
    assert c.text == a.text and "ask" in tiny_policy_1_5._static_caches


def test_an_answer_ends_at_answer_end(tiny_policy_1_5, request_factory, monkeypatch):
    """Force <|answer_end|> as the third token: the answer is the two before it."""
    policy = tiny_policy_1_5
    proc = policy.processor
    hello = proc.tokenizer("hi", add_special_tokens=False)["input_ids"]
    script = [*hello[:2], proc.special_ids["answer_end"]]
    import alpamayo_ros.model.questions as module

    it = iter(script)
    monkeypatch.setattr(module, "sample_token", lambda logits, *a: torch.tensor([next(it)]))
    images = request_factory(seed=9, shape=(64, 96)).images[:4]
    ans = policy.ask(QuestionRequest(images, "Say hi.", (NAMES[1][0],)), max_tokens=10)
    assert ans.complete and ans.text == proc.tokenizer.decode(hello[:2])
