"""Can a ranking team's CTR model, trained on the previous snapshot, read the new one?

A new model version puts every vector in a new space. The ranking team's
model here is the lift evaluation's: the id-based DCN-V2 with z as dense
features (:mod:`marc_batch.evaluate.lift`). It is trained on the *previous*
vectors, exactly as the lift evaluation trains it, and then scored, without
retraining, with each of these in place of its z:

- ``previous``: the vectors it was trained on (its own score);
- ``mapped``: the new vectors mapped into the previous space by the
  snapshot's alignment map (the orthogonal one readers get by default);
- ``mapped-ridge``: the same through the ridge map published beside it,
  for information: it can rescale and shear, at the cost of geometry;
- ``unmapped``: the new vectors as they are, which is what a team that
  does not know the model changed would feed it.

The model keeps the input standardisation it was trained with. The figure
that matters is the fraction of the model's lift over the id baseline that
each input keeps; the gate reads it on validation (choices never look at
test), and the test figures are reported beside it. Seeds are paired with
the id baseline's, as in the lift table.
"""

import numpy as np
from pydantic import BaseModel, Field

from marc_batch.config import Config, LiftConfig
from marc_batch.data.ingest import Catalogue, ingest
from marc_batch.evaluate.ctr import standardise
from marc_batch.evaluate.features import side_features
from marc_batch.evaluate.fit import Score, fit, scored
from marc_batch.evaluate.lift import Fields, gate_pairs, score_lift, seeded_model
from marc_batch.evaluate.protocol import Embeddings, MethodScore
from marc_batch.store import Store
from marc_batch.store.alignment import AlignmentMap
from marc_batch.store.attachments import load_alignment
from marc_batch.store.commit import Assessor
from marc_batch.store.manifest import CompatibilityRecord, Manifest
from marc_batch.store.snapshot import Snapshot
from marc_batch.train.pairs import Pairs, build_pairs

INPUTS = ("previous", "mapped", "mapped-ridge", "unmapped")
KEPT = INPUTS[1:]


class Compatibility(BaseModel):
    """Per-seed AUCs of the id baseline and of the previous model on each input; the verdict."""

    protocol: str = Field(description="Which downstream training data the CTR model learnt from.")
    seeds: list[int]
    baseline: MethodScore
    scores: dict[str, MethodScore] = Field(
        description="previous, mapped (each published map) and (when the width did not "
        "change) unmapped inputs."
    )
    min_kept_lift: float

    def auc(self, name: str, split: str = "valid") -> float:
        """Mean AUC over seeds of an input (or of ``id-baseline``)."""
        score = self.baseline if name == "id-baseline" else self.scores[name]
        return float(np.mean(getattr(score, f"{split}_auc")))

    def kept_lift(self, name: str, split: str = "valid") -> float | None:
        """Fraction of the model's lift over the id baseline that input ``name`` keeps.

        None when the model has no lift to keep (z did not help it) or the
        input was not scored.
        """
        if name not in self.scores:
            return None
        own = self.auc("previous", split) - self.auc("id-baseline", split)
        kept = self.auc(name, split) - self.auc("id-baseline", split)
        return kept / own if own > 0 else None

    @property
    def compatible(self) -> bool:
        """On validation, the mapped vectors lose at most ``1 - min_kept_lift`` of the lift.

        With no lift to lose, they may lose nothing: AUC at least the previous one.
        """
        own = max(self.auc("previous") - self.auc("id-baseline"), 0.0)
        allowed = (1.0 - self.min_kept_lift) * own
        return self.auc("mapped") >= self.auc("previous") - allowed - 1e-9

    def summary(self) -> dict[str, float | bool | str | None]:
        """The figures a manifest, a flow artifact and a CLI line show."""
        figures: dict[str, float | bool | str | None] = {"protocol": self.protocol}
        for split in ("valid", "test"):
            for name in ("id-baseline", *INPUTS):
                scored_at_all = name == "id-baseline" or name in self.scores
                figures[f"{split}_auc_{name}"] = self.auc(name, split) if scored_at_all else None
            for name in KEPT:
                figures[f"{split}_kept_lift_{name}"] = self.kept_lift(name, split)
        figures["min_kept_lift"] = self.min_kept_lift
        figures["compatible"] = self.compatible
        return figures


def score_compatibility(
    fields: Fields,
    pairs: Pairs,
    inputs: dict[str, Embeddings],
    config: LiftConfig,
    seeds: list[int],
    min_kept_lift: float,
    protocol: str,
) -> Compatibility:
    """Train the CTR model on ``inputs['previous']`` per seed; score it on every input."""
    previous = inputs["previous"]
    baseline = score_lift(fields, None, pairs, config, seeds)
    per_input: dict[str, list[Score]] = {name: [] for name in INPUTS if name in inputs}
    for seed in seeds:
        model, schedule = seeded_model(fields, previous, config, seed)
        fit(model, pairs, schedule, seed)
        for name in per_input:
            model.dense = {
                entity: standardise(z, like=previous[entity]) for entity, z in inputs[name].items()
            }
            per_input[name].append(scored(model, pairs))
    scores = {name: MethodScore.of(runs) for name, runs in per_input.items()}
    return Compatibility(
        protocol=protocol,
        seeds=seeds,
        baseline=baseline,
        scores=scores,
        min_kept_lift=min_kept_lift,
    )


def measure(
    catalogue: Catalogue,
    config: Config,
    previous: Embeddings,
    new: Embeddings,
    maps: dict[str, AlignmentMap],
) -> Compatibility:
    """The compatibility of ``new`` with ``previous`` on ``catalogue``'s interactions.

    Rows of the embeddings follow the catalogue's text tables; ``maps`` are
    the published maps by input name (``mapped``, ``mapped-ridge``). The CTR model
    learns from the data promotion decisions read (leak-free when the recipe
    holds rows out of the encoder), with the lift evaluation's settings.
    """
    protocol, pairs = gate_pairs(build_pairs(catalogue), config.model.train.downstream_holdout)
    inputs = {"previous": previous}
    for name, alignment in maps.items():
        inputs[name] = {entity: alignment.apply(z) for entity, z in new.items()}
    if all(z.shape[1] == previous[entity].shape[1] for entity, z in new.items()):
        inputs["unmapped"] = new  # a new width cannot even be fed to the old model
    settings = config.evaluate
    return score_compatibility(
        side_features(catalogue, settings.lift),
        pairs,
        inputs,
        settings.lift,
        settings.seeds,
        settings.compatibility.min_kept_lift,
        protocol,
    )


def _vectors(snapshot: Snapshot, catalogue: Catalogue) -> Embeddings:
    """Each entity's vectors in the catalogue's text-row order.

    An id the snapshot lacks (new since it was written) gets the mean
    vector, which the CTR model's standardisation turns into "no signal".
    """
    texts = {"user": catalogue.user_texts, "item": catalogue.item_texts}
    out: Embeddings = {}
    for entity, table in texts.items():
        found, vectors = snapshot.lookup(entity, table["id"].to_pylist())
        vectors = vectors.astype(np.float32)
        vectors[~found] = vectors[found].mean(axis=0) if found.any() else 0.0
        out[entity] = vectors
    return out


def assessor(config: Config, store: Store) -> Assessor:
    """What a refresh commits with: on a model change, the check on the configured catalogue.

    The catalogue is read again, whole, in memory: the CTR model learns
    from every interaction, as the lift evaluation's does. Without an
    alignment map (no id in common) there is nothing to measure.
    """

    def assess(candidate: Manifest, parent: Manifest) -> CompatibilityRecord | None:
        if candidate.alignment is None:
            return None
        catalogue, _ = ingest(config)
        ridge = load_alignment(store, candidate, "ridge")
        result = measure(
            catalogue,
            config,
            _vectors(Snapshot(store, parent), catalogue),
            _vectors(Snapshot(store, candidate), catalogue),
            {"mapped": load_alignment(store, candidate), "mapped-ridge": ridge},
        )
        return CompatibilityRecord(
            previous_version=parent.version,
            previous_model=parent.model.version,
            figures=result.summary(),
        )

    return assess
