"""The compression net g: D -> k. Its output z is all the service stores and publishes."""

from typing import Literal

import torch
from torch import nn

from marc_batch.entities import Entity

# The order the heads are created in, and so the order they draw their initial weights.
HEAD_ORDER = (Entity.USER, Entity.ITEM)


class Standardise(nn.Module):
    """Fixed per-feature centring and scaling of h, fitted once on the frozen training states.

    Pooled LLM states share a large common component and a few outlier
    features; without this the heads spend their first updates undoing it.
    The statistics are buffers, so they travel with the artifact.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, states: torch.Tensor) -> None:
        self.mean.copy_(states.mean(0))
        self.std.copy_(states.std(0).clamp(min=1e-6))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.mean) / self.std


def compression_net(
    dim_in: int, k: int, kind: Literal["mlp", "linear"], hidden: int, dropout: float
) -> nn.Module:
    """A two-layer MLP (MARC) or a single linear projection (the proj-final baseline)."""
    if kind == "linear":
        return nn.Sequential(Standardise(dim_in), nn.Linear(dim_in, k))
    return nn.Sequential(
        Standardise(dim_in),
        nn.Linear(dim_in, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, k),
    )


class CompressionHeads(nn.Module):
    """One head per entity by default: user and item texts differ in form and length."""

    def __init__(
        self,
        dim_in: int,
        k: int,
        kind: Literal["mlp", "linear"] = "mlp",
        hidden: int = 256,
        dropout: float = 0.1,
        shared: bool = False,
    ) -> None:
        super().__init__()
        self.k = k
        self.shared = shared
        names = ("shared",) if shared else HEAD_ORDER
        self.nets = nn.ModuleDict(
            {name: compression_net(dim_in, k, kind, hidden, dropout) for name in names}
        )

    def net(self, entity: Entity) -> nn.Module:
        return self.nets["shared" if self.shared else entity]

    @torch.no_grad()
    def fit_standardisation(self, states: dict[Entity, torch.Tensor]) -> None:
        """Fit each head's input statistics on the (frozen) states it will compress."""
        if self.shared:
            self.net("user")[0].fit(torch.cat(list(states.values())))
        else:
            for entity, entity_states in states.items():
                self.net(entity)[0].fit(entity_states)

    def forward(self, h: torch.Tensor, entity: Entity) -> torch.Tensor:
        return self.net(entity)(h)
