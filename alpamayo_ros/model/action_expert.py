"""The action expert: a smaller transformer that reads the VLM's KV cache and turns noisy
controls into a flow-matching velocity, plus its input/output projections.

Module structure and parameter names follow the released checkpoint (`expert.layers.N.*`,
`action_in_proj.sinus.K.freqs`, `action_in_proj.encoder.trunk.N.*`, `action_in_proj.norm.*`,
`action_out_proj.*`, `action_space.{accel,curvature}_{mean,std}`), so its weights load as
they are.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import Qwen3VLTextConfig, Qwen3VLTextModel

from alpamayo_ros.model.config import ActionInProjSettings, ActionSpaceSettings


class ActionSpace(nn.Module):
    """Normalisation of (acceleration m/s^2, curvature 1/m). The statistics are float32
    buffers built from the config; Alpamayo 1 checkpoints also store them (loaded over
    these), Alpamayo 1.5 may not (its code made them non-persistent)."""

    accel_mean: torch.Tensor
    accel_std: torch.Tensor
    curvature_mean: torch.Tensor
    curvature_std: torch.Tensor

    def __init__(self, settings: ActionSpaceSettings) -> None:
        super().__init__()
        self.settings = settings
        f32 = torch.float32
        self.register_buffer("accel_mean", torch.tensor(settings.accel_mean, dtype=f32))
        self.register_buffer("accel_std", torch.tensor(settings.accel_std, dtype=f32))
        self.register_buffer("curvature_mean", torch.tensor(settings.curvature_mean, dtype=f32))
        self.register_buffer("curvature_std", torch.tensor(settings.curvature_std, dtype=f32))

    @property
    def dims(self) -> tuple[int, int]:
        """(waypoints, 2)."""
        return (self.settings.n_waypoints, 2)

    def denormalise(self, action: torch.Tensor) -> torch.Tensor:
        """(..., T, 2) normalised -> physical (m/s^2, 1/m), float32."""
        a = action[..., 0].float() * self.accel_std.float() + self.accel_mean.float()
        k = action[..., 1].float() * self.curvature_std.float() + self.curvature_mean.float()
        return torch.stack([a, k], dim=-1)

    def normalise(self, controls: torch.Tensor) -> torch.Tensor:
        """(..., T, 2) physical -> normalised."""
        a = (controls[..., 0] - self.accel_mean) / self.accel_std
        k = (controls[..., 1] - self.curvature_mean) / self.curvature_std
        return torch.stack([a, k], dim=-1)


class FourierFeatures(nn.Module):
    """sin/cos features at log-spaced frequencies 1 .. max_freq: (...) -> (..., dim)."""

    freqs: torch.Tensor

    def __init__(self, dim: int, max_freq: float = 100.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"Fourier feature dim must be even, got {dim}")
        self.out_dim = dim
        freqs = torch.logspace(0, math.log10(max_freq), steps=dim // 2, dtype=torch.float32)
        self.register_buffer("freqs", freqs[None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arg = x[..., None] * self.freqs * (2 * math.pi)
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1) * math.sqrt(2.0)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(
            x
        ) * self.weight


class MLPEncoder(nn.Module):
    """Linear, SiLU, then per further layer RMSNorm, Linear (, SiLU): `trunk` indices match
    the release (0 Linear, 1 SiLU, 2 RMSNorm, 3 Linear, ...)."""

    def __init__(self, in_features: int, num_layers: int, hidden: int, out_features: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_enc_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = [nn.Linear(in_features, hidden), nn.SiLU()]
        for i in range(num_layers):
            last = i == num_layers - 1
            layers += [RMSNorm(hidden), nn.Linear(hidden, out_features if last else hidden)]
            if not last:
                layers.append(nn.SiLU())
        self.trunk = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)


class PerWaypointActionInProj(nn.Module):
    """Noisy controls (B, T, C) and flow time (B, ...) -> expert token embeddings (B, T, H).

    Each control dimension and the flow time get their own Fourier features; an MLP and a
    LayerNorm map their concatenation to the expert's hidden size, waypoint by waypoint.
    """

    def __init__(self, action_dims: int, out_dim: int, settings: ActionInProjSettings) -> None:
        super().__init__()
        f, mf = settings.num_fourier_feats, settings.max_freq
        self.sinus = nn.ModuleList([FourierFeatures(f, mf) for _ in range(action_dims)])
        self.timestep_fourier_encoder = FourierFeatures(f, mf)
        self.encoder = MLPEncoder(
            f * (action_dims + 1), settings.num_enc_layers, settings.hidden_size, out_dim
        )
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        x = x.float()
        feats = torch.cat([enc(x[:, :, i]) for i, enc in enumerate(self.sinus)], dim=-1)
        t_feats = self.timestep_fourier_encoder(t.float().reshape(B, -1)[:, -1:])  # (B, 1, F)
        feats = torch.cat([feats, t_feats.expand(B, T, -1)], dim=-1)
        dtype = self.norm.weight.dtype
        return self.norm(self.encoder(feats.to(dtype)))


def build_expert(config: Qwen3VLTextConfig) -> Qwen3VLTextModel:
    """A Qwen3-VL text transformer without its token embedding (it reads embeddings)."""
    expert = Qwen3VLTextModel(config)
    del expert.embed_tokens
    return expert
