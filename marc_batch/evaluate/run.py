"""``evaluate``: the whole protocol against a registered MARC version.

The baselines that need training (``proj-final``, ``marc-no-info``) are
trained here with the registered model's own config through the same
recipe, so they differ from MARC only where docs/marc.md says. The tuned
backbones adapt only the transformer layers from ``first_adapted`` up, so the
hidden states up to index ``first_adapted`` (the input of the first adapted
layer) are the frozen backbone's, so the probe reuses the frozen scores
there instead of recomputing identical numbers.

``lift_only`` reuses what is registered instead: it trains nothing, skips the
frozen-z table and the probe, picks ``pca-best-mid``'s layer on the lift
model's validation AUC (or takes ``mid_layer``, a layer chosen on validation
by an earlier run on the same backbone and data), and scores the lift of
``pca-final``, ``pca-best-mid`` and the registered model's z.
"""

import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from marc_batch.config import Config
from marc_batch.entities import Entity
from marc_batch.errors import ArtifactError, ConfigError
from marc_batch.evaluate.features import side_features
from marc_batch.evaluate.lift import Fields, lift_tables, protocol_pairs, validation_lift_auc
from marc_batch.evaluate.lift_report import LiftProtocol, MethodSummary
from marc_batch.evaluate.protocol import (
    Embeddings,
    MethodScore,
    best_middle_layer,
    encoder_states,
    layer_probe,
    pca_embeddings,
    score_method,
    training_rows,
)
from marc_batch.evaluate.report import EvaluationReport, LayerScore, TrainingSummary
from marc_batch.model.artifact import check_user_encoder
from marc_batch.model.registry import Registry
from marc_batch.train.cache import TextCache
from marc_batch.train.pairs import Pairs
from marc_batch.train.recipe import Prepared, prepare, train_variant, variant_config


def _layers(scores: list[MethodScore], adapted_from: int | None) -> list[LayerScore]:
    return [
        LayerScore(
            layer=layer,
            auc_mean=float(np.mean(score.test_auc)),
            auc_std=float(np.std(score.test_auc)),
            valid_auc_mean=float(np.mean(score.valid_auc)),
            adapted=adapted_from is not None and layer >= adapted_from,
        )
        for layer, score in enumerate(scores)
    ]


def _frozen(prepared: Prepared) -> dict[Entity, TextCache]:
    """The text path's caches: baselines and the frozen probe read texts whatever the users."""
    assert prepared.frozen is not None, "prepare(..., text_baselines=True) builds them"
    return prepared.frozen


def _pca_of_layer(prepared: Prepared, layer: int, k: int) -> Embeddings:
    states = {entity: cache.pooled[:, layer] for entity, cache in _frozen(prepared).items()}
    return pca_embeddings(states, training_rows(prepared.pairs), k)


def best_lift_layer(
    prepared: Prepared, fields: Fields, pairs: Pairs, config: Config, k: int
) -> int:
    """The middle layer whose PCA-to-k lifts the id model most on validation."""
    lift, seeds = config.evaluate.lift, config.evaluate.seeds
    layers = prepared.caches["user"].pooled.shape[1]
    aucs = {}
    for layer in range(1, layers - 1):
        embeddings = _pca_of_layer(prepared, layer, k)
        aucs[layer] = float(np.mean(validation_lift_auc(fields, embeddings, pairs, lift, seeds)))
    return max(aucs, key=aucs.__getitem__)


def evaluate(
    config: Config,
    version: str,
    command: str,
    progress: Progress,
    lift_only: bool = False,
    mid_layer: int | None = None,
) -> EvaluationReport:
    started = time.perf_counter()
    registry = Registry(Path(config.model.registry))
    version = registry.current() if version == "current" else version
    encoder, artifact = registry.load(version)
    check_user_encoder(config.model, artifact, version)
    prepared = prepare(config, progress, text_baselines=True)
    start = prepared.caches["user"].start
    # The cache holds the state entering layer ``start``; the first adapted state is the next.
    first_adapted_state = start + 1
    if artifact.base_sha256 != prepared.base_sha256 or artifact.first_adapted != start:
        raise ArtifactError(
            f"model {version} was trained from another backbone or adapted other layers "
            f"than this config's; evaluate it with the config it was trained with"
        )
    encoder.to(prepared.device)
    model_config, pairs, caches = artifact.model, prepared.pairs, prepared.caches
    settings, k = config.evaluate, model_config.k
    batch_tokens = model_config.train.encode_batch_tokens
    fields = side_features(prepared.catalogue, settings.lift)
    training = {
        "marc": TrainingSummary(
            valid_auc=artifact.metrics["valid_auc"],
            best_epoch=int(artifact.metrics["best_epoch"]),
            seconds=artifact.metrics["train_seconds"],
        )
    }
    methods: dict[str, MethodScore] = {}
    probe: dict[str, list[LayerScore]] = {}
    tuned = {"marc": encoder}
    final = prepared.caches["user"].pooled.shape[1] - 1
    if mid_layer is not None and not 1 <= mid_layer < final:
        raise ConfigError(f"--mid-layer must name a middle layer, 1 .. {final - 1}")
    if lift_only and mid_layer is not None:
        best_mid, chosen_by = mid_layer, "validation AUC by an earlier run (given)"
    elif lift_only:
        best_mid = best_lift_layer(prepared, fields, pairs, config, k)
        chosen_by = "the lift model's validation AUC (standard protocol)"
    else:
        frozen = layer_probe(
            {entity: cache.pooled for entity, cache in _frozen(prepared).items()},
            pairs, settings, k, progress, "frozen backbone",
        )  # fmt: skip
        best_mid = best_middle_layer(frozen)
        chosen_by = "the frozen-z probe's validation AUC"
        methods = {"pca-final": frozen[-1], "pca-best-mid": frozen[best_mid]}
        probe["frozen"] = _layers(frozen, None)
        for name in ("proj-final", "marc-no-info"):
            variant, _, result = train_variant(prepared, variant_config(model_config, name))
            tuned[name] = variant
            training[name] = TrainingSummary(
                valid_auc=result.best_valid_auc,
                best_epoch=result.best_epoch,
                seconds=result.seconds,
            )
    embeddings = {
        "pca-final": _pca_of_layer(prepared, final, k),
        "pca-best-mid": _pca_of_layer(prepared, best_mid, k),
    }
    for name, tuned_encoder in tuned.items():
        pooled, embeddings[name] = encoder_states(tuned_encoder, caches, batch_tokens)
        if lift_only:
            continue
        methods[name] = score_method(embeddings[name], pairs, settings, settings.seeds)
        if name in ("proj-final", "marc"):
            top = {entity: states[:, first_adapted_state:] for entity, states in pooled.items()}
            scores = [frozen[layer] for layer in range(first_adapted_state)] + layer_probe(
                top, pairs, settings, k, progress, name
            )
            probe[name] = _layers(scores, first_adapted_state)
    holdout = config.model.train.downstream_holdout
    tables = lift_tables(
        embeddings, fields, pairs, settings.lift, settings.seeds, holdout, progress
    )
    rows = {name: len(p.splits["train"]) for name, p in protocol_pairs(pairs, holdout).items()}
    return EvaluationReport(
        command=command,
        dataset=config.sources.dataset or "configured sources",
        backbone=model_config.backbone,
        k=k,
        model_version=version,
        seeds=settings.seeds,
        adapted_from_layer=first_adapted_state,
        best_mid_layer=best_mid,
        best_mid_layer_chosen_by=chosen_by,
        downstream_holdout=holdout,
        methods={name: MethodSummary.of(score) for name, score in methods.items()},
        lift={name: LiftProtocol.of(table, rows[name]) for name, table in tables.items()},
        probe=probe,
        training=training,
        seconds=time.perf_counter() - started,
    )
