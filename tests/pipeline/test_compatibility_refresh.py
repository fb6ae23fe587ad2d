"""A refresh with a new model version: mapped into the old space, measured, gated at ``prod``."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from flows.summaries import compatibility_rows
from marc_batch.config import Config
from marc_batch.errors import IncompatibleModel
from marc_batch.model.registry import Registry
from marc_batch.pipeline.publish import publish
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, open_snapshot
from tests.tiny import config_for


def register_rotated(models: Path, seed: int) -> str:
    """The current encoder with every z turned by one random rotation: a model in a new space.

    The rotation is exact and shared by users and items, so a Procrustes map
    fitted on the shared ids takes the new vectors back to the old ones.
    """
    registry = Registry(models)
    encoder, artifact = registry.load()
    rotation = torch.from_numpy(ortho_group.rvs(encoder.heads.k, random_state=seed)).float()
    with torch.no_grad():
        for entity in ("user", "item"):
            last = encoder.heads.net(entity)[-1]
            last.weight.copy_(rotation @ last.weight)
            last.bias.copy_(rotation @ last.bias)
    return registry.add(
        encoder, artifact.base_backbone, artifact.base_sha256, artifact.metrics, make_current=False
    )


def small_check(config: Config, seeds: list[int], epochs: int) -> Config:
    """``config`` with a CTR model small enough for the tiny catalogue."""
    lift = config.evaluate.lift.model_copy(update={"hidden": [16], "epochs": epochs})
    settings = config.evaluate.model_copy(update={"seeds": seeds, "lift": lift})
    return config.model_copy(update={"evaluate": settings})


def test_a_model_change_is_measured_against_the_ranking_teams_model_and_gated(
    tmp_path: Path, registry: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(registry, models)
    config = small_check(config_for(tmp_path, models), seeds=[0, 1], epochs=3)
    store = Store(config.store)
    first = refresh(config, channel="prod")
    assert store.manifest(first.version).compatibility is None

    rotated = register_rotated(models, seed=3)
    second = refresh(config, model_version=rotated, channel="latest")
    manifest = store.manifest(second.version)
    record = manifest.compatibility
    assert record is not None
    assert (record.previous_version, record.previous_model) == (first.version, first.model_version)
    figures = record.figures
    # Mapped back, the vectors are the old ones: the CTR model scores them as its own.
    for split in ("valid", "test"):
        assert figures[f"{split}_auc_mapped"] == pytest.approx(
            figures[f"{split}_auc_previous"], abs=1e-3
        )
    assert figures["compatible"] is True
    assert figures["valid_auc_unmapped"] != pytest.approx(figures["valid_auc_previous"], abs=1e-3)
    old = open_snapshot(store, first.version)
    new = open_snapshot(store, second.version).aligned(first.model_version)
    ids = [str(i) for i in range(10)]
    np.testing.assert_allclose(new.lookup("item", ids)[1], old.lookup("item", ids)[1], atol=1e-4)

    assert second.compatibility == record
    table = compatibility_rows(record)
    assert table[0].startswith(f"Compatibility with version {first.version}")
    assert "compatible (needs 95% of the lift on validation)" in table[0]
    mapped = next(line for line in table if line.startswith("| mapped |"))
    assert f"| {figures['valid_auc_mapped']:.4f} |" in mapped

    assert publish(store, "latest", "prod", protected=["prod"]).version == second.version


def test_a_refresh_to_a_protected_channel_commits_but_leaves_it_when_not_shown_compatible(
    tmp_path: Path, registry: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(registry, models)
    config = small_check(config_for(tmp_path, models), seeds=[0], epochs=1)
    store = Store(config.store)
    first = refresh(config, channel="prod")
    refresh(config, model_version=register_rotated(models, seed=4), channel="latest")
    # prod still serves the first model; this refresh is measured against the latest one's.
    with pytest.raises(IncompatibleModel, match="for channel 'prod'") as refused:
        refresh(config, model_version=register_rotated(models, seed=5), channel="prod")
    assert f"no compatibility was measured against model {first.model_version}" in str(
        refused.value
    )
    assert store.resolve("prod").version == first.version
    assert store.head().version == first.version + 2
