"""The downstream CTR model of the frozen-z table: a ranking team's view of z alone.

It reads only the frozen k-dim vectors of a user and an item, so it scores
the representation, not the method's own scorer. It is a plain MLP over
``[z_u, z_i, z_u * z_i]``, deliberately not MARC's DCN-V2 matching net, so
that no method gets a downstream model shaped like its own training head.
Embeddings are standardised per feature first (no labels involved), since
PCA and learned heads produce very different scales.
"""

import numpy as np
import torch
from torch import nn

from marc_batch.config import EvaluateConfig
from marc_batch.evaluate.fit import Schedule, Score, fit, fit_and_score
from marc_batch.train.pairs import Pairs


def standardise(z: np.ndarray, like: np.ndarray | None = None) -> torch.Tensor:
    """Per-feature standard scores of ``z``, with the statistics of ``like`` (default: z's own).

    A trained downstream model keeps the standardisation it was trained with:
    vectors of another snapshot are scaled with the training vectors' statistics.
    """
    reference = z if like is None else like
    return torch.from_numpy((z - reference.mean(0)) / reference.std(0).clip(min=1e-6)).float()


class DownstreamCTR(nn.Module):
    def __init__(
        self, user_z: np.ndarray, item_z: np.ndarray, hidden: list[int], dropout: float
    ) -> None:
        super().__init__()
        self.z_u, self.z_i = standardise(user_z), standardise(item_z)
        layers: list[nn.Module] = []
        dim = 3 * user_z.shape[1]
        for width in hidden:
            layers += [nn.Linear(dim, width), nn.ReLU(), nn.Dropout(dropout)]
            dim = width
        self.mlp = nn.Sequential(*layers, nn.Linear(dim, 1))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        z_u, z_i = self.z_u[users], self.z_i[items]
        return self.mlp(torch.cat([z_u, z_i, z_u * z_i], dim=-1)).squeeze(-1)


def _model(
    user_z: np.ndarray, item_z: np.ndarray, config: EvaluateConfig, seed: int
) -> tuple[DownstreamCTR, Schedule]:
    torch.manual_seed(seed)
    model = DownstreamCTR(user_z, item_z, config.hidden, config.dropout)
    return model, Schedule(config.epochs, config.patience, config.batch_size, config.learning_rate)


def validation_auc(
    user_z: np.ndarray, item_z: np.ndarray, pairs: Pairs, config: EvaluateConfig, seed: int
) -> float:
    """The downstream model's best validation AUC; the test split is not scored at all."""
    model, schedule = _model(user_z, item_z, config, seed)
    return fit(model, pairs, schedule, seed)


def score_embeddings(
    user_z: np.ndarray, item_z: np.ndarray, pairs: Pairs, config: EvaluateConfig, seed: int
) -> Score:
    """Train on the training split, select the epoch on validation AUC, report test."""
    model, schedule = _model(user_z, item_z, config, seed)
    return fit_and_score(model, pairs, schedule, seed)
