"""Lift: how much a method's z improves an id-based CTR model, under two protocols.

The id baseline is :class:`LiftCTR` without dense features; each method adds
its standardised z. Seeds are paired (seed s of a method is compared with
seed s of the baseline: same initialisation of the shared parts, same batch
order), and RelaImpr is ``(AUC - 0.5) / (AUC_base - 0.5) - 1`` in percent.

Protocols differ in what the downstream model learns from:

- ``standard``: every training interaction, including those the encoder was
  trained on when ``model.train.downstream_holdout`` is 0;
- ``leak-free``: only each user's latest ``downstream_holdout`` of training
  interactions, which the training recipe keeps away from the encoder, so z
  cannot carry those labels. Validation and test are the same in both.
"""

from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress

from marc_batch.config import LiftConfig
from marc_batch.entities import Entity
from marc_batch.evaluate.ctr import standardise
from marc_batch.evaluate.features import SparseField
from marc_batch.evaluate.fit import Schedule, fit, fit_and_score
from marc_batch.evaluate.lift_model import LiftCTR
from marc_batch.evaluate.protocol import Embeddings, MethodScore
from marc_batch.train.pairs import Pairs, downstream_pairs

BASELINE = "id-baseline"
Fields = dict[Entity, list[SparseField]]


def protocol_pairs(pairs: Pairs, holdout: float) -> dict[str, Pairs]:
    """The downstream training data of each protocol (``leak-free`` only with a holdout)."""
    protocols = {"standard": pairs}
    if holdout > 0:
        protocols["leak-free"] = downstream_pairs(pairs, holdout)
    return protocols


def gate_pairs(pairs: Pairs, holdout: float) -> tuple[str, Pairs]:
    """The protocol and downstream data that decisions read: leak-free whenever it exists."""
    protocol = "leak-free" if holdout > 0 else "standard"
    return protocol, protocol_pairs(pairs, holdout)[protocol]


def seeded_model(
    fields: Fields, embeddings: Embeddings | None, config: LiftConfig, seed: int
) -> tuple[LiftCTR, Schedule]:
    """The CTR model, initialised from ``seed``, with ``embeddings`` standardised as its z."""
    torch.manual_seed(seed)
    dense = {e: standardise(z) for e, z in embeddings.items()} if embeddings else None
    schedule = Schedule(
        config.epochs, config.patience, config.batch_size, config.learning_rate,
        config.weight_decay,
    )  # fmt: skip
    return LiftCTR(fields, dense, config), schedule


def score_lift(
    fields: Fields,
    embeddings: Embeddings | None,
    pairs: Pairs,
    config: LiftConfig,
    seeds: list[int],
) -> MethodScore:
    """The CTR model with ``embeddings`` as dense features (None: the id baseline), per seed."""
    scores = []
    for seed in seeds:
        model, schedule = seeded_model(fields, embeddings, config, seed)
        scores.append(fit_and_score(model, pairs, schedule, seed))
    return MethodScore.of(scores)


def validation_lift_auc(
    fields: Fields,
    embeddings: Embeddings | None,
    pairs: Pairs,
    config: LiftConfig,
    seeds: list[int],
) -> list[float]:
    """Validation AUC per seed; the test split is not scored at all (for choices and gates)."""
    aucs = []
    for seed in seeds:
        model, schedule = seeded_model(fields, embeddings, config, seed)
        aucs.append(fit(model, pairs, schedule, seed))
    return aucs


def rela_impr(auc: float, base: float) -> float:
    """Relative AUC improvement over the baseline, in percent (KAR's RelaImpr)."""
    return 100.0 * ((auc - 0.5) / (base - 0.5) - 1.0)


@dataclass
class LiftTable:
    """One protocol's id baseline and every method, over the same seeds."""

    baseline: MethodScore
    methods: dict[str, MethodScore]


def lift_tables(
    methods: dict[str, Embeddings],
    fields: Fields,
    pairs: Pairs,
    config: LiftConfig,
    seeds: list[int],
    holdout: float,
    progress: Progress | None = None,
) -> dict[str, LiftTable]:
    """The baseline and each method's lift under every configured protocol."""
    protocols = {
        name: downstream
        for name, downstream in protocol_pairs(pairs, holdout).items()
        if name in config.protocols
    }
    total = len(protocols) * (len(methods) + 1)
    task = progress.add_task("lift", total=total) if progress else None
    tables = {}
    for name, downstream in protocols.items():
        scores: dict[str, MethodScore] = {}
        for method, embeddings in {BASELINE: None, **methods}.items():
            scores[method] = score_lift(fields, embeddings, downstream, config, seeds)
            if progress is not None and task is not None:
                progress.advance(task)
        baseline = scores.pop(BASELINE)
        tables[name] = LiftTable(baseline, scores)
    return tables


def paired_lift(method: MethodScore, baseline: MethodScore) -> dict[str, float]:
    """Mean and std over paired seeds of the AUC gain and of RelaImpr."""
    gain = np.subtract(method.test_auc, baseline.test_auc)
    relative = [rela_impr(a, b) for a, b in zip(method.test_auc, baseline.test_auc, strict=True)]
    return {
        "auc_gain_mean": float(np.mean(gain)),
        "auc_gain_std": float(np.std(gain)),
        "rela_impr_mean": float(np.mean(relative)),
        "rela_impr_std": float(np.std(relative)),
    }
