"""The static engine's reasoning decode: each token as two fixed-shape functions over
buffers with fixed addresses, which compile_decode captures as CUDA graphs, and one draw
between them.

Per token (the eager reference, runtime._decode_reasoning, does the same as ~20 separate
operations around its decode step):
1. `PolicyRuntime._static_sampling`: the chain mask (trajectory tokens and vision
   placeholders), temperature, softmax and nucleus cut over DecodeBuffers.logits ->
   (B, V) probabilities (greedy: the ids);
2. `model.sampling.draw`: torch.multinomial with the plan's generator (a generator cannot
   enter a graph), the reference's draw, so the same seed gives the same ids;
3. `PolicyRuntime._static_advance`: finished sequences get the pad token; the token, its
   attention-mask entry and its stop bookkeeping written at its slot (the static cache's
   write position, read on the device); the rotary position from a running count of real
   tokens; the VLM step; the next logits, the logits after each stop and the
   all-finished flag written in place.
The host reads the all-finished flag `stop_lag` steps late (one step of padding at most,
the same chains) and nothing else until the end; the generator is then set back to its
state before the padding step's draw, so the expert's noise is the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from alpamayo_ros.model.sampling import draw, undo_padding_draws


@dataclass
class DecodeBuffers:
    """The decode state of B sequences over a static cache of `slots` slots, refilled in
    place by each plan of the same shape (graphs captured over it replay)."""

    mask: torch.Tensor  # (B, slots) long: attention mask of the static cache's slots
    text_pos: torch.Tensor  # (B, 1) long: real tokens before the next one (rotary text pos)
    finished: torch.Tensor  # (B,) bool: the sequence fed <|traj_future_start|>
    stop_pos: torch.Tensor  # (B,) long: slot of the sequence's stop token, -1 before
    logits: torch.Tensor  # (B, V): next-token logits
    stop_logits: torch.Tensor  # (B, V): the logits right after the sequence's stop token
    tokens: torch.Tensor  # (B, slots) long: the token fed at each slot
    all_finished: torch.Tensor  # (slots,) bool: every sequence stopped at or before the slot

    @classmethod
    def allocate(cls, logits: torch.Tensor, slots: int) -> DecodeBuffers:
        """Buffers for logits (B, V) and a static cache of `slots` slots, their addresses
        marked static for torch.compile (as transformers' StaticCache marks its own)."""
        b, device = logits.shape[0], logits.device

        def longs(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=torch.long, device=device)

        buffers = cls(
            mask=longs(b, slots),
            text_pos=longs(b, 1),
            finished=torch.zeros(b, dtype=torch.bool, device=device),
            stop_pos=longs(b),
            logits=torch.zeros_like(logits),
            stop_logits=torch.zeros_like(logits),
            tokens=longs(b, slots),
            all_finished=torch.zeros(slots, dtype=torch.bool, device=device),
        )
        for f in fields(buffers):
            torch._dynamo.mark_static_address(getattr(buffers, f.name))
        return buffers

    def fits(self, logits: torch.Tensor, slots: int) -> bool:
        return (
            self.logits.shape == logits.shape
            and self.logits.dtype == logits.dtype
            and self.logits.device == logits.device
            and self.mask.shape[1] == slots
        )

    def start(self, attention: torch.Tensor, logits: torch.Tensor) -> None:
        """Refill for a prompt: attention (B, L) of the L cached tokens, the logits (B, V)
        after the last of them."""
        length = attention.shape[1]
        self.mask.zero_()
        self.mask[:, :length] = attention
        self.text_pos.copy_(attention.sum(dim=-1, keepdim=True))
        self.finished.zero_()
        self.stop_pos.fill_(-1)
        self.logits.copy_(logits)
        self.stop_logits.copy_(logits)
        self.all_finished.zero_()


def decode_static(
    runtime, logits, cache, attention, rope_deltas, temperature, top_p, max_tokens, generator,
    stop_lag: int = 1,
):  # fmt: skip
    """runtime._decode_reasoning on a StaticCache (see the module text): the same return
    values (chain ids, generated ids, stop slots, complete, the attention mask up to the
    last fed token, the logits after each stop)."""
    length = attention.shape[1]
    buffers = decode_buffers(runtime, "plan", logits, cache.get_max_length())
    buffers.start(attention, logits)
    banned = runtime._chain_mask(logits.shape[-1], logits.device)
    steps = 0
    states = []  # the generator's state before each draw (host-side, no synchronisation)
    for step in range(max_tokens):
        if step > stop_lag and bool(buffers.all_finished[length + step - 1 - stop_lag]):
            break
        if stop_lag:
            states.append(generator.get_state())
        token = draw_next(runtime, buffers, banned, temperature, top_p, generator)
        runtime._check_cancel()
        runtime._static_advance(token, buffers, cache, rope_deltas)
        steps += 1
        if stop_lag == 0 and bool(buffers.all_finished[length + step]):
            break
    end = length + steps
    if stop_lag:
        undo_padding_draws(generator, states, buffers.all_finished[length:end])
    finished = buffers.finished.clone()
    stop_pos = torch.where(finished, buffers.stop_pos, torch.full_like(buffers.stop_pos, end - 1))
    stop_logits = torch.where(finished[:, None], buffers.stop_logits, buffers.logits)
    generated = buffers.tokens[:, length:end].clone()
    attention = buffers.mask[:, :end].clone()
    return generated, stop_pos, finished, attention, stop_logits


def decode_buffers(runtime, user: str, logits: torch.Tensor, slots: int) -> DecodeBuffers:
    """`user`'s decode buffers ("plan", "reason": each decodes on its own static cache)
    for logits (B, V) over `slots` slots: the ones from its last call when they fit."""
    kept = runtime._decode_buffers.get(user)
    if kept is None or not kept.fits(logits, slots):
        kept = DecodeBuffers.allocate(logits, slots)
        runtime._decode_buffers[user] = kept
    return kept


def draw_next(runtime, buffers: DecodeBuffers, banned, temperature, top_p, generator):
    """The next ids (B,) from the buffers' logits: the sampling function, then the draw."""
    token = draw(runtime._static_sampling(buffers.logits, banned, temperature, top_p), generator)
    if temperature <= 0:  # the greedy ids are the sampling graph's output, which a CUDA
        token = token.clone()  # graph tree frees when the next graph (_static_advance) runs
    return token
