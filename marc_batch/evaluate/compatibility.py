"""Can a ranking team's CTR model, trained on the previous snapshot, read the new one?

A new model version puts every vector in a new space. The ranking team's
model here is the lift evaluation's: the id-based DCN-V2 with z as dense
features (:mod:`marc_batch.evaluate.lift`). It is trained on the *previous*
vectors, exactly as the lift evaluation trains it, and then scored, without
retraining, with three inputs in place of its z:

- ``previous``: the vectors it was trained on (its own score);
- ``mapped``: the new vectors mapped into the previous space by the
  snapshot's alignment map;
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
from marc_batch.data.ingest import Catalogue
from marc_batch.evaluate.ctr import standardise
from marc_batch.evaluate.features import side_features
from marc_batch.evaluate.fit import Score, fit, scored
from marc_batch.evaluate.lift import Fields, gate_pairs, score_lift, seeded_model
from marc_batch.evaluate.protocol import Embeddings, MethodScore
from marc_batch.store.alignment import AlignmentMap
from marc_batch.train.pairs import Pairs, build_pairs

INPUTS = ("previous", "mapped", "unmapped")


class Compatibility(BaseModel):
    """Per-seed AUCs of the id baseline and of the previous model on each input; the verdict."""

    protocol: str = Field(description="Which downstream training data the CTR model learnt from.")
    seeds: list[int]
    baseline: MethodScore
    scores: dict[str, MethodScore] = Field(description="previous, mapped and unmapped inputs.")
    min_kept_lift: float
    compatible: bool = Field(description="mapped keeps at least min_kept_lift on validation.")

    def kept_lift(self, name: str, split: str = "valid") -> float:
        """Fraction of the model's mean lift over the id baseline that input ``name`` keeps."""
        key = f"{split}_auc"
        base = float(np.mean(getattr(self.baseline, key)))
        own = float(np.mean(getattr(self.scores["previous"], key))) - base
        kept = float(np.mean(getattr(self.scores[name], key))) - base
        return kept / own if own > 0 else float("nan")

    def summary(self) -> dict[str, float | bool | str]:
        """The figures a manifest, a flow artifact and a CLI line show."""
        figures: dict[str, float | bool | str] = {"protocol": self.protocol}
        for split in ("valid", "test"):
            figures[f"{split}_auc_id_baseline"] = float(
                np.mean(getattr(self.baseline, f"{split}_auc"))
            )
            for name in INPUTS:
                figures[f"{split}_auc_{name}"] = float(
                    np.mean(getattr(self.scores[name], f"{split}_auc"))
                )
            for name in ("mapped", "unmapped"):
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
    per_input: dict[str, list[Score]] = {name: [] for name in INPUTS}
    for seed in seeds:
        model, schedule = seeded_model(fields, previous, config, seed)
        fit(model, pairs, schedule, seed)
        for name in INPUTS:
            model.dense = {
                entity: standardise(z, like=previous[entity]) for entity, z in inputs[name].items()
            }
            per_input[name].append(scored(model, pairs))
    scores = {name: MethodScore.of(runs) for name, runs in per_input.items()}
    verdict = Compatibility(
        protocol=protocol,
        seeds=seeds,
        baseline=baseline,
        scores=scores,
        min_kept_lift=min_kept_lift,
        compatible=False,
    )
    kept = verdict.kept_lift("mapped")
    return verdict.model_copy(update={"compatible": bool(kept >= min_kept_lift)})


def measure(
    catalogue: Catalogue,
    config: Config,
    previous: Embeddings,
    new: Embeddings,
    alignment: AlignmentMap,
) -> Compatibility:
    """The compatibility of ``new`` with ``previous`` on ``catalogue``'s interactions.

    Rows of the embeddings follow the catalogue's text tables. The CTR model
    learns from the data promotion decisions read (leak-free when the recipe
    holds rows out of the encoder), with the lift evaluation's settings.
    """
    protocol, pairs = gate_pairs(build_pairs(catalogue), config.model.train.downstream_holdout)
    inputs = {
        "previous": previous,
        "mapped": {entity: alignment.apply(z) for entity, z in new.items()},
        "unmapped": new,
    }
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
