"""Euler sampling with the official times and step sizes (NVlabs/alpamayo
diffusion/flow_matching.py _euler: t_i = linspace(0, 1, K + 1)[i], dt_i = t_i+1 - t_i, float32)."""

import pytest
import torch

from alpamayo_ros.model.flow_matching import euler_sample


@pytest.mark.parametrize("steps", [1, 5, 10, 7])
def test_euler_steps_are_the_float32_linspace_differences(steps):
    seen = []

    def velocity(x, t):
        seen.append(t.clone())
        return torch.sin(3.0 * x) + t.view(-1, 1, 1)  # any field that depends on x and t

    gen = torch.Generator().manual_seed(0)
    out = euler_sample(velocity, (2, 64, 2), steps, generator=gen)
    times = torch.linspace(0.0, 1.0, steps + 1)
    assert all(torch.equal(t, times[i].expand(2)) for i, t in enumerate(seen))
    # the official loop, written out
    x = torch.randn((2, 64, 2), generator=torch.Generator().manual_seed(0))
    for i in range(steps):
        x = x + (times[i + 1] - times[i]) * (torch.sin(3.0 * x) + times[i])
    assert torch.equal(out, x)


def test_one_over_k_steps_would_differ():
    # why it matters: for K = 10 the float32 linspace differences are not all 1/K
    times = torch.linspace(0.0, 1.0, 11)
    assert not torch.all((times[1:] - times[:-1]) == torch.tensor(0.1))
