"""Train MARC, save it as a verified artifact and register it.

Both ``marc-batch train`` and the ``train-model`` flow go through here, so a
model reaches the registry the same way whichever started it; the flow then
decides on promotion (:mod:`marc_batch.evaluate.promotion`).
"""

from pathlib import Path

import torch
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.evaluate.promotion import version_embeddings
from marc_batch.model.registry import Registry
from marc_batch.train.recipe import prepare, train_variant
from marc_batch.train.trainer import progress_bar

SELECTION_METRIC = "valid_auc"


class TrainSummary(BaseModel):
    version: str
    path: str
    valid_auc: float
    best_epoch: int
    epochs_run: int
    train_seconds: float
    history: list[dict[str, float]]


def train_and_register(
    config: Config,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    make_current: bool = True,
) -> TrainSummary:
    """Train under ``config.model`` and register the result (as ``current`` if asked)."""
    registry = Registry(Path(config.model.registry))
    with progress_bar() as progress:
        prepared = prepare(config, progress)
    anchors = None
    if config.model.train.compatible_with is not None:
        earlier = version_embeddings(prepared, registry, config.model.train.compatible_with)
        anchors = {entity: torch.from_numpy(z) for entity, z in earlier.items()}
    encoder, _, result = train_variant(prepared, config.model, checkpoint_dir, resume, anchors)
    version = registry.add(
        encoder,
        config.model.backbone,
        prepared.base_sha256,
        metrics={
            SELECTION_METRIC: round(result.best_valid_auc, 6),
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 1),
        },
        make_current=make_current,
    )
    return TrainSummary(
        version=version,
        path=str(registry.path(version)),
        valid_auc=result.best_valid_auc,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        train_seconds=round(result.seconds, 1),
        history=result.history,
    )
