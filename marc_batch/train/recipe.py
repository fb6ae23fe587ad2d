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
from marc_batch.model.bahe import UserBehaviours, users_from_table
from marc_batch.model.marc import MarcEncoder, MarcObjective
from marc_batch.train.bahe_cache import build_bahe_cache
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
    """What every run on one dataset and backbone shares.

    ``caches`` are what the encoder trains on and is scored from: with BAHE
    users, the user cache holds BAHE sequences. ``frozen`` are the text path's
    caches, which the PCA baselines and the layer probe read (the same objects
    for text users; built for BAHE users only when asked, see :func:`prepare`).
    """

    config: Config
    catalogue: Catalogue
    pairs: Pairs
    backbone: Backbone
    base_path: Path
    base_sha256: str
    caches: dict[Entity, TextCache]
    device: torch.device
    frozen: dict[Entity, TextCache] | None = None


def bahe_users_of(catalogue: Catalogue) -> list[UserBehaviours]:
    """Every user as BAHE reads them, in the order of the user texts (their pair rows)."""
    if "behaviours" not in catalogue.user_texts.column_names:
        raise ConfigError(
            "model.user_encoder: this catalogue was read for text users; BAHE needs it read "
            "with model.user_encoder = 'bahe'"
        )
    return users_from_table(catalogue.user_texts)


def prepare(
    config: Config, progress: Progress | None = None, text_baselines: bool = False
) -> Prepared:
    """Ingest, load the frozen backbone and run the cached frozen pass over every text.

    With BAHE users the user pass is the behaviour path (:mod:`marc_batch.train.bahe_cache`);
    ``text_baselines`` also runs the text path over user texts, for what evaluation
    compares on text (PCA baselines, the frozen layer probe).
    """
    train = config.model.train
    if train.threads:
        torch.set_num_threads(train.threads)
    device = resolve_device(train.device, "model.train.device")
    catalogue, _ = ingest(config)
    pairs = build_pairs(catalogue)
    base_path = resolve_path(config.model.backbone)
    backbone = Backbone.load(base_path, config.model.pooling).to(device)
    start = backbone.num_layers - min(config.model.lora.layers, backbone.num_layers)
    bahe = config.model.user_encoder == "bahe"
    owned = progress is None
    progress = progress or progress_bar()
    with progress if owned else nullcontext():

        def text_cache(entity: Entity) -> TextCache:
            texts = pairs.user_texts if entity == "user" else pairs.item_texts
            length = train.user_max_length if entity == "user" else train.item_max_length
            label = "users" if entity == "user" else "items"
            return build_cache(
                backbone, texts, length, start, train.encode_batch_tokens, progress, label
            )

        caches = {"item": text_cache("item")}
        frozen = None
        if bahe:
            caches["user"], _ = build_bahe_cache(
                backbone,
                bahe_users_of(catalogue),
                config.model.bahe,
                train.user_max_length,
                start,
                train.encode_batch_tokens,
                progress,
            )
            if text_baselines:
                frozen = {"user": text_cache("user"), "item": caches["item"]}
        else:
            caches["user"] = text_cache("user")
            frozen = caches
    return Prepared(
        config,
        catalogue,
        pairs,
        backbone,
        base_path,
        weights_sha256(base_path),
        caches,
        device,
        frozen,
    )


def train_variant(
    prepared: Prepared,
    model_config: ModelConfig,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    anchors: dict[Entity, torch.Tensor] | None = None,
) -> tuple[MarcEncoder, MarcObjective, TrainResult]:
    """Adapt a fresh copy of the frozen backbone under ``model_config``.

    ``anchors``: each text row's z under ``train.compatible_with``, which the
    new z is pulled towards (see :class:`marc_batch.train.trainer.Trainer`).
    """
    torch.manual_seed(model_config.train.seed)
    backbone = copy.deepcopy(prepared.backbone)
    backbone.add_lora(model_config.lora)
    encoder = MarcEncoder(backbone, model_config).to(prepared.device)
    objective = MarcObjective(backbone.hidden_size, model_config).to(prepared.device)
    pairs = encoder_pairs(prepared.pairs, model_config.train.downstream_holdout)
    trainer = Trainer(
        model_config, encoder, objective, prepared.caches, pairs, checkpoint_dir, anchors
    )
    result = trainer.fit(resume=resume)
    return encoder, objective, result
