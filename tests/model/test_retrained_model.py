"""Retraining with another seed on MovieLens-100K: the new snapshot is measured and gated."""

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from marc_batch.cli.app import app
from marc_batch.config import load_config
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, open_snapshot
from tests.conftest import run_cli


def test_a_model_retrained_with_another_seed_is_aligned_measured_and_gated(
    bert_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[model]
backbone = "{bert_dir}"
k = 4
registry = "{tmp_path / "models"}"
head_hidden = 16
matching_hidden = [16]
[model.train]
epochs = 1
users_per_step = 512
pairs_per_user = 4
user_max_length = 16
item_max_length = 8
[evaluate]
seeds = [0, 1]
[evaluate.lift]
epochs = 2
batch_size = 4096
hidden = [16]
embedding_dim = 4
[store]
root = "{tmp_path / "store"}"
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    versions = []
    for seed in ("0", "1"):
        trained = runner.invoke(
            app,
            ["train", "--config", str(path), "--json"],
            env={"MARC_BATCH_MODEL__TRAIN__SEED": seed},
        )
        assert trained.exit_code == 0, trained.output
        versions.append(json.loads(trained.stdout)["version"])
    old, new = versions
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
