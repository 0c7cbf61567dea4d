"""The action expert's side of inference and of the flow-matching loss: where its 64
action tokens sit in a VLM's KV cache (positions, attention) and one velocity evaluation
over that cache, left as it was. PolicyRuntime's Euler loop and training call these."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import Qwen3VLTextModel, StaticCache

from alpamayo_ros.model.action_expert import ActionSpace, PerWaypointActionInProj
from alpamayo_ros.model.config import AlpamayoConfig
from alpamayo_ros.model.kv_cache import crop_cache


@dataclass(frozen=True)
class ExpertContext:
    """What the expert needs to read a VLM cache: the cache, its action tokens' rotary
    position ids (3, B, T), their attention mask (B, 1, T, prefix + T) and the cache length."""

    cache: object
    position_ids: torch.Tensor
    mask: torch.Tensor
    prefix: int


class ExpertSampler(nn.Module):
    """The expert's passes over a VLM cache (a base class of PolicyRuntime; the modules are
    built by AlpamayoPolicy.__init__)."""

    config: AlpamayoConfig
    expert: Qwen3VLTextModel
    action_space: ActionSpace
    action_in_proj: PerWaypointActionInProj
    action_out_proj: nn.Linear

    def expert_context(
        self, cache, attention: torch.Tensor, stop_pos: torch.Tensor, rope_deltas: torch.Tensor
    ) -> ExpertContext:
        """Positions and attention of the expert's T action tokens over a VLM cache.

        attention: (B, L) the cache's attention mask (left padding 0); stop_pos: (B,) index
        of each sequence's <|traj_future_start|> (cache positions after it, e.g. the
        trajectory tokens of a training sequence, are hidden from the expert); rope_deltas:
        (B, 1) of the VLM's multimodal rotary positions.
        """
        n = attention.shape[0]
        T = self.action_space.dims[0]
        prefix = int(cache.get_seq_length())
        device = attention.device
        # a static cache: the mask spans all its slots (those after the actions unused)
        unused = cache.get_max_length() - prefix - T if isinstance(cache, StaticCache) else 0
        # Positions continue the VLM's multimodal rotary positions after <|traj_future_start|>.
        real_before = attention.cumsum(dim=-1).gather(1, stop_pos[:, None])  # incl. the token
        pos = real_before + rope_deltas + torch.arange(T, device=device)[None, :]
        position_ids = pos.unsqueeze(0).expand(3, -1, -1)
        allowed_prefix = attention[:, :prefix].bool()
        allowed_prefix &= torch.arange(prefix, device=device)[None, :] <= stop_pos[:, None]
        if self.config.expert_non_causal_attention:
            new = torch.ones(T, T, dtype=torch.bool, device=device)
        else:
            new = torch.tril(torch.ones(T, T, dtype=torch.bool, device=device))
        mask = torch.cat(
            [
                allowed_prefix[:, None, None, :].expand(n, 1, T, prefix),
                new.expand(n, 1, T, T),
                torch.zeros((n, 1, T, unused), dtype=torch.bool, device=device),
            ],
            dim=-1,
        )
        if self.expert.config._attn_implementation == "eager":  # additive masks only
            mask = torch.zeros(mask.shape, device=device).masked_fill(~mask, float("-inf"))
        return ExpertContext(cache, position_ids, mask, prefix)

    def expert_velocity(self, ctx: ExpertContext, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The flow-matching velocity (B, T, 2) of noisy normalised controls x (B, T, 2) at
        flow times t (B,), reading the VLM cache of `ctx` (left as it was)."""
        if isinstance(ctx.cache, StaticCache):
            v = self._static_expert_pass(x, t, ctx.position_ids, ctx.mask, ctx.cache)
        else:
            v = self._expert_pass(x, t, ctx.position_ids, ctx.mask, ctx.cache)
        crop_cache(ctx.cache, ctx.prefix)
        return v

    def _expert_pass(self, x, t, position_ids, mask, cache) -> torch.Tensor:
        """One expert pass: (B, T, 2) noisy controls and (B,) flow times over the cache
        (which gains the T action tokens: the caller crops it) -> (B, T, 2) velocity."""
        dtype = self.action_out_proj.weight.dtype
        emb = self.action_in_proj(x, t).to(dtype)
        out = self.expert(
            inputs_embeds=emb, position_ids=position_ids, past_key_values=cache,
            attention_mask=mask, use_cache=True,
        )  # fmt: skip
        T = self.action_space.dims[0]
        return self.action_out_proj(out.last_hidden_state[:, -T:]).float()

    def _static_expert_pass(self, x, t, position_ids, mask, cache) -> torch.Tensor:
        """_expert_pass over a StaticCache: fixed shapes, so compile_expert can capture it."""
        return self._expert_pass(x, t, position_ids, mask, cache)
