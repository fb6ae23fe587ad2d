"""``evaluate``: the whole protocol against a registered MARC version.

The baselines that need training (``proj-final``, ``marc-no-info``) are
trained here with the registered model's own config through the same
recipe, so they differ from MARC only where docs/marc.md says. The tuned
backbones adapt only the transformer layers from ``first_adapted`` up, so the
hidden states up to index ``first_adapted`` (the input of the first adapted
layer) are the frozen backbone's, so the probe reuses the frozen scores
there instead of recomputing identical numbers.
"""

import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from marc_batch.config import Config
from marc_batch.errors import ArtifactError
from marc_batch.evaluate.protocol import (
    MethodScore,
    best_middle_layer,
    encoder_states,
    layer_probe,
    score_method,
)
from marc_batch.evaluate.report import EvaluationReport, LayerScore, MethodSummary, TrainingSummary
from marc_batch.model.registry import Registry
from marc_batch.train.recipe import prepare, train_variant, variant_config


def _summary(score: MethodScore) -> MethodSummary:
    return MethodSummary(
        **score.summary(), test_auc=score.test_auc, test_logloss=score.test_logloss
    )


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


def evaluate(config: Config, version: str, command: str, progress: Progress) -> EvaluationReport:
    started = time.perf_counter()
    registry = Registry(Path(config.model.registry))
    version = registry.current() if version == "current" else version
    encoder, artifact = registry.load(version)
    prepared = prepare(config, progress)
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

    frozen = layer_probe(
        {entity: cache.pooled for entity, cache in caches.items()},
        pairs, settings, k, progress, "frozen backbone",
    )  # fmt: skip
    best_mid = best_middle_layer(frozen)
    methods = {"pca-final": frozen[-1], "pca-best-mid": frozen[best_mid]}
    probe = {"frozen": _layers(frozen, None)}
    training = {
        "marc": TrainingSummary(
            valid_auc=artifact.metrics["valid_auc"],
            best_epoch=int(artifact.metrics["best_epoch"]),
            seconds=artifact.metrics["train_seconds"],
        )
    }
    tuned = {}
    for name in ("proj-final", "marc-no-info"):
        variant, _, result = train_variant(prepared, variant_config(model_config, name))
        tuned[name] = variant
        training[name] = TrainingSummary(
            valid_auc=result.best_valid_auc, best_epoch=result.best_epoch, seconds=result.seconds
        )
    tuned["marc"] = encoder
    for name, tuned_encoder in tuned.items():
        pooled, embeddings = encoder_states(tuned_encoder, caches, batch_tokens)
        methods[name] = score_method(embeddings, pairs, settings, settings.seeds)
        if name in ("proj-final", "marc"):
            top = {entity: states[:, first_adapted_state:] for entity, states in pooled.items()}
            scores = frozen[:first_adapted_state] + layer_probe(
                top, pairs, settings, k, progress, name
            )
            probe[name] = _layers(scores, first_adapted_state)
    return EvaluationReport(
        command=command,
        dataset=config.sources.dataset or "configured sources",
        backbone=model_config.backbone,
        k=k,
        model_version=version,
        seeds=settings.seeds,
        adapted_from_layer=first_adapted_state,
        best_mid_layer=best_mid,
        methods={name: _summary(score) for name, score in methods.items()},
        probe=probe,
        training=training,
        seconds=time.perf_counter() - started,
    )
