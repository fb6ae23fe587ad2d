"""``marc-batch train`` with BAHE users, then refreshes and a backfill that read the store's cache.

One tiny BAHE model is trained through the CLI on the small catalogue of
tests/tiny.py; every refresh then reads the behaviour vectors earlier
snapshots of that model hold and encodes only behaviours they lack.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fixtures.encoders import random_bert
from marc_batch.cli.app import app
from marc_batch.config import Config, load_config
from marc_batch.encode.stats import EncodeStats
from marc_batch.errors import ConfigError, CorruptFile
from marc_batch.model.registry import Registry
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.refresh import refresh
from marc_batch.pipeline.shards import ShardJob, encode_job
from marc_batch.store import Store, open_snapshot
from marc_batch.store.compact import compact
from marc_batch.store.validate import validate
from tests.model.conftest import SIZES, word_tokenizer
from tests.tiny import USERS, write_catalogue


def write_config(tmp_path: Path, backbone: Path, models: Path, user_encoder: str = "bahe") -> Path:
    """A config over a fresh copy of the small catalogue and a fresh store under ``tmp_path``."""
    data = tmp_path / "catalogue"
    if not data.is_dir():
        write_catalogue(data)
    sources = "".join(
        f'[sources.{name}]\nformat = "csv"\npath = "{data / f"{name}.csv"}"\n'
        for name in ("items", "users", "interactions")
    )
    path = tmp_path / f"{user_encoder}.toml"
    path.write_text(
        f"""
[sources]
dataset = ""
{sources}
[model]
backbone = "{backbone}"
user_encoder = "{user_encoder}"
k = 4
registry = "{models}"
head_hidden = 16
matching_hidden = [16]
[model.lora]
layers = 1
rank = 2
alpha = 4
[model.bahe]
split_layer = 1
[model.train]
epochs = 1
users_per_step = 4
pairs_per_user = 4
user_max_length = 40
item_max_length = 8
device = "cpu"
[evaluate]
seeds = [0]
epochs = 1
hidden = [8]
[evaluate.lift]
epochs = 1
hidden = [8]
embedding_dim = 4
[store]
root = "{tmp_path / "store"}"
shards = 3
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_bert(tmp_path_factory.mktemp("bert"), word_tokenizer(), SIZES)


@pytest.fixture(scope="module")
def models(backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose current model is a BAHE model trained by ``marc-batch train``."""
    root = tmp_path_factory.mktemp("training")
    path = write_config(root, backbone, root / "models")
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    version = json.loads(result.stdout)["version"]
    artifact = Registry(root / "models").config(version)
    assert artifact.model.user_encoder == "bahe" and artifact.model.bahe.split_layer == 1
    return root / "models"


@pytest.fixture
def trained(backbone: Path, models: Path, tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, backbone, models))


def user_vectors(config: Config) -> dict[str, np.ndarray]:
    ids, matrix = open_snapshot(config.store.root, "latest").matrix("user")
    return dict(zip(ids.tolist(), matrix.copy(), strict=True))


def retitle(config: Config, item: int, title: str) -> None:
    path = Path(config.sources.items.path)
    lines = path.read_text().splitlines()
    fields = lines[1 + item].split(",")
    lines[1 + item] = ",".join([fields[0], title, *fields[2:]])
    path.write_text("\n".join(lines) + "\n")


def test_refreshes_encode_only_behaviours_new_to_the_model(trained: Config) -> None:
    first = refresh(trained)
    assert first.rows["user"] == USERS
    counts = first.behaviours
    assert counts is not None and counts.encoded == counts.distinct > 0 and counts.reused == 0
    store = Store(trained.store)
    assert validate(store, store.head()) == []
    first_files = {entry.path for entry in store.head().behaviours}
    before = user_vectors(trained)

    again = refresh(trained)
    assert again.behaviours.encoded == 0 and again.behaviours.reused == counts.distinct
    after = user_vectors(trained)
    for user, vector in before.items():
        np.testing.assert_allclose(after[user], vector, atol=1e-6)

    # Item 7's behaviours read differently now: only they are encoded again.
    retitle(trained, 7, "red comedy and the blue drama")
    changed = refresh(trained)
    assert 0 < changed.behaviours.encoded < changed.behaviours.distinct
    assert changed.behaviours.reused == changed.behaviours.distinct - changed.behaviours.encoded
    assert first_files < {entry.path for entry in store.head().behaviours}  # and this run's
    moved = user_vectors(trained)
    untouched = [u for u in before if np.allclose(moved[u], before[u], atol=1e-6)]
    assert 0 < len(untouched) < USERS

    # Compaction merges the files; the next refresh still finds every behaviour.
    assert len(compact(store).behaviours) == 1
    merged = refresh(trained).behaviours
    assert merged.encoded == 0 and merged.reused == changed.behaviours.distinct
    last = user_vectors(trained)
    for user, vector in moved.items():
        np.testing.assert_allclose(last[user], vector, atol=1e-6)


def test_a_backfill_reruns_the_upper_layers_only_for_changed_histories(trained: Config) -> None:
    refresh(trained)
    path = Path(trained.sources.interactions.path)
    path.write_text(path.read_text() + "u3,59,5,1000000\n")  # an old, train-split rating

    report = backfill(trained)

    assert report.changes["user"].changed == 1
    assert report.encode["user"]["texts"] == 1
    assert report.behaviours is not None and report.behaviours.encoded <= 1
    store = Store(trained.store)
    assert validate(store, store.head()) == []


def test_a_tampered_cache_file_is_refused(trained: Config) -> None:
    refresh(trained)
    store = Store(trained.store)
    entry = store.head().behaviours[0]
    data = bytearray(store.backend.read_bytes(entry.path))
    data[-20] ^= 0x01
    store.backend.delete(entry.path)
    with store.backend.writing(entry.path) as handle:
        handle.write(bytes(data))
    assert any(entry.path in problem for problem in validate(store, store.head()))
    with pytest.raises(CorruptFile, match="sha256"):
        refresh(trained)


def test_a_model_is_refused_under_the_other_user_encoder(
    backbone: Path, models: Path, tmp_path: Path
) -> None:
    text = load_config(write_config(tmp_path, backbone, models, "text"))
    with pytest.raises(ConfigError, match="user_encoder = 'bahe'"):
        refresh(text)


def test_evaluate_scores_a_bahe_model_against_text_baselines(
    trained: Config, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    config = tmp_path / "bahe.toml"
    result = CliRunner().invoke(app, ["evaluate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]) >= {"marc", "pca-final", "proj-final"}
    assert all(np.isfinite(m["test_auc"]).all() for m in report["methods"].values())
    # Layers below the adapted one are the frozen text probe's; the adapted one is BAHE's.
    assert [layer["adapted"] for layer in report["probe"]["marc"]] == [False, False, False, True]


def test_user_shards_on_threads_beside_item_shards_give_the_serial_vectors(
    trained: Config,
) -> None:
    """The BAHE path slices its own module tree, never the one item shards run on."""
    refresh(trained)
    serial = user_vectors(trained)
    items = dict(zip(*open_snapshot(trained.store.root, "latest").matrix("item"), strict=True))

    def threaded(config: Config, version: str, jobs: list[ShardJob]) -> list[EncodeStats]:
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda job: encode_job(config, version, job), jobs))

    refresh(trained, encode=threaded)
    for user, vector in user_vectors(trained).items():
        np.testing.assert_allclose(vector, serial[user], atol=1e-5)
    ids, matrix = open_snapshot(trained.store.root, "latest").matrix("item")
    for item, vector in zip(ids, matrix, strict=True):
        np.testing.assert_allclose(vector, items[item], atol=1e-5)
