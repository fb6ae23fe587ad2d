"""The downstream CTR model a ranking team would train on published embeddings.

It reads only the frozen k-dim vectors of a user and an item, so it scores
the representation, not the method's own scorer. It is a plain MLP over
``[z_u, z_i, z_u * z_i]``, deliberately not MARC's DCN-V2 matching net, so
that no method gets a downstream model shaped like its own training head.
Embeddings are standardised per feature first (no labels involved), since
PCA and learned heads produce very different scales.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn

from marc_batch.config import EvaluateConfig
from marc_batch.train.pairs import Pairs, Split


@dataclass
class Score:
    valid_auc: float
    test_auc: float
    test_logloss: float


def standardise(z: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((z - z.mean(0)) / z.std(0).clip(min=1e-6)).float()


class DownstreamCTR(nn.Module):
    def __init__(self, k: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = 3 * k
        for width in hidden:
            layers += [nn.Linear(dim, width), nn.ReLU(), nn.Dropout(dropout)]
            dim = width
        self.mlp = nn.Sequential(*layers, nn.Linear(dim, 1))

    def forward(self, z_u: torch.Tensor, z_i: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([z_u, z_i, z_u * z_i], dim=-1)).squeeze(-1)


@torch.no_grad()
def _predict(
    model: DownstreamCTR, z_u: torch.Tensor, z_i: torch.Tensor, split: Split
) -> np.ndarray:
    model.eval()
    logits = model(z_u[torch.from_numpy(split.users)], z_i[torch.from_numpy(split.items)])
    return torch.sigmoid(logits).numpy()


def fit_downstream(
    user_z: np.ndarray, item_z: np.ndarray, pairs: Pairs, config: EvaluateConfig, seed: int
) -> tuple[DownstreamCTR, float, torch.Tensor, torch.Tensor]:
    """Train on the training split; keep the epoch with the best validation AUC.

    Returns the model at that epoch, its validation AUC and the standardised inputs.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    z_u, z_i = standardise(user_z), standardise(item_z)
    train, valid = pairs.splits["train"], pairs.splits["valid"]
    model = DownstreamCTR(user_z.shape[1], config.hidden, config.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    labels = torch.from_numpy(train.labels)
    users, items = torch.from_numpy(train.users), torch.from_numpy(train.items)
    best, best_state, since = -1.0, None, 0
    for _ in range(config.epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(train)))
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            logits = model(z_u[users[batch]], z_i[items[batch]])
            loss = F.binary_cross_entropy_with_logits(logits, labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        auc = float(roc_auc_score(valid.labels, _predict(model, z_u, z_i, valid)))
        if auc > best:
            best, since = auc, 0
            best_state = {name: value.clone() for name, value in model.state_dict().items()}
        else:
            since += 1
            if since >= config.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    return model, best, z_u, z_i


def validation_auc(
    user_z: np.ndarray, item_z: np.ndarray, pairs: Pairs, config: EvaluateConfig, seed: int
) -> float:
    """The downstream model's best validation AUC; the test split is not scored at all."""
    return fit_downstream(user_z, item_z, pairs, config, seed)[1]


def score_embeddings(
    user_z: np.ndarray, item_z: np.ndarray, pairs: Pairs, config: EvaluateConfig, seed: int
) -> Score:
    """Train on the training split, select the epoch on validation AUC, report test."""
    model, best, z_u, z_i = fit_downstream(user_z, item_z, pairs, config, seed)
    test = pairs.splits["test"]
    predictions = _predict(model, z_u, z_i, test)
    return Score(
        valid_auc=best,
        test_auc=float(roc_auc_score(test.labels, predictions)),
        test_logloss=float(log_loss(test.labels, predictions.astype(np.float64), labels=[0, 1])),
    )
