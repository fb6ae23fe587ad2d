"""Retraining with another seed on MovieLens-100K: the new snapshot is measured and gated."""

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from marc_batch.cli.app import app
from marc_batch.config import load_config
from marc_batch.data.ingest import ingest
from marc_batch.model.registry import Registry
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, open_snapshot
from tests.conftest import run_cli
from tests.model.conftest import write_training_config

EVALUATE = """
[evaluate]
seeds = [0, 1]
[evaluate.lift]
epochs = 2
batch_size = 4096
hidden = [16]
embedding_dim = 4
"""


def train(path: Path, **settings: str) -> str:
    """``marc-batch train`` with ``model.train`` settings from the environment; the version."""
    env = {f"MARC_BATCH_MODEL__TRAIN__{name.upper()}": value for name, value in settings.items()}
    trained = CliRunner().invoke(app, ["train", "--config", str(path), "--json"], env=env)
    assert trained.exit_code == 0, trained.output
    return json.loads(trained.stdout)["version"]


def test_a_model_retrained_with_another_seed_is_aligned_measured_and_gated(
    bert_dir: Path, tmp_path: Path
) -> None:
    path = write_training_config(bert_dir, tmp_path, EVALUATE)
    old, new = train(path, seed="1"), train(path, seed="2")
    assert old != new
    config = load_config(path)
    first = refresh(config, model_version=old, channel="prod")
    second = refresh(config, model_version=new, channel="latest")

    store = Store(config.store)
    record = store.manifest(second.version).compatibility
    assert record is not None and record.previous_model == old
    figures = record.figures
    for split in ("valid", "test"):
        assert figures[f"{split}_auc_previous"] > figures[f"{split}_auc_id-baseline"] - 0.05
    # Mapped into the old space, the new vectors are closer to the old ones than unmapped.
    previous = open_snapshot(store, first.version)
    ids, old_vectors = previous.matrix("item")
    raw = open_snapshot(store, second.version).lookup("item", ids.tolist())[1]
    mapped = open_snapshot(store, second.version, space=old).lookup("item", ids.tolist())[1]
    assert np.linalg.norm(mapped - old_vectors) < np.linalg.norm(raw - old_vectors)

    promoted = run_cli("snapshots", "promote", "latest", "--channel", "prod", "--config", str(path))
    if figures["compatible"]:
        assert promoted.returncode == 0 and store.resolve("prod").version == second.version
    else:
        assert promoted.returncode == 1 and promoted.stderr.count("\n") == 1
        assert "below evaluate.compatibility.min_kept_lift" in promoted.stderr
        assert store.resolve("prod").version == first.version


def test_backward_compatible_training_keeps_the_new_vectors_near_the_old_ones(
    bert_dir: Path, tmp_path: Path
) -> None:
    path = write_training_config(bert_dir, tmp_path, EVALUATE)
    old = train(path, seed="1")
    # 300 steps, every epoch kept in the running: enough for the pull to show on a tiny model.
    steps = {"seed": "2", "epochs": "5", "users_per_step": "16", "patience": "10"}
    free = train(path, **steps)
    bound = train(path, **steps, compatible_with=old, compatibility_weight="5")
    assert len({old, free, bound}) == 3
    config = load_config(path)
    registry = Registry(Path(config.model.registry))
    texts = ingest(config)[0].item_texts["text"].to_pylist()

    def unit(version: str) -> np.ndarray:
        z = registry.load(version)[0].encode(texts, "item")
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    reference = unit(old)
    cosine = {v: float((unit(v) * reference).sum(axis=1).mean()) for v in (free, bound)}
    assert cosine[bound] > 0.7 and cosine[free] < 0.5
