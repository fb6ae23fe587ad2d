"""One training loop for every downstream model: epochs on the training split, the epoch kept
by validation AUC, test scored once at that epoch.

Both the frozen-z MLP and the id-based lift model are modules that score
``(user rows, item rows)``; sharing the loop keeps their early stopping and
their metrics identical, so the two tables differ only in the model.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn

from marc_batch.train.pairs import Pairs, Split


@dataclass
class Schedule:
    epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0


@dataclass
class Score:
    valid_auc: float
    test_auc: float
    test_logloss: float


@torch.no_grad()
def predict(model: nn.Module, split: Split) -> np.ndarray:
    model.eval()
    logits = model(torch.from_numpy(split.users), torch.from_numpy(split.items))
    return torch.sigmoid(logits).numpy()


def fit(model: nn.Module, pairs: Pairs, schedule: Schedule, seed: int) -> float:
    """Train ``model`` on ``pairs``' training split; leave the best validation epoch loaded.

    The caller seeds the model's initialisation; ``seed`` drives the batch order.
    Returns the best validation AUC.
    """
    rng = np.random.default_rng(seed)
    train, valid = pairs.splits["train"], pairs.splits["valid"]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    labels = torch.from_numpy(train.labels)
    users, items = torch.from_numpy(train.users), torch.from_numpy(train.items)
    best, best_state, since = -1.0, None, 0
    for _ in range(schedule.epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(train)))
        for start in range(0, len(order), schedule.batch_size):
            batch = order[start : start + schedule.batch_size]
            loss = F.binary_cross_entropy_with_logits(
                model(users[batch], items[batch]), labels[batch]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        auc = float(roc_auc_score(valid.labels, predict(model, valid)))
        if auc > best:
            best, since = auc, 0
            best_state = {name: value.clone() for name, value in model.state_dict().items()}
        else:
            since += 1
            if since >= schedule.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    return best


def fit_and_score(model: nn.Module, pairs: Pairs, schedule: Schedule, seed: int) -> Score:
    """``fit``, then the test split's AUC and LogLoss at the selected epoch."""
    return scored(model, pairs, fit(model, pairs, schedule, seed))


def scored(model: nn.Module, pairs: Pairs, valid_auc: float | None = None) -> Score:
    """A trained model's validation AUC (unless given) and test AUC and LogLoss, as it stands."""
    if valid_auc is None:
        valid = pairs.splits["valid"]
        valid_auc = float(roc_auc_score(valid.labels, predict(model, valid)))
    test = pairs.splits["test"]
    predictions = predict(model, test)
    return Score(
        valid_auc=valid_auc,
        test_auc=float(roc_auc_score(test.labels, predictions)),
        test_logloss=float(log_loss(test.labels, predictions.astype(np.float64), labels=[0, 1])),
    )
