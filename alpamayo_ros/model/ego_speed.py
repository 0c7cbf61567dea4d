"""The t0 speed the released action space integrates its trajectories from, computed as the
official code computes it: torch, float32, the same operations in the same order
(NVlabs/alpamayo action_space/utils.py dxy_theta_to_v_without_v0 called by
UnicycleAccelCurvatureActionSpace.estimate_t0_states: trapezoid least squares over the
history's steps and headings, third-order smoothness v_lambda / dt^6, ridge v_ridge,
Cholesky). On the same torch build it gives the official value bit for bit, so trajectories
match the official action_to_traj to float32 integration error; the core's numpy estimator
(alpamayo_ros.core.ego_history.estimate_speed) differs from it by float32 rounding only
(up to ~1e-5 m/s), and is what torch-free code (planner decisions, training targets) uses.
"""

from __future__ import annotations

import torch

V_LAMBDA = 1e-6  # UnicycleAccelCurvatureActionSpace defaults
V_RIDGE = 1e-4


def _unwrap(phi: torch.Tensor) -> torch.Tensor:
    d = torch.diff(phi, dim=-1)
    d = torch.atan2(torch.sin(d), torch.cos(d))
    return torch.cat([phi[..., :1], phi[..., :1] + torch.cumsum(d, dim=-1)], dim=-1)


def t0_speed(
    xyz: torch.Tensor,
    rot: torch.Tensor,
    dt: float = 0.1,
    v_lambda: float = V_LAMBDA,
    v_ridge: float = V_RIDGE,
) -> torch.Tensor:
    """(B,) m/s at t0 of ego histories xyz (B, N, 3) m and rot (B, N, 3, 3), dt s apart,
    ending at t0, computed in their dtype (float32 as released)."""
    theta = _unwrap(torch.atan2(rot[..., 1, 0], rot[..., 0, 0]))  # (B, N)
    xy = xyz[..., :2]
    dxy = xy[..., 1:, :] - xy[..., :-1, :]  # (B, N-1, 2)
    *lead, n, _ = dxy.shape
    dtype, device = dxy.dtype, dxy.device
    g = 2 / dt * dxy
    w = torch.ones_like(dxy[..., 0])
    a = torch.zeros(*lead, 2 * n, n + 1, dtype=dtype, device=device)
    b = g.flatten(start_dim=-2)
    cos, sin = torch.cos(theta), torch.sin(theta)
    rows = torch.arange(n, device=device)
    a[..., 2 * rows, rows] = cos[..., :-1]
    a[..., 2 * rows, rows + 1] = cos[..., 1:]
    a[..., 2 * rows + 1, rows] = sin[..., :-1]
    a[..., 2 * rows + 1, rows + 1] = sin[..., 1:]
    aw = a * torch.repeat_interleave(w, 2, dim=-1).unsqueeze(-1)
    ata = torch.einsum("...ij,...ik->...jk", aw, a)
    rhs = torch.einsum("...ij,...i->...j", aw, b)
    m = n + 1
    d3 = torch.zeros(*lead, max(m - 3, 0), m, dtype=dtype, device=device)
    r3 = torch.arange(max(m - 3, 0), device=device)
    d3[..., r3, r3], d3[..., r3, r3 + 1] = -1.0, 3.0
    d3[..., r3, r3 + 2], d3[..., r3, r3 + 3] = -3.0, 1.0
    w3 = torch.full((*lead, max(m - 3, 0)), 1.0, dtype=dtype, device=device)
    dtd = torch.zeros(*lead, m, m, dtype=dtype, device=device)
    dtd += v_lambda / dt**6 * torch.einsum("...ij,...ik->...jk", d3 * w3.unsqueeze(-1), d3)
    ridge = v_ridge * torch.eye(m, dtype=dtype, device=device).expand(*lead, m, m)
    chol = torch.linalg.cholesky(ata + dtd + ridge)
    return torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)[..., -1]
