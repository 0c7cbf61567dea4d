"""The planner's reasoning lane on the model: a causal chain for one request decoded one
token per step, so the planner can run trajectory-lane plans between the steps (the chain
it returns is what plan(reasoning_ids=...) teacher-forces)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import torch
from transformers import StaticCache

from alpamayo_ros.model.sampling import sample_token
from alpamayo_ros.model.static_decode import decode_buffers, draw_next
from alpamayo_ros.planning.requests import PlanRequest

if TYPE_CHECKING:
    from alpamayo_ros.model.runtime import PolicyRuntime


def reason_steps(
    runtime: PolicyRuntime,
    request: PlanRequest,
    temperature: float = 0.6,
    top_p: float = 0.98,
    max_tokens: int = 128,
    seed: int | None = None,
) -> Generator[str, None, tuple[tuple[int, ...], str, bool]]:
    """A causal chain for one request, one step at a time (the planner's reasoning lane
    between trajectory-lane plans): yields "prefill", then "token" after each decoded
    token (trajectory tokens masked, as in plan()); returns (the chain's token ids up to
    <|cot_end|>, its text, complete: whether <|traj_future_start|> came before
    max_tokens). The ids are what plan(reasoning_ids=...) teacher-forces. With the
    static engine as default (configure(engine="fast")) the steps decode on their own
    StaticCache with the compiled decode step."""
    if runtime.processor is None:
        raise RuntimeError("policy has no processor: load it with from_pretrained")
    proc = runtime.processor
    generator = runtime._generator(seed)
    with torch.inference_mode():
        inputs = runtime._on_device(runtime._inputs([request], runtime.device))
        attention = inputs["attention_mask"]
        prefix = runtime._lane_prefix if runtime.default_engine == "static" else None
        assert runtime.processor is not None
        frames = runtime.processor.layout(request.images, request.cameras)[0]
        if prefix is not None and prefix.matches(frames, inputs["input_ids"]):
            # the trajectory lane read this prompt: start from its keys and values
            kept = runtime._static_caches["prefix"][1]
            cache = runtime._to_static("reason", kept, attention.shape[1] + max_tokens + 1)
            logits, rope_deltas = prefix.logits, prefix.rope_deltas
            runtime.prefix_reuses += 1
        else:
            cache, logits, rope_deltas = runtime._prefill(inputs)
            if runtime.default_engine == "static":  # its own cache: plans run between steps
                need = attention.shape[1] + max_tokens + 1
                cache = runtime._to_static("reason", cache, need)
        buffers = None  # the static engine: the plan's per-token functions (static_decode)
        if isinstance(cache, StaticCache) and runtime.graph_decode:
            buffers = decode_buffers(runtime, "reason", logits, cache.get_max_length())
            buffers.start(attention, logits)
            banned = runtime._chain_mask(logits.shape[-1], logits.device)
    yield "prefill"
    stop, cot_end = proc.special_ids["traj_future_start"], proc.special_ids["cot_end"]
    ids: list[int] = []
    complete = False
    for _ in range(max_tokens):
        with torch.inference_mode():
            if buffers is not None:
                token = draw_next(runtime, buffers, banned, temperature, top_p, generator)
            else:
                masked = runtime._chain_logits(logits)
                token = sample_token(masked, temperature, top_p, generator)
            value = int(token[0])
            if value == stop:
                complete = True
                break
            ids.append(value)
            if buffers is not None:
                runtime._static_advance(token, buffers, cache, rope_deltas)
            else:
                attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
                logits = runtime._step_vlm(token, cache, attention, rope_deltas)
        yield "token"
    chain = ids[: ids.index(cot_end)] if cot_end in ids else ids
    text = str(proc.tokenizer.decode(chain, skip_special_tokens=True)).strip()
    return tuple(chain), text, complete
