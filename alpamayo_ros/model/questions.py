"""Questions about a scene (Alpamayo 1.5's question prompt) answered one token per step, so a
caller that shares the GPU with planning can run plans between the steps."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import torch

from alpamayo_ros.model.sampling import sample_token
from alpamayo_ros.model.stage_timing import stage_timer
from alpamayo_ros.planning.requests import Answer, QuestionRequest

if TYPE_CHECKING:
    from alpamayo_ros.model.runtime import PolicyRuntime


def ask_steps(
    runtime: PolicyRuntime,
    question: QuestionRequest,
    max_tokens: int = 256,
    temperature: float = 0.6,
    top_p: float = 0.98,
    seed: int | None = None,
) -> Generator[str, None, Answer]:
    """`ask` one step at a time, for a caller that shares the GPU with planning: yields
    "prefill" after the prompt is read, then "token" after each answer token, and
    returns the Answer; between steps the caller may run plans (the steps keep their
    own cache and rotary offsets) or drop the generator."""
    if runtime.processor is None:
        raise RuntimeError("policy has no processor: load it with from_pretrained")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    proc = runtime.processor
    device = runtime.device
    timings: dict[str, float] = {}
    generator = runtime._generator(seed)
    start = time.perf_counter()
    with torch.inference_mode():
        with stage_timer(timings, "preprocess", device):
            inputs = runtime._on_device(proc.question_inputs([question], runtime.device))
        with stage_timer(timings, "prefill", device):
            cache, logits, rope_deltas = runtime._prefill(inputs)
            attention = inputs["attention_mask"]
            if runtime.default_engine == "static":
                cache = runtime._to_static("ask", cache, attention.shape[1] + max_tokens + 1)
    yield "prefill"
    answer_end = proc.special_ids["answer_end"]
    ends = {answer_end, token_id_or_none(proc.tokenizer, "<|im_end|>")}
    ends.add(proc.tokenizer.eos_token_id)
    ends.discard(None)
    ids: list[int] = []
    complete = False
    for _ in range(max_tokens):
        with torch.inference_mode(), stage_timer(timings, "answer", device):
            token = sample_token(logits, temperature, top_p, generator)
            value = int(token[0])
            if value in ends:
                complete = value == answer_end
                break
            ids.append(value)
            attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
            logits = runtime._step_vlm(token, cache, attention, rope_deltas)
        yield "token"
    timings["total"] = 1000.0 * (time.perf_counter() - start)
    text = str(proc.tokenizer.decode(ids, skip_special_tokens=True)).strip()
    return Answer(text=text, complete=complete, timings_ms=timings)


def token_id_or_none(tokenizer: Any, token: str) -> int | None:
    value = tokenizer.convert_tokens_to_ids(token)
    return value if isinstance(value, int) and value >= 0 else None
