"""Flow matching over normalised controls: Euler sampling and the training objective.

Convention of the release: x_t = t x + (1 - t) eps, noise at t = 0, data at t = 1; the
network predicts the velocity x - eps; training times t = 0.999 (1 - Beta(1.5, 1)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def euler_sample(
    velocity: VelocityFn,
    shape: tuple[int, ...],
    num_steps: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    noise_temperature: float = 1.0,
) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from Gaussian noise at t=0 to t=1 in num_steps.

    noise_temperature: the initial noise is randn * noise_temperature (Alpamayo 1.5's
    `temperature`; 1 = the released default, < 1 less diverse samples).
    velocity(x (B, ...), t (B,)) -> (B, ...). Returns x at t=1, float32. The times and step
    sizes are the official ones: t_i = linspace(0, 1, num_steps + 1)[i] in float32 and
    dt_i = t_i+1 - t_i (not 1 / num_steps: from step 3 they differ by an ulp, which the
    velocity field amplifies).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not noise_temperature > 0:
        raise ValueError(f"noise_temperature must be > 0, got {noise_temperature}")
    x = torch.randn(shape, generator=generator, device=generator.device if generator else device)
    x = x.to(device)
    if noise_temperature != 1.0:
        x = x * noise_temperature
    times = torch.linspace(0.0, 1.0, num_steps + 1, device=x.device, dtype=torch.float32)
    for i in range(num_steps):
        t = times[i].expand(shape[0])
        x = x + (times[i + 1] - times[i]) * velocity(x, t).float()
    return x


def guided(
    conditional: VelocityFn, unconditional: VelocityFn, weight: torch.Tensor | float
) -> VelocityFn:
    """Classifier-free guidance: v = (1 - w) v_uncond + w v_cond (Alpamayo 1.5's navigation
    guidance; w = 1 is the conditional velocity alone, w > 1 amplifies the condition).
    weight: a number, or (B, 1, 1) per sample."""

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_c = conditional(x, t).float()
        v_u = unconditional(x, t).float()
        return (1 - weight) * v_u + weight * v_c

    return velocity


def sample_training_time(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch,) flow times t = 0.999 (1 - u), u ~ Beta(1.5, 1): more weight near the noise."""
    # Beta(1.5, 1) by inverse CDF: F(u) = u^1.5.
    r = torch.rand(batch, generator=generator)
    return 0.999 * (1.0 - r.pow(1.0 / 1.5))


def flow_matching_loss(
    velocity: VelocityFn, x: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Conditional flow-matching MSE on clean normalised controls x (B, T, C)."""
    t = sample_training_time(x.shape[0], generator).to(x.device)
    eps = torch.randn(x.shape, generator=generator).to(x.device)
    tb = t.view(-1, *([1] * (x.dim() - 1)))
    x_t = tb * x + (1 - tb) * eps
    return torch.mean((velocity(x_t, t).float() - (x - eps).float()) ** 2)
