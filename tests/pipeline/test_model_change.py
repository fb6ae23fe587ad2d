"""Refreshes record drift statistics; a refresh with another model publishes a map back."""

import shutil
from pathlib import Path

import numpy as np

from fixtures.encoders import register_untrained
from marc_batch.model.registry import Registry
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, open_snapshot
from marc_batch.store.attachments import load_alignment
from marc_batch.store.spaces import same_space
from tests.tiny import ITEMS, USERS, config_for


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_same_model_refreshes_agree_and_a_new_model_is_mapped_back(
    tmp_path: Path, registry: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(registry, models)
    config = config_for(tmp_path, models)
    first = refresh(config)
    second = refresh(config)
    # The same model on the same texts: every vector must come back identical.
    drift = second.statistics["parent"]
    assert drift["same_model"] and drift["from_version"] == first.version
    for entity, rows in (("item", ITEMS), ("user", USERS)):
        assert drift["cosine"][entity]["unchanged_text"] == rows
        assert drift["cosine"][entity]["below_0_9999"] == 0
        assert drift["cosine"][entity]["cosine_min"] > 0.9999
    assert drift["neighbours"]["overlap_min"] == 1.0

    current = Registry(models).current()
    other = register_untrained(
        models, Registry(models).config(current).model, {"valid_auc": 0.5}, seed=1
    )
    third = refresh(config, model_version=other)
    store = Store(config.store)
    manifest = store.manifest(third.version)
    assert manifest.alignment is not None and manifest.alignment.to_version == second.version
    mapped = load_alignment(store, manifest)
    assert mapped.fitted_on == ITEMS + USERS and (mapped.from_model, mapped.to_model) == (
        other,
        current,
    )
    assert not third.statistics["parent"]["same_model"]

    old = open_snapshot(store, second.version)
    aligned = open_snapshot(store, third.version, space=current)
    same_space(old, aligned)
    for entity in ("item", "user"):
        ids, before = old.matrix(entity)
        _, unmapped = open_snapshot(store, third.version).lookup(entity, ids.tolist())
        _, after = aligned.lookup(entity, ids.tolist())
        # Two independently initialised encoders: the map cannot be exact, but it must bring
        # the new vectors much closer to the old ones than they are as they come.
        assert _cosines(after, before).mean() > _cosines(unmapped, before).mean() + 0.1
