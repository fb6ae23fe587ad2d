"""The end-to-end recipe: data and frozen cache once, then any number of trained variants.

``prepare`` does everything the runs share (ingestion, the pair arrays, the
base backbone, the frozen pass); ``train_variant`` adapts a fresh copy of
the backbone under one ``ModelConfig``. The evaluation protocol trains
``proj-final`` and ``marc-no-info`` with the same recipe through
``VARIANTS``, so the baselines differ from MARC only where docs/marc.md says.
Every variant trains on ``encoder_pairs``: each user's latest
``downstream_holdout`` of training rows is left to the downstream model.
"""

import copy
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import Progress

from marc_batch.config import Config, ModelConfig
from marc_batch.data.ingest import Catalogue, ingest
from marc_batch.device import resolve_device
from marc_batch.entities import Entity
from marc_batch.errors import ConfigError
from marc_batch.model.backbone import Backbone, resolve_path, weights_sha256
from marc_batch.model.marc import MarcEncoder, MarcObjective
from marc_batch.train.cache import TextCache, build_cache
from marc_batch.train.pairs import Pairs, build_pairs, encoder_pairs
from marc_batch.train.trainer import Trainer, TrainResult, progress_bar

VARIANTS: dict[str, dict[str, object]] = {
    "marc": {},
    "marc-no-info": {"lambda_info": 0.0},
    "proj-final": {"head": "linear", "matching": "dot", "lambda_info": 0.0, "lambda_dec": 0.0},
}


def variant_config(config: ModelConfig, name: str) -> ModelConfig:
    return config.model_copy(update=VARIANTS[name])


@dataclass
class Prepared:
    """What every run on one dataset and backbone shares."""

    config: Config
    catalogue: Catalogue
    pairs: Pairs
    backbone: Backbone
    base_path: Path
    base_sha256: str
    caches: dict[Entity, TextCache]
    device: torch.device


def prepare(config: Config, progress: Progress | None = None) -> Prepared:
    """Ingest, load the frozen backbone and run the cached frozen pass over every text."""
    if config.model.user_encoder == "bahe":
        # A model trained one way and run the other would publish meaningless user vectors.
        raise ConfigError(
            "model.user_encoder: 'bahe' is not yet run by training or refresh "
            "(marc_batch/model/bahe.py is the encoder alone); use 'text'"
        )
    train = config.model.train
    if train.threads:
        torch.set_num_threads(train.threads)
    device = resolve_device(train.device, "model.train.device")
    catalogue, _ = ingest(config)
    pairs = build_pairs(catalogue)
    base_path = resolve_path(config.model.backbone)
    backbone = Backbone.load(base_path, config.model.pooling).to(device)
    start = backbone.num_layers - min(config.model.lora.layers, backbone.num_layers)
    owned = progress is None
    progress = progress or progress_bar()
    with progress if owned else nullcontext():
        caches = {
            "user": build_cache(
                backbone,
                pairs.user_texts,
                train.user_max_length,
                start,
                train.encode_batch_tokens,
                progress,
                "users",
            ),
            "item": build_cache(
                backbone,
                pairs.item_texts,
                train.item_max_length,
                start,
                train.encode_batch_tokens,
                progress,
                "items",
            ),
        }
    return Prepared(
        config, catalogue, pairs, backbone, base_path, weights_sha256(base_path), caches, device
    )


def train_variant(
    prepared: Prepared,
    model_config: ModelConfig,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> tuple[MarcEncoder, MarcObjective, TrainResult]:
    """Adapt a fresh copy of the frozen backbone under ``model_config``."""
    torch.manual_seed(model_config.train.seed)
    backbone = copy.deepcopy(prepared.backbone)
    backbone.add_lora(model_config.lora)
    encoder = MarcEncoder(backbone, model_config).to(prepared.device)
    objective = MarcObjective(backbone.hidden_size, model_config).to(prepared.device)
    pairs = encoder_pairs(prepared.pairs, model_config.train.downstream_holdout)
    trainer = Trainer(model_config, encoder, objective, prepared.caches, pairs, checkpoint_dir)
    result = trainer.fit(resume=resume)
    return encoder, objective, result
