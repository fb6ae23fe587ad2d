"""Promotion on the number a ranking team feels: the lift of z in the id-based CTR model.

A new version replaces the current one only if, on the validation split,
the CTR model with the new z scores a higher AUC than with the current z by
more than ``evaluate.lift.promotion_margin`` seed standard deviations
(pooled over the two versions' seeds). Both versions are scored in the same
run, on the same rows and seeds; the downstream model learns from the
leak-free rows when the config holds training rows out of the encoder. The
test split is never scored. The matching net's own validation AUC is not
used: it ranks runs differently from the downstream model.
"""

import numpy as np
from pydantic import BaseModel

from marc_batch.evaluate.features import side_features
from marc_batch.evaluate.lift import protocol_pairs, validation_lift_auc
from marc_batch.evaluate.protocol import Embeddings, encoder_states
from marc_batch.model.registry import Registry
from marc_batch.train.bahe_cache import build_bahe_cache
from marc_batch.train.cache import build_cache
from marc_batch.train.recipe import Prepared, bahe_users_of


class LiftGate(BaseModel):
    """Validation AUCs per seed of the id baseline and of each version's z, and the verdict."""

    protocol: str
    baseline_valid_auc: list[float]
    candidate_valid_auc: list[float]
    current_valid_auc: list[float]
    margin: float
    promoted: bool

    @property
    def baseline(self) -> float:
        return float(np.mean(self.baseline_valid_auc))

    @property
    def candidate_lift(self) -> float:
        """Mean validation AUC gain of the new version's z over the id baseline."""
        return float(np.mean(self.candidate_valid_auc)) - self.baseline

    @property
    def current_lift(self) -> float:
        return float(np.mean(self.current_valid_auc)) - self.baseline


def version_embeddings(prepared: Prepared, registry: Registry, version: str) -> Embeddings:
    """A registered version's z of every text; its own frozen pass if its backbone differs.

    A version trained with the other user encoder than ``prepared`` (a BAHE candidate
    against a text model, say) gets its own pass too, through the path it was trained on.
    """
    encoder, artifact = registry.load(version)
    encoder.to(prepared.device)
    caches = prepared.caches
    if (
        artifact.base_sha256 != prepared.base_sha256
        or artifact.first_adapted != caches["user"].start
        or artifact.model.user_encoder != prepared.config.model.user_encoder
    ):
        train = artifact.model.train
        lengths = {"user": train.user_max_length, "item": train.item_max_length}
        texts = {"user": prepared.pairs.user_texts, "item": prepared.pairs.item_texts}
        bahe = artifact.model.user_encoder == "bahe"
        caches = {
            entity: build_cache(
                encoder.backbone,
                texts[entity],
                lengths[entity],
                artifact.first_adapted,
                train.encode_batch_tokens,
            )
            for entity in (("item",) if bahe else ("user", "item"))
        }
        if bahe:
            caches["user"], _ = build_bahe_cache(
                encoder.backbone,
                bahe_users_of(prepared.catalogue),
                artifact.model.bahe,
                lengths["user"],
                artifact.first_adapted,
                train.encode_batch_tokens,
            )
    return encoder_states(encoder, caches, artifact.model.train.encode_batch_tokens)[1]


def lift_gate(prepared: Prepared, registry: Registry, candidate: str, current: str) -> LiftGate:
    """Score both versions' lift on validation and decide whether ``candidate`` is promoted."""
    config = prepared.config
    lift, seeds = config.evaluate.lift, config.evaluate.seeds
    holdout = config.model.train.downstream_holdout
    protocol = "leak-free" if holdout > 0 else "standard"
    pairs = protocol_pairs(prepared.pairs, holdout)[protocol]
    fields = side_features(prepared.catalogue, lift)
    baseline = validation_lift_auc(fields, None, pairs, lift, seeds)
    scores = {
        version: validation_lift_auc(
            fields, version_embeddings(prepared, registry, version), pairs, lift, seeds
        )
        for version in (candidate, current)
    }
    mine, theirs = scores[candidate], scores[current]
    spread = float(np.sqrt((np.var(mine) + np.var(theirs)) / 2))
    margin = lift.promotion_margin * spread
    return LiftGate(
        protocol=protocol,
        baseline_valid_auc=baseline,
        candidate_valid_auc=mine,
        current_valid_auc=theirs,
        margin=margin,
        promoted=bool(np.mean(mine) - np.mean(theirs) > margin),
    )
