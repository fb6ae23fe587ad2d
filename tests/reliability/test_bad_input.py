"""Bad input tried at scale: a fuzz corpus and generated catalogues, each driven through whole
runs. Every run ends in a one-line MarcBatchError with nothing published, or in a snapshot
where rows in = embedded + quarantined with a reason for every quarantined row."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

import marc_batch.pipeline.encoders as encoders
from fixtures.encoders import random_bert, register_untrained
from marc_batch.config import load_config
from marc_batch.errors import SnapshotConflict
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store
from tests.model.conftest import SIZES, tiny_model_config, word_tokenizer
from tests.pipeline.test_backfill import edit_items
from tests.reliability.helpers import check_snapshot, published
from tests.reliability.runs import Outcome, config_data, file_bytes, run_checked
from tests.reliability.test_concurrent_runs import race
from tests.tiny import config_for

CORPUS = Path(__file__).with_name("corpus")
CASES = sorted(CORPUS.glob("*.yaml"))


def expand(value: object, catalogue: Path) -> object:
    if isinstance(value, str):
        return value.replace("<<CATALOGUE>>", str(catalogue))
    if isinstance(value, dict):
        return {k: expand(v, catalogue) for k, v in value.items()}
    return value


def apply_files(step: dict, catalogue: Path) -> None:
    for name, content in step.get("files", {}).items():
        (catalogue / name).write_bytes(file_bytes(content))
    for name, content in step.get("append", {}).items():
        with (catalogue / name).open("ab") as handle:
            handle.write(file_bytes(content))


def write_step_config(step: dict, base, catalogue: Path, directory: Path) -> Path:
    """The step's config file: verbatim, or the base config with the step's changes."""
    directory.mkdir(parents=True, exist_ok=True)
    if "config_text" in step:
        path = directory / step.get("config_name", "marc-batch.yaml")
        path.write_text(step["config_text"])
        return path
    path = directory / "marc-batch.yaml"
    changes = expand(step.get("config", {}), catalogue)
    path.write_text(yaml.safe_dump(config_data(base, catalogue, changes)))
    return path


def steps_of(spec: dict) -> list[dict]:
    """A backfill case runs after a clean refresh; ``then`` is a second step."""
    if "then" in spec:
        return [{k: v for k, v in spec.items() if k != "then"}, spec["then"]]
    if spec.get("run") == "backfill":
        return [{}, spec]
    return [spec]


def check_expectations(expect: dict, outcome: Outcome, name: str) -> None:
    if "error" in expect:
        assert outcome.error is not None, f"{name}: expected {expect['error']}, the run published"
        assert type(outcome.error).__name__ == expect["error"], f"{name}: {outcome.line}"
        if "match" in expect:
            assert re.search(expect["match"], outcome.line), f"{name}: {outcome.line}"
        return
    assert outcome.error is None, f"{name}: {type(outcome.error).__name__}: {outcome.line}"
    manifest = outcome.manifest
    for key, rows in expect.get("quarantine", {}).items():
        assert manifest.quarantine.get(key, 0) == rows, f"{name}: {manifest.quarantine}"
    for entity, rows in expect.get("rows", {}).items():
        assert manifest.rows[entity] == rows, f"{name}: {manifest.rows}"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_corpus_case(
    case: Path, tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch, ledger
) -> None:
    spec = yaml.safe_load(case.read_text())
    base = config_for(tmp_path, registry)
    catalogue = tmp_path / "catalogue"
    store = Store(base.store)
    steps = steps_of(spec)
    for number, step in enumerate(steps):
        for name, value in step.get("env", {}).items():
            monkeypatch.setenv(name, value)
        apply_files(step, catalogue)
        path = write_step_config(step, base, catalogue, tmp_path / f"config-{number}")
        items = catalogue / step["backfill_items"] if "backfill_items" in step else None

        def go(path: Path = path, step: dict = step, items: Path | None = items):
            config = load_config(path)
            if step.get("run", "refresh") == "backfill":
                return backfill(config, items=items)
            return refresh(config)

        outcome = run_checked(go, lambda: store)
        last = number == len(steps) - 1
        if not last:
            assert outcome.error is None, f"{case.stem}: setup step failed: {outcome.line}"
            continue
        check_expectations(step.get("expect", {}), outcome, case.stem)
        ledger("bad_input", source="corpus", case=case.stem, **outcome.figures())


# -- A changed k or model between a snapshot and its parent ------------------------------


def register_wider_model(root: Path, scratch: Path) -> str:
    """Register a k=16 encoder next to the tiny k=8 one and make it current."""
    backbone = random_bert(scratch / "bert-16", word_tokenizer(), SIZES, seed=1)
    config = tiny_model_config(backbone, k=16)
    return register_untrained(root, config, {"valid_auc": 0.5}, seed=1)


def test_a_model_or_k_change_between_a_snapshot_and_its_parent(
    tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch, ledger
) -> None:
    models = tmp_path / "models"
    shutil.copytree(registry, models)
    config = config_for(tmp_path, models)
    store = Store(config.store)
    first = refresh(config)
    old_version = first.model_version
    wider = register_wider_model(models, tmp_path)

    # A backfill stays in its parent's embedding space, whatever model is current now.
    edit_items(tmp_path / "catalogue" / "items.csv")
    report = backfill(config)
    manifest = store.manifest(report.version)
    assert (manifest.model.version, manifest.k) == (old_version, 8)
    check_snapshot(store, manifest)

    # A refresh with the new model racing a backfill in the old space: the backfill must
    # not rebase across the change of k.
    path = tmp_path / "catalogue" / "items.csv"
    path.write_text(path.read_text().replace("a brand new title", "another new title"))
    winner, loser = race(
        monkeypatch, lambda: refresh(config), lambda: backfill(config), "incremental"
    )
    assert (store.manifest(winner.version).model.version, store.manifest(winner.version).k) == (
        wider,
        16,
    )
    assert isinstance(loser.get("error"), SnapshotConflict), loser
    assert "k=16" in str(loser["error"])
    assert published(store)[1]["latest"] == winner.version

    # The parent's model disappears from the registry, or its files are tampered with.
    path.write_text(path.read_text().replace("another new title", "a third title"))
    before = published(store)
    heads = models / wider / "heads.safetensors"
    original = heads.read_bytes()
    shutil.move(models / wider, tmp_path / "away")
    missing = run_checked(lambda: backfill(config), lambda: store)
    assert type(missing.error).__name__ == "ArtifactError", missing.line
    shutil.move(tmp_path / "away", models / wider)
    heads.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    encoders._loaded.clear()  # a fresh worker process, which must verify what it loads
    tampered = run_checked(lambda: backfill(config), lambda: store)
    assert "heads.safetensors does not match its sha256" in tampered.line
    assert published(store) == before
    heads.write_bytes(original)
    assert backfill(config).committed
    for case, error in (
        ("a backfill keeps its parent's model when another is current", None),
        ("a refresh with a new k races a backfill in the old space", "SnapshotConflict"),
        ("the parent's model is missing from the registry", "ArtifactError"),
        ("the parent's model files were tampered with", "ArtifactError"),
    ):
        outcome = "error" if error else "clean"
        ledger("bad_input", source="model drift", case=case, outcome=outcome, error=error)
