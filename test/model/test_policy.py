"""plan(): reasoning, expert trajectories, samples, seeds, the discrete head."""

import numpy as np
import pytest

from alpamayo_ros.core.trajectory import integrate


@pytest.fixture(scope="module")
def six_samples(tiny_policy, request_factory):
    return tiny_policy.plan([request_factory()], num_samples=6, seed=7, max_reasoning_tokens=24)


def test_four_cameras_four_frames_six_samples(six_samples):
    samples = six_samples.samples[0]
    assert len(samples) == 6
    for s in samples:
        assert s.controls.shape == (64, 2) and s.xyz.shape == (64, 3) and s.rot.shape == (64, 3, 3)
        assert np.all(np.isfinite(s.controls))
    assert set(six_samples.timings_ms) == {
        "preprocess",
        "prefill",
        "reasoning",
        "trajectory",
        "total",
    }


def test_positions_are_the_core_integration_of_the_controls(
    tiny_policy, six_samples, request_factory
):
    spec = tiny_policy.config.action_space.unicycle_spec("trapezoid")
    req = request_factory()
    # integrated from the released action space's own t0 speed (torch float32), which is
    # the core's numpy estimate to float32 rounding
    (v0,) = tiny_policy.t0_speeds([req])
    assert abs(v0 - req.ego.speed) < 1e-5
    for s in six_samples.samples[0]:
        roll = integrate(s.controls, v0, spec)
        xyz, rot = roll.to_xyz_rot(z=req.ego.xyz[-1, 2])
        np.testing.assert_allclose(s.xyz, xyz, atol=1e-9)
        np.testing.assert_allclose(s.rot, rot, atol=1e-9)


def test_same_seed_same_plans_other_seed_other_plans(tiny_policy, request_factory):
    req = request_factory()
    a = tiny_policy.plan([req], num_samples=2, seed=3, max_reasoning_tokens=16)
    b = tiny_policy.plan([req], num_samples=2, seed=3, max_reasoning_tokens=16)
    c = tiny_policy.plan([req], num_samples=2, seed=4, max_reasoning_tokens=16)
    for sa, sb in zip(a.samples[0], b.samples[0], strict=True):
        assert sa.reasoning_token_ids == sb.reasoning_token_ids
        np.testing.assert_array_equal(sa.controls, sb.controls)
    assert not np.allclose(a.samples[0][0].controls, c.samples[0][0].controls)
    # Samples of one request differ from each other.
    assert not np.allclose(a.samples[0][0].controls, a.samples[0][1].controls)


def test_reasoning_never_contains_trajectory_tokens(tiny_policy, request_factory):
    lo = tiny_policy.processor.traj_token_start
    hi = lo + tiny_policy.config.traj_vocab_size
    res = tiny_policy.plan(
        [request_factory(1)],
        num_samples=4,
        seed=0,
        temperature=2.0,
        top_p=1.0,
        max_reasoning_tokens=48,
    )
    for s in res.samples[0]:
        ids = np.asarray(s.reasoning_token_ids)
        assert not np.any((ids >= lo) & (ids < hi))


def test_a_batch_of_requests_gives_samples_per_request(tiny_policy, request_factory):
    res = tiny_policy.plan(
        [request_factory(0), request_factory(1, speed=12.0)],
        num_samples=3,
        seed=0,
        max_reasoning_tokens=8,
    )
    assert [len(s) for s in res.samples] == [3, 3]
    # The second request starts faster: its trajectories integrate from its own v0.
    assert res.samples[1][0].rollout.speed[0] != res.samples[0][0].rollout.speed[0]


def test_the_trajectory_depends_on_the_cameras(tiny_policy, request_factory):
    a = tiny_policy.plan([request_factory(0)], seed=5, max_reasoning_tokens=4, temperature=0.0)
    b = tiny_policy.plan([request_factory(9)], seed=5, max_reasoning_tokens=4, temperature=0.0)
    assert not np.allclose(a.samples[0][0].controls, b.samples[0][0].controls)


def test_discrete_head_emits_128_tokens_decoded_by_the_core(tiny_policy, request_factory):
    res = tiny_policy.plan(
        [request_factory()], num_samples=2, seed=0, max_reasoning_tokens=8, discrete=True
    )
    tok = tiny_policy.config.future_tokenizer
    for s in res.samples[0]:
        assert s.trajectory_tokens.shape == (128,)
        assert s.trajectory_tokens.min() >= 0 and s.trajectory_tokens.max() < tok.vocab_size
        np.testing.assert_allclose(s.controls, tok.decode(s.trajectory_tokens))


def test_truncated_reasoning_is_flagged(tiny_policy, request_factory):
    res = tiny_policy.plan(
        [request_factory()],
        num_samples=4,
        seed=0,
        max_reasoning_tokens=1,
        temperature=2.0,
        top_p=1.0,
    )
    # One token allowed and it was not <|traj_future_start|> (all but certain at temperature 2
    # over ~4300 tokens, and fixed by the seed): every sample is flagged incomplete.
    assert [s.reasoning_complete for s in res.samples[0]] == [False] * 4
    assert all(len(s.reasoning_token_ids) == 1 for s in res.samples[0])


def test_a_left_padded_request_plans_as_it_does_alone(tiny_policy, request_factory):
    # Greedy decoding and one flow step: no randomness differs between the two runs (more
    # flow steps amplify float rounding through the 100 Hz Fourier features of random weights).
    wide = request_factory(0, shape=(540, 960))
    other = request_factory(1, shape=(120, 160))
    batch = tiny_policy.processor([wide, other])["attention_mask"].sum(dim=1)
    assert batch[0] < batch[1]  # `wide` is the one padded
    kw = dict(seed=3, temperature=0.0, max_reasoning_tokens=10, num_flow_steps=1)
    alone = tiny_policy.plan([wide], **kw).samples[0][0]
    padded = tiny_policy.plan([wide, other], **kw).samples[0][0]
    assert alone.reasoning_token_ids == padded.reasoning_token_ids
    np.testing.assert_allclose(alone.controls, padded.controls, atol=1e-5)


@pytest.mark.parametrize("engine", ["eager", "static"])
def test_a_sequence_that_stops_early_ignores_what_others_generate_after(
    tiny_policy, request_factory, monkeypatch, engine
):
    """Row 0 is made to stop at its third token while row 1 runs on: row 0's chain, stop
    and trajectory are what they are when it plans alone (both engines: the static one
    keeps the stop bookkeeping in its decode buffers)."""
    import alpamayo_ros.model.runtime as policy_module
    import alpamayo_ros.model.static_decode as static_module

    stop_id = tiny_policy.processor.special_ids["traj_future_start"]
    calls = {"n": 0}

    def scripted(real):
        def sample(*args):
            token = real(*args).clone()
            if calls["n"] == 2:
                token[0] = stop_id
            calls["n"] += 1
            return token

        return sample

    # the eager engine samples with sample_token, the static one draws in static_decode
    monkeypatch.setattr(policy_module, "sample_token", scripted(policy_module.sample_token))
    monkeypatch.setattr(static_module, "draw", scripted(static_module.draw))
    kw = dict(seed=0, max_reasoning_tokens=12, num_flow_steps=1, temperature=0.0, engine=engine)
    req = request_factory(0)
    alone = tiny_policy.plan([req], **kw).samples[0][0]
    calls["n"] = 0
    together = tiny_policy.plan([req, request_factory(4)], **kw).samples
    assert alone.reasoning_complete and together[0][0].reasoning_complete
    assert len(together[0][0].reasoning_token_ids) == 2
    assert together[0][0].generated_ids == alone.generated_ids
    assert not together[1][0].reasoning_complete  # row 1 ran on for 12 tokens
    assert len(together[1][0].generated_ids) == 12
    np.testing.assert_allclose(alone.controls, together[0][0].controls, atol=1e-5)


def test_eager_attention_plans_as_sdpa_does(tiny_checkpoint, request_factory):
    """The eager path is the reference: SDPA must give the same plans."""
    from alpamayo_ros.model.policy import AlpamayoPolicy

    req = request_factory(seed=5, shape=(90, 160))
    plans = {}
    for impl in ("eager", "sdpa"):
        policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint, attn_implementation=impl)
        assert policy.expert.config._attn_implementation == impl
        # One Euler step: with several, the expert's high-frequency Fourier features (up to
        # 100 cycles per unit) amplify float rounding differences between the kernels.
        result = policy.plan([req], num_samples=2, seed=3, max_reasoning_tokens=6, num_flow_steps=1)
        plans[impl] = result.samples[0]
    for a, b in zip(plans["eager"], plans["sdpa"], strict=True):
        assert a.reasoning_token_ids == b.reasoning_token_ids
        np.testing.assert_allclose(a.controls, b.controls, atol=1e-5)


def test_a_teacher_forced_chain_plans_as_the_decoded_one(request_factory):
    """The trajectory lane: the chain a greedy decode wrote, read back with the prompt in one
    prefill, gives the same trajectories for the same noise (demo checkpoint: it writes
    complete chains)."""
    from alpamayo_ros.checkpoints import DEMO_CHECKPOINT
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(DEMO_CHECKPOINT)
    request = request_factory(seed=0, shape=(136, 240), speed=6.0)
    kw = dict(num_samples=3, temperature=0.0, max_reasoning_tokens=96, seed=5, num_flow_steps=5)
    decoded = policy.plan([request], **kw).samples[0]
    assert all(s.reasoning_complete for s in decoded)
    chain = decoded[0].reasoning_token_ids
    assert chain and all(s.reasoning_token_ids == chain for s in decoded)  # greedy
    forced = policy.plan([request], reasoning_ids=[chain], **kw)
    for a, b in zip(decoded, forced.samples[0], strict=True):
        assert b.reasoning == a.reasoning and b.reasoning_token_ids == chain
        np.testing.assert_allclose(b.xyz, a.xyz, atol=1e-4)  # incremental vs one prefill


def test_static_engine_plans_as_the_eager_reference(tiny_policy, request_factory):
    """engine="static" (fixed-shape decode steps and expert passes on a preallocated
    StaticCache, what CUDA graphs capture) against the eager path: the same reasoning ids,
    trajectories equal to float rounding of attention over the padded slots."""
    import numpy as np

    r1 = request_factory(seed=1, shape=(64, 96))
    r2 = request_factory(seed=2, shape=(48, 96), speed=8.0)  # another length: left padding
    for temperature in (0.0, 0.6):
        kw = dict(num_samples=2, seed=3, max_reasoning_tokens=10, num_flow_steps=3,
                  temperature=temperature)  # fmt: skip
        eager = tiny_policy.plan([r1, r2], **kw)
        static = tiny_policy.plan([r1, r2], engine="static", **kw)
        pairs = zip(
            [s for row in eager.samples for s in row],
            [s for row in static.samples for s in row],
            strict=True,
        )
        for a, b in pairs:
            assert a.reasoning_token_ids == b.reasoning_token_ids
            assert np.abs(a.xyz - b.xyz).max() < 1e-3
            assert np.abs(a.controls - b.controls).max() < 1e-3
    forced = dict(num_samples=1, seed=4, reasoning_ids=[[40, 41, 42]], num_flow_steps=2)
    a = tiny_policy.plan([r1], **forced).samples[0][0]
    b = tiny_policy.plan([r1], engine="static", **forced).samples[0][0]
    assert np.abs(a.xyz - b.xyz).max() < 1e-4
    with pytest.raises(ValueError, match="engine must be one of"):
        tiny_policy.plan([r1], engine="tensorrt")


@pytest.mark.parametrize("graph_decode", [True, False])
def test_the_static_engine_reads_the_stop_flag_a_step_late_with_the_same_plans(
    request_factory, graph_decode
):
    """engine "static" reads the all-finished flag one step late (the host queues a step
    while the GPU runs the one before: no synchronisation per token): exactly one step of
    padding after the last chain stops, and the same chains, stop positions and
    trajectories as the eager reference (demo checkpoint: it writes complete chains, of
    different lengths for different scenes). Both static decoders: model.static_decode's
    functions (graph_decode) and the reference loop around the bare decode step."""
    from alpamayo_ros.checkpoints import DEMO_CHECKPOINT
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(DEMO_CHECKPOINT)
    policy.graph_decode = graph_decode
    steps = {"n": 0}

    def counted(step):
        def call(*args, **kwargs):
            steps["n"] += 1
            return step(*args, **kwargs)

        return call

    # the eager engine feeds tokens through _step_vlm, the static one through _static_advance
    policy._step_vlm = counted(policy._step_vlm)  # type: ignore[method-assign]
    policy._static_advance = counted(policy._static_advance)  # type: ignore[method-assign]
    requests = [request_factory(seed=0, shape=(136, 240), speed=6.0),
                request_factory(seed=3, shape=(136, 240), speed=1.0)]  # fmt: skip
    # sampled too: the padding step's draw must not shift the expert's noise
    for temperature in (0.0, 0.6):
        kw = dict(num_samples=2, temperature=temperature, max_reasoning_tokens=96, seed=5,
                  num_flow_steps=3)  # fmt: skip
        plans, calls = {}, {}
        for engine in ("eager", "static"):
            steps["n"] = 0
            plans[engine] = policy.plan(requests, engine=engine, **kw).samples
            calls[engine] = steps["n"]
        eager = [s for row in plans["eager"] for s in row]
        static = [s for row in plans["static"] for s in row]
        assert all(s.reasoning_complete for s in eager)
        longest = max(len(s.generated_ids) for s in eager)  # chain, <|cot_end|>, stop token
        assert calls["eager"] == longest and calls["static"] == longest + 1
        for a, b in zip(eager, static, strict=True):
            assert a.reasoning_token_ids == b.reasoning_token_ids
            assert a.generated_ids == b.generated_ids
            assert np.abs(a.xyz - b.xyz).max() < 1e-3


def test_the_static_cache_is_refilled_in_place_across_plans(tiny_policy, request_factory):
    """Graphs captured over a StaticCache replay only while its tensors keep their
    addresses: a second plan of the same shape refills the first plan's cache; another
    shape gets its own."""
    r = request_factory(seed=1, shape=(64, 96))
    kw = dict(num_samples=1, seed=3, max_reasoning_tokens=6, num_flow_steps=2, engine="static")
    tiny_policy.plan([r], **kw)
    first = tiny_policy._static_caches["plan"][1]
    pointer = first.layers[0].keys.data_ptr()
    buffers_pointer = tiny_policy._decode_buffers["plan"].logits.data_ptr()
    again = tiny_policy.plan([r], **kw)
    second = tiny_policy._static_caches["plan"][1]
    assert second is first and second.layers[0].keys.data_ptr() == pointer
    buffers = tiny_policy._decode_buffers["plan"]  # the decode state: refilled in place too
    assert buffers is not None and buffers.logits.data_ptr() == buffers_pointer
    reference = tiny_policy.plan([r], **{**kw, "engine": "eager"})
    a, b = reference.samples[0][0], again.samples[0][0]
    assert a.reasoning_token_ids == b.reasoning_token_ids  # stale slots stay hidden
    assert np.abs(a.xyz - b.xyz).max() < 1e-3
    tiny_policy.plan([r], **{**kw, "num_samples": 2})
    third = tiny_policy._static_caches["plan"][1]
    assert third is not first and third.layers[0].keys.shape[0] == 2
    assert tiny_policy._decode_buffers["plan"].logits.shape[0] == 2


def test_the_reasoning_lane_decodes_on_its_own_static_cache_between_plans(
    tiny_checkpoint, request_factory
):
    """With the static engine as default (engine fast), the reasoning lane's steps decode on
    their own StaticCache, so plans run between them (on the plan's cache) without
    touching it: the same chain as the eager lane for the same seed."""
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    r, other = request_factory(seed=1, shape=(64, 96)), request_factory(seed=2, shape=(48, 96))

    def chain(between_steps: bool):
        steps = policy.reason_steps(r, temperature=0.6, max_tokens=8, seed=2)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value
            if between_steps:
                policy.plan([other], num_samples=1, seed=0, max_reasoning_tokens=3,
                            num_flow_steps=1)  # fmt: skip

    eager = chain(between_steps=False)
    policy.default_engine = "static"
    static = chain(between_steps=True)
    assert len(eager[0]) >= 4 and static == eager
    lane, plans = policy._static_caches["reason"][1], policy._static_caches["plan"][1]
    assert lane is not plans
    # decoded with the plan's per-token functions, on decode buffers of its own
    assert policy._decode_buffers["reason"] is not policy._decode_buffers["plan"]
    again = chain(between_steps=False)  # the lane's cache refilled in place
    assert again == eager and policy._static_caches["reason"][1] is lane


def test_compiled_decode_and_expert_plan_as_the_eager_reference(tiny_checkpoint, request_factory):
    """The fast path (static engine, torch.compile'd decode step and expert pass: inductor
    on the CPU, CUDA graphs on a GPU) against eager: the same reasoning ids for the same
    seed, sampled and greedy, and trajectories equal to float rounding (3 Euler steps)."""
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    r = request_factory(seed=1, shape=(64, 96))
    runs = [dict(temperature=0.6), dict(temperature=0.0), dict(reasoning_ids=[[40, 41, 42]])]
    eager = [
        policy.plan([r], num_samples=2, seed=3, max_reasoning_tokens=8, num_flow_steps=3, **kw)
        for kw in runs
    ]
    policy.configure(engine="fast", vision_cache_frames=16)  # what the node's params set
    assert policy.default_engine == "static" and policy.vision_cache is not None
    from alpamayo_ros.model.fused_layers import is_fused
    from alpamayo_ros.model.stacked_projections import QKV, STACKED_QKV, stacked_weight

    assert all(is_fused(layer) for layer in policy.vlm.model.language_model.layers)
    for layer in [*policy.vlm.model.language_model.layers, *policy.expert.layers]:
        assert stacked_weight(layer.self_attn, QKV, STACKED_QKV) is not None  # one product
    for kw, reference in zip(runs, eager, strict=True):
        fast = policy.plan(
            [r], num_samples=2, seed=3, max_reasoning_tokens=8, num_flow_steps=3, **kw
        )
        for a, b in zip(reference.samples[0], fast.samples[0], strict=True):
            assert a.reasoning_token_ids == b.reasoning_token_ids
            assert np.abs(a.xyz - b.xyz).max() < 1e-3
            assert np.abs(a.controls - b.controls).max() < 1e-3


def test_configure_refuses_bad_speed_settings_naming_them(tiny_checkpoint):
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    with pytest.raises(ValueError, match=r"engine must be one of .* got 'warp'"):
        policy.configure(engine="warp")
    with pytest.raises(ValueError, match="vision_cache_frames must be >= 0, got -1"):
        policy.configure(vision_cache_frames=-1)
    with pytest.raises(RuntimeError, match="fp8 needs a CUDA GPU"):
        policy.configure(quantization="fp8")
    policy.configure()  # the defaults: the reference engine, no cache
    assert policy.default_engine == "eager" and policy.vision_cache is None


def test_the_attention_kernels_plan_as_sdpa(tiny_checkpoint, request_factory):
    """set_attention: "eager" and "grouped" (model.attention: query heads of a key/value head
    stacked into one product, the fast path's decode and expert kernel) give SDPA's plans on
    both engines, for the expert alone and for the language model too; the vision tower
    keeps its kernel."""
    from alpamayo_ros.model.attention import GROUPED_ATTENTION
    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    text = policy.vlm.model.language_model.config
    assert text.num_attention_heads > text.num_key_value_heads  # grouped queries in play
    r1, r2 = request_factory(seed=1, shape=(64, 96)), request_factory(seed=2, shape=(48, 96))
    # sampled decode (left padding: two prompt lengths) and a forced chain (the lane)
    runs = [
        dict(num_samples=2, seed=3, temperature=0.6, max_reasoning_tokens=6, num_flow_steps=3),
        dict(num_samples=2, seed=3, reasoning_ids=[[40, 41, 42]] * 2, num_flow_steps=3),
    ]
    sdpa = [policy.plan([r1, r2], **kw).samples for kw in runs]
    for impl, language in (("eager", False), ("grouped", False), ("grouped", True)):
        policy.set_attention("sdpa")
        policy.set_attention(impl, language_model=language)
        expected = {"eager": "eager", "grouped": GROUPED_ATTENTION}[impl]
        assert policy.expert.config._attn_implementation == expected
        assert text._attn_implementation == (expected if language else "sdpa")
        assert policy.vlm.config.vision_config._attn_implementation == "sdpa"
        for engine in ("eager", "static"):
            for kw, reference in zip(runs, sdpa, strict=True):
                got = policy.plan([r1, r2], engine=engine, **kw).samples
                pairs = zip(
                    [s for row in reference for s in row],
                    [s for row in got for s in row],
                    strict=True,
                )
                for a, b in pairs:
                    assert a.reasoning_token_ids == b.reasoning_token_ids
                    assert np.abs(a.controls - b.controls).max() < 1e-3
                    assert np.abs(a.xyz - b.xyz).max() < 1e-3
    with pytest.raises(ValueError, match=r"attention must be one of .* got 'flash_attention_2'"):
        policy.set_attention("flash_attention_2")


def test_grouped_attention_equals_sdpa_on_masked_few_query_blocks():
    """The kernel alone, float32: 4 query heads per key/value head, boolean and additive
    masks, one query (decode) and 64 (the expert); long blocks are SDPA's."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from alpamayo_ros.model.attention import grouped_attention

    class Layer(torch.nn.Module):
        num_key_value_groups = 4
        is_causal = True

    g = torch.Generator().manual_seed(0)
    for T, S in ((1, 300), (64, 333), (200, 200)):
        q = torch.randn(2, 8, T, 16, generator=g)
        k, v = torch.randn(2, 2, S, 16, generator=g), torch.randn(2, 2, S, 16, generator=g)
        mask = torch.rand(2, 1, T, S, generator=g) > 0.3
        mask[..., -1] = True  # no row fully masked
        for m in (mask, torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))):
            want, _ = sdpa_attention_forward(Layer(), q, k, v, m, scaling=0.25)
            got, _ = grouped_attention(Layer(), q, k, v, m, scaling=0.25)
            assert got.shape == (2, T, 8, 16)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        if T <= 128:  # the grouped path: a per-head mask longer than the keys, sliced
            wide = torch.rand(2, 8, T, S + 7, generator=g) > 0.3
            wide[..., S - 1] = True
            want, _ = sdpa_attention_forward(Layer(), q, k, v, wide[..., :S], scaling=0.25)
            got, _ = grouped_attention(Layer(), q, k, v, wide, scaling=0.25)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        if T == 1:  # decode without padding: no mask
            want, _ = sdpa_attention_forward(Layer(), q, k, v, None, scaling=0.25)
            got, _ = grouped_attention(Layer(), q, k, v, None, scaling=0.25)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_chains_never_hold_vision_placeholders_so_the_lane_can_reuse_them(
    tiny_checkpoint, request_factory
):
    """A chain holding <|image_pad|> would be read as an image slot when the trajectory
    lane teacher-forces it (found by the real-time launch test: "Image features and image
    tokens do not match"). Decoding masks the vision placeholders; the processor refuses
    them in a continuation, naming the ids."""
    import torch

    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    proc = policy.processor
    assert proc.image_pad_id in proc.vision_token_ids and len(proc.vision_token_ids) >= 3
    with torch.no_grad():  # make the placeholders the model's favourite tokens
        for i in proc.vision_token_ids:
            policy.vlm.lm_head.weight[i] = 50.0 * policy.vlm.lm_head.weight.abs().max()
    r = request_factory(seed=1, shape=(64, 96))
    plan = policy.plan([r], num_samples=2, seed=0, temperature=0.0, max_reasoning_tokens=6)
    chain = plan.samples[0][0].reasoning_token_ids
    assert chain and not set(chain) & set(proc.vision_token_ids)
    steps = policy.reason_steps(r, temperature=0.0, max_tokens=6, seed=0)
    try:
        while True:
            next(steps)
    except StopIteration as done:
        lane_chain = done.value[0]
    assert lane_chain and not set(lane_chain) & set(proc.vision_token_ids)
    policy.plan([r], reasoning_ids=[list(lane_chain)], num_flow_steps=2)  # reads it back
    with pytest.raises(
        ValueError,
        match=rf"continuation 0 holds vision placeholder token ids \[{proc.image_pad_id}\]",
    ):
        policy.plan([r], reasoning_ids=[[40, proc.image_pad_id]], num_flow_steps=2)


def test_the_reasoning_lane_starts_from_the_trajectory_lanes_prompt(
    tiny_checkpoint, request_factory
):
    """engine fast: a trajectory-lane plan keeps its prompt's keys and values
    (model.lane_prefix), and a chain started on the same inputs skips its prefill: the same
    chain as a fresh prefill gives for the same seed, sampled and greedy. Other frames or
    another ego history are not served from it, and the lane plan itself is unchanged."""
    import torch

    from alpamayo_ros.model.policy import AlpamayoPolicy

    policy = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    policy.configure(engine="fast", vision_cache_frames=32)
    assert policy.share_lane_prefix
    r = request_factory(seed=1, shape=(64, 96))
    lane_kw = dict(num_samples=2, seed=0, reasoning_ids=[[40, 41, 42]], num_flow_steps=2)
    prefills = {"n": 0}
    prefill = policy._prefill

    def counted(*args, **kwargs):
        prefills["n"] += 1
        return prefill(*args, **kwargs)

    policy._prefill = counted  # type: ignore[method-assign]

    def chain(request, temperature, on=policy):
        steps = on.reason_steps(request, temperature=temperature, max_tokens=8, seed=2)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    # the reference on a policy of its own (its caches hold nothing of this one's)
    reference = AlpamayoPolicy.from_pretrained(tiny_checkpoint)
    reference.configure(engine="fast", vision_cache_frames=32)
    fresh = {t: chain(r, t, reference) for t in (0.0, 0.6)}
    chain(r, 0.0)  # no lane plan yet: prefilled
    assert prefills["n"] == 1 and policy.prefix_reuses == 0
    policy.share_lane_prefix = False
    unshared = policy.plan([r], **lane_kw).samples[0]
    policy.share_lane_prefix = True
    shared = policy.plan([r], **lane_kw).samples[0]
    for a, b in zip(unshared, shared, strict=True):
        assert np.abs(a.xyz - b.xyz).max() < 1e-5
    prefills["n"] = 0
    for t in (0.0, 0.6):
        assert chain(r, t) == fresh[t]
    assert prefills["n"] == 0 and policy.prefix_reuses == 2
    # the chain's cache holds what a fresh prefill writes (a chain alone does not show a
    # token missing from it: these small models write the same chain without <|cot_start|>)
    mine, theirs = policy._static_caches["reason"][1], reference._static_caches["reason"][1]
    assert int(mine.get_seq_length()) == int(theirs.get_seq_length())
    n = int(policy._lane_prefix.prompt_ids.shape[1])
    for a, b in zip(mine.layers, theirs.layers, strict=True):
        torch.testing.assert_close(a.keys[:, :, :n], b.keys[:, :, :n], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a.values[:, :, :n], b.values[:, :, :n], atol=1e-5, rtol=1e-5)
    other_frames = request_factory(seed=5, shape=(64, 96))
    slower = request_factory(seed=1, shape=(64, 96), speed=2.0)  # other history tokens
    chain(other_frames, 0.0)
    assert prefills["n"] == 1 and policy.prefix_reuses == 2
    assert slower.images[0] is not r.images[0]
    same_frames = type(r)(r.images, slower.ego, r.cameras, r.navigation)
    chain(same_frames, 0.0)
    assert prefills["n"] == 2 and policy.prefix_reuses == 2
