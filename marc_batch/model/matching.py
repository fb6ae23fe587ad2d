"""The task adaptation net t: scores a (user, item) pair from z_u and z_i during training.

It is deliberately of a different structure from the compression net (DCN-V2
cross layers plus an MLP over ``[z_u, z_i, z_u * z_i]``), so that the
optimisation pressure of the click objective is absorbed here rather than
pushing z to become a task-specific score. The ``dot`` variant has no
capacity of its own: it is the "compress the final layer" baseline, where z
must carry the task directly.
"""

import math

import torch
from torch import nn


class CrossLayer(nn.Module):
    """DCN-V2: x_{l+1} = x_0 * (W x_l + b) + x_l, explicit bounded-degree feature crosses."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class DCNMatching(nn.Module):
    """Cross layers then an MLP; returns the logit and the last hidden layer (for decoupling)."""

    def __init__(self, k: int, cross_layers: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        dim = 3 * k
        self.cross = nn.ModuleList([CrossLayer(dim) for _ in range(cross_layers)])
        blocks: list[nn.Module] = []
        for width in hidden:
            blocks += [nn.Linear(dim, width), nn.ReLU(), nn.Dropout(dropout)]
            dim = width
        self.mlp = nn.Sequential(*blocks)
        self.out = nn.Linear(dim, 1)

    def forward(self, z_u: torch.Tensor, z_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = torch.cat([z_u, z_i, z_u * z_i], dim=-1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        hidden = self.mlp(x)
        return self.out(hidden).squeeze(-1), hidden


class DotMatching(nn.Module):
    """A scaled inner product plus a bias; it has no hidden layer to decouple from."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0 / math.sqrt(k)))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, z_u: torch.Tensor, z_i: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (z_u * z_i).sum(-1) * self.scale + self.bias, None
