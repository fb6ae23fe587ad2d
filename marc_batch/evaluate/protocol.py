"""The evaluation protocol of docs/marc.md: five methods, three seeds, and the layer probe.

Every method ends as two frozen matrices (users x k, items x k) scored by
the same downstream CTR model. PCA is fitted per entity on the states of
the entities that occur in the training split only. ``pca-best-mid`` picks
its layer on validation AUC; test numbers are never looked at for a choice.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress
from sklearn.decomposition import PCA

from marc_batch.config import EvaluateConfig
from marc_batch.entities import Entity
from marc_batch.evaluate.ctr import score_embeddings
from marc_batch.evaluate.fit import Score
from marc_batch.model.marc import MarcEncoder
from marc_batch.train.cache import TextCache, all_layer_states
from marc_batch.train.pairs import Pairs

Embeddings = dict[Entity, np.ndarray]


@dataclass
class MethodScore:
    """Mean and standard deviation over seeds, plus the per-seed values."""

    test_auc: list[float]
    test_logloss: list[float]
    valid_auc: list[float]

    @classmethod
    def of(cls, scores: Sequence[Score]) -> "MethodScore":
        """One method's scores over its seeds, in seed order."""
        return cls(
            test_auc=[s.test_auc for s in scores],
            test_logloss=[s.test_logloss for s in scores],
            valid_auc=[s.valid_auc for s in scores],
        )

    def summary(self) -> dict[str, float]:
        return {
            "auc_mean": float(np.mean(self.test_auc)),
            "auc_std": float(np.std(self.test_auc)),
            "logloss_mean": float(np.mean(self.test_logloss)),
            "logloss_std": float(np.std(self.test_logloss)),
            "valid_auc_mean": float(np.mean(self.valid_auc)),
        }


def score_method(
    embeddings: Embeddings, pairs: Pairs, config: EvaluateConfig, seeds: list[int]
) -> MethodScore:
    return MethodScore.of(
        [
            score_embeddings(embeddings["user"], embeddings["item"], pairs, config, seed)
            for seed in seeds
        ]
    )


def training_rows(pairs: Pairs) -> dict[Entity, np.ndarray]:
    train = pairs.splits["train"]
    return {"user": np.unique(train.users), "item": np.unique(train.items)}


def pca_embeddings(states: dict[Entity, np.ndarray], fit_rows: dict[Entity, np.ndarray], k: int):
    """PCA to k per entity, fitted on training entities, applied to all of them."""
    out: Embeddings = {}
    for entity, matrix in states.items():
        pca = PCA(n_components=k, random_state=0).fit(matrix[fit_rows[entity]])
        out[entity] = pca.transform(matrix).astype(np.float32)
    return out


def layer_probe(
    pooled: dict[Entity, np.ndarray],
    pairs: Pairs,
    config: EvaluateConfig,
    k: int,
    progress: Progress | None = None,
    label: str = "",
) -> list[MethodScore]:
    """Score PCA-to-k of every layer's pooled state (index 0 = embeddings)."""
    rows = training_rows(pairs)
    layers = pooled["user"].shape[1]
    task = progress.add_task(f"layer probe: {label}", total=layers) if progress else None
    scores = []
    for layer in range(layers):
        states = {entity: matrix[:, layer] for entity, matrix in pooled.items()}
        scores.append(score_method(pca_embeddings(states, rows, k), pairs, config, config.seeds))
        if progress is not None and task is not None:
            progress.advance(task)
    return scores


def best_middle_layer(probe: list[MethodScore]) -> int:
    """The middle layer (not the embeddings, not the final) with the best validation AUC."""
    middle = range(1, len(probe) - 1)
    return max(middle, key=lambda layer: float(np.mean(probe[layer].valid_auc)))


@torch.no_grad()
def encoder_states(
    encoder: MarcEncoder, caches: dict[Entity, TextCache], batch_tokens: int
) -> tuple[dict[Entity, np.ndarray], Embeddings]:
    """Every layer's pooled state of an adapted backbone, and its published z."""
    encoder.eval()
    pooled: dict[Entity, np.ndarray] = {}
    embeddings: Embeddings = {}
    device = next(encoder.parameters()).device
    for entity, cache in caches.items():
        pooled[entity] = all_layer_states(encoder.backbone, cache, batch_tokens)
        h = torch.from_numpy(pooled[entity][:, encoder.layer]).to(device)
        embeddings[entity] = encoder.heads(h, entity).float().cpu().numpy()
    return pooled, embeddings
