"""Information constraints: keep z informative about the backbone state h it compresses.

Every estimator is a module whose ``forward(h, z)`` returns a loss to
*minimise* (lower = more information kept), so the objective can swap them
freely. InfoNCE is a lower bound on I(h; z) capped at log(batch);
normalised HSIC measures kernel dependence in [0, 1]; reconstruction asks a
decoder to recover h from z. ``normalized_hsic`` also serves the optional
decoupling penalty between z and the matching net's hidden layer.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from marc_batch.config.model import Estimator


def _gaussian_gram(x: torch.Tensor) -> torch.Tensor:
    """RBF kernel with the median heuristic, which keeps HSIC scale-free across layers."""
    distances = torch.cdist(x, x).pow(2)
    off_diagonal = distances[~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)]
    bandwidth = off_diagonal.median().detach().clamp(min=1e-6)
    return torch.exp(-distances / bandwidth)


def _centered(gram: torch.Tensor) -> torch.Tensor:
    return gram - gram.mean(0, keepdim=True) - gram.mean(1, keepdim=True) + gram.mean()


def normalized_hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y)) with Gaussian kernels: 0 independent, 1 equal.

    The biased (V-statistic) estimator: smooth and cheap, and its value for
    independent variables is positive but shrinks like 1/batch.
    """
    kx = _centered(_gaussian_gram(x.float()))
    ky = _centered(_gaussian_gram(y.float()))
    cross = (kx * ky).sum()
    return cross / ((kx * kx).sum().sqrt() * (ky * ky).sum().sqrt()).clamp(min=1e-12)


def infonce_logits(
    critic: nn.Module, h: torch.Tensor, z: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Cosine similarity between every h and every critic(z); positives on the diagonal."""
    return F.normalize(h, dim=-1) @ F.normalize(critic(z), dim=-1).T / temperature


class InfoNCE(nn.Module):
    """Contrastive bound: I(h; z) >= log(B) - loss; the critic maps z back to h's space."""

    def __init__(self, dim_h: int, k: int, temperature: float) -> None:
        super().__init__()
        self.critic = nn.Linear(k, dim_h)
        self.temperature = temperature

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = infonce_logits(self.critic, h, z, self.temperature)
        return F.cross_entropy(logits, torch.arange(h.shape[0], device=h.device))

    def bound(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The mutual-information estimate in nats; never above log(batch)."""
        return math.log(h.shape[0]) - self.forward(h, z)


class HSIC(nn.Module):
    """Parameter-free kernel dependence; the loss is 1 - nHSIC(h, z)."""

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return 1.0 - normalized_hsic(h, z)


class Reconstruction(nn.Module):
    """A decoder z -> h; h is standardised per row so the loss scale does not depend on D."""

    def __init__(self, dim_h: int, k: int, hidden: int = 256) -> None:
        super().__init__()
        self.decoder = nn.Sequential(nn.Linear(k, hidden), nn.GELU(), nn.Linear(hidden, dim_h))

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        target = F.layer_norm(h, h.shape[-1:])
        return F.mse_loss(self.decoder(z), target)


def build_estimator(name: Estimator, dim_h: int, k: int, temperature: float) -> nn.Module:
    if name == "infonce":
        return InfoNCE(dim_h, k, temperature)
    if name == "hsic":
        return HSIC()
    return Reconstruction(dim_h, k)
