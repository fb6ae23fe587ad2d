"""Rows in = rows embedded + rows quarantined: checked by every run and kept in its manifest."""

import json
from pathlib import Path

import pytest

import marc_batch.pipeline.shards as shards_module
from marc_batch.errors import ConservationError, ManifestError
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Conservation, Store, open_snapshot
from marc_batch.store.manifest import parse_manifest
from marc_batch.store.paths import manifest_path
from tests.pipeline.test_backfill import edit_items
from tests.reliability.helpers import check_snapshot, published
from tests.tiny import ITEMS, USERS, config_for


def with_bad_items(tmp_path: Path, registry: Path):
    """The tiny catalogue plus a blank title and a duplicate id: two rows to quarantine."""
    config = config_for(tmp_path, registry)
    items = tmp_path / "catalogue" / "items.csv"
    items.write_text(items.read_text() + "100,,2001,drama\n7,a later copy of seven,2002,drama\n")
    return config


def test_every_run_records_its_conservation_in_the_manifest(
    tmp_path: Path, registry: Path, ledger
) -> None:
    config = with_bad_items(tmp_path, registry)
    report = refresh(config)
    store = Store(config.store)
    manifest = store.manifest(report.version)
    assert manifest.conservation == {
        "item": Conservation(rows_in=ITEMS + 2, embedded=ITEMS, quarantined=2),
        "user": Conservation(rows_in=USERS, embedded=USERS, quarantined=0),
    }
    check_snapshot(store, manifest)

    edit_items(tmp_path / "catalogue" / "items.csv")  # retitle 3, drop 5, add 60
    changed = backfill(config)
    manifest = store.manifest(changed.version)
    assert manifest.operation == "incremental"
    assert manifest.conservation["item"] == Conservation(
        rows_in=ITEMS + 2, embedded=ITEMS, quarantined=2
    )
    check_snapshot(store, manifest)
    for run in ("refresh", "backfill"):
        ledger("conservation", run=run, rows_in=ITEMS + 2 + USERS, rows_lost=0)


@pytest.mark.parametrize("run", ["refresh", "backfill"])
def test_an_encoder_that_drops_a_row_publishes_nothing_and_a_rerun_heals(
    run: str, tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch, ledger
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    if run == "backfill":
        refresh(config)
        edit_items(tmp_path / "catalogue" / "items.csv")
    before = published(store)

    real = shards_module.encode_rows
    dropped: list[str] = []

    def lossy(runtime, part):
        rows, stats = real(runtime, part)
        dropped.append(rows["id"][-1].as_py())
        return rows.slice(0, rows.num_rows - 1), stats

    monkeypatch.setattr(shards_module, "encode_rows", lossy)
    go = refresh if run == "refresh" else backfill
    with pytest.raises(ConservationError, match="refusing to publish") as failure:
        go(config)
    assert dropped and "\n" not in str(failure.value)
    assert published(store) == before

    # The lossy rows stay checkpointed; a re-run must encode those shards again, not reuse them.
    monkeypatch.setattr(shards_module, "encode_rows", real)
    report = go(config)
    check_snapshot(store, store.manifest(report.version))
    snapshot = open_snapshot(store, report.version)
    live = {i for entity in ("item", "user") for i in snapshot.matrix(entity)[0].tolist()}
    assert set(dropped) <= live
    ledger(
        "fault",
        flow=run,
        point="the encoder drops a row",
        backend="local",
        outcome="ConservationError, nothing published",
        rerun="ok",
        rows_lost=0,
    )


def test_a_manifest_whose_figures_do_not_add_up_is_refused(tmp_path: Path, registry: Path) -> None:
    config = config_for(tmp_path, registry)
    version = refresh(config).version
    store = Store(config.store)
    raw = json.loads(store.backend.read_bytes(manifest_path(version)))
    raw["conservation"]["item"]["embedded"] -= 1
    with pytest.raises(ManifestError, match=r"conservation\.item: rows_in \(60\) must equal"):
        parse_manifest(json.dumps(raw).encode(), "forged")
    del raw["conservation"]  # manifests written before the field existed still read
    assert parse_manifest(json.dumps(raw).encode(), "old").conservation == {}
