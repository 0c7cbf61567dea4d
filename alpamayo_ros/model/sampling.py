"""Next-token sampling, split where a CUDA graph must stop: `token_distribution` (the
temperature, softmax and nucleus cut: fixed shapes, captured with the static engine's
decode step) and `draw` (torch.multinomial with the plan's torch.Generator, which a graph
cannot hold: dynamo breaks the graph at a generator argument). Every decode path samples
through these two, so the same seed gives the same ids on every engine."""

from __future__ import annotations

import torch


def token_distribution(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """(B, V) logits -> (B, V) float32 probabilities after temperature and nucleus (top-p)
    filtering, or at temperature <= 0 the greedy ids (B,) long."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        keep = sorted_p.cumsum(dim=-1) - sorted_p < top_p
        sorted_p = sorted_p * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return probs


def draw(distribution: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """token_distribution's output -> (B,) ids: one multinomial draw per row with the
    generator (on the probabilities' device), or the greedy ids as they are."""
    if distribution.dtype == torch.long:
        return distribution
    return torch.multinomial(distribution, 1, generator=generator).squeeze(-1)


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> torch.Tensor:
    """(B, V) logits -> (B,) ids by temperature + nucleus sampling (greedy at temperature 0):
    the two steps above in one call, for the decoders that need no graph between them."""
    return draw(token_distribution(logits, temperature, top_p), generator)


def undo_padding_draws(
    generator: torch.Generator, states: list[torch.Tensor], all_finished: torch.Tensor
) -> None:
    """A decode loop that reads its stop flag late runs padding steps after every sequence
    stopped, and their draws advance the generator, which then gives the expert other noise
    than a loop that stopped at once. states: the generator's state before each step's draw;
    all_finished (steps,) bool: every sequence had stopped after that step. Puts the
    generator back to its state before the first padding step's draw (one read of the
    flags; a generator's state is kept on the host)."""
    done = all_finished.nonzero()
    if len(done) and int(done[0, 0]) + 1 < len(states):
        generator.set_state(states[int(done[0, 0]) + 1])
