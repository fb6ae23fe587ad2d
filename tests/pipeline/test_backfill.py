"""A backfill encodes only what changed and ends where a full refresh of the new catalogue ends."""

from pathlib import Path

import faiss
import numpy as np
import pytest

import marc_batch.pipeline.shards as shards_module
from marc_batch.errors import SourceError, StoreError
from marc_batch.index.vectors import normalised
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.publish import publish, rollback
from marc_batch.pipeline.refresh import refresh
from marc_batch.pipeline.steps import model_transaction
from marc_batch.store import Store, open_snapshot
from marc_batch.store.channels import read_channel
from marc_batch.store.validate import validate
from tests.tiny import ITEMS, USERS, config_for


def edit_items(path: Path) -> None:
    """Retitle item 3, drop item 5, add item 60."""
    lines = path.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    rows[3] = "3,a brand new title,1999,drama"
    del rows[5]
    rows.append("60,the sixty first film,2001,comedy")
    path.write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ids the encoder is asked to embed."""
    seen: list[str] = []
    real = shards_module.encode_rows

    def counting(runtime, part):
        seen.extend(part["id"].to_pylist())
        return real(runtime, part)

    monkeypatch.setattr(shards_module, "encode_rows", counting)
    return seen


def test_backfill_encodes_only_the_change_and_matches_a_full_refresh(
    tmp_path: Path, registry: Path, counted: list[str]
) -> None:
    config = config_for(tmp_path, registry)
    first = refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")
    counted.clear()

    report = backfill(config)

    items = sorted(i for i in counted if not i.startswith("u"))
    users = [i for i in counted if i.startswith("u")]
    assert items == ["3", "60"]
    # Users who watched item 3 or 5 have a new history text; only they are re-encoded.
    assert 0 < len(users) == report.changes["user"].changed < USERS
    assert report.committed and report.parent_version == first.version
    change = report.changes["item"]
    assert (change.added, change.changed, change.removed) == (1, 1, 1)
    assert change.rows_in == change.added + change.changed + change.unchanged
    assert report.rows == {"item": ITEMS, "user": USERS}
    store = Store(config.store)
    manifest = store.resolve("latest")
    assert manifest.operation == "incremental" and manifest.version == report.version
    assert validate(store, manifest) == []
    assert [index.entity for index in manifest.indexes] == ["item"]
    assert manifest.indexes[0].rows == ITEMS

    # The same catalogue refreshed from scratch gives the same rows and vectors.
    reference = config_for(tmp_path / "reference", registry)
    edit_items(tmp_path / "reference" / "catalogue" / "items.csv")
    refresh(reference)
    for entity in ("item", "user"):
        ids, vectors = open_snapshot(store, "latest", verify=True).matrix(entity)
        ref_ids, ref_vectors = open_snapshot(Store(reference.store), "latest").matrix(entity)
        order, ref_order = np.argsort(ids), np.argsort(ref_ids)
        assert ids[order].tolist() == ref_ids[ref_order].tolist()
        np.testing.assert_allclose(vectors[order], ref_vectors[ref_order], atol=1e-5)

    index = open_snapshot(store, "latest").index("item")
    # The parent's exact index was changed in place, and every id still names its own vector.
    assert report.indexes["item"].updated and index.ntotal == ITEMS
    ids, vectors = open_snapshot(store, "latest").matrix("item")
    stored = np.vstack([index.reconstruct(int(i)) for i in ids])
    np.testing.assert_allclose(stored, normalised(vectors), atol=1e-6)
    assert 5 not in faiss.vector_to_array(faiss.downcast_index(index).id_map)


def test_nothing_changed_commits_nothing(
    tmp_path: Path, registry: Path, counted: list[str]
) -> None:
    config = config_for(tmp_path, registry)
    first = refresh(config)
    counted.clear()
    report = backfill(config)
    assert not report.committed and report.version == first.version and counted == []
    assert Store(config.store).versions() == [first.version]


def test_an_items_file_adds_and_updates_without_deleting(
    tmp_path: Path, registry: Path, counted: list[str]
) -> None:
    config = config_for(tmp_path, registry)
    refresh(config)
    delta = tmp_path / "new-items.csv"
    fresh = "".join(f"{i},fresh arrival {i},2024,drama\n" for i in range(100, 130))
    delta.write_text(f"id,title,year,genres\n{fresh}2,,2000,bad\n")
    counted.clear()
    report = backfill(config, items=delta)
    assert sorted(counted) == [str(i) for i in range(100, 130)]
    assert report.changes["item"].quarantined == 1  # the blank title, quarantined with a reason
    assert report.rows["item"] == ITEMS + 30 and "user" not in report.changes
    manifest = Store(config.store).resolve("latest")
    assert manifest.quarantine == {"items.EMPTY_TEXT": 1}


def test_backfill_refuses_what_it_cannot_build_on(tmp_path: Path, registry: Path) -> None:
    config = config_for(tmp_path, registry)
    with pytest.raises(StoreError, match="run a refresh first"):
        backfill(config)
    refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")
    backfill(config, channel="staging")
    with pytest.raises(StoreError, match="committed for channel 'staging'; a backfill builds on"):
        store = Store(config.store)
        assert read_channel(store.backend, "staging")[0].version == 2
        backfill(config, channel="latest")
    with pytest.raises(SourceError, match=r"parquet or \.csv"):
        backfill(config, items=tmp_path / "items.json", channel="staging")


def test_a_version_committed_but_never_published_is_published_by_the_rerun(
    tmp_path: Path, registry: Path
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")
    backfill(config)
    # Version 3: committed for 'latest' by a run that died before moving the channel.
    txn = model_transaction(config, "current", "crashed-run", mode="incremental")
    txn.delete("item", ["7"])
    txn.commit(channel="latest")
    assert read_channel(store.backend, "latest")[0].version == 2

    # The re-run publishes version 3 (verified) before it builds on it: item 7 comes back.
    assert backfill(config).version == 4
    pointer = read_channel(store.backend, "latest")[0]
    assert (pointer.version, pointer.history[:2], pointer.rolled_back) == (4, [3, 2], [])


def test_a_rolled_back_channel_still_makes_backfill_refuse(tmp_path: Path, registry: Path) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")
    backfill(config)
    rollback(store, "latest")
    assert read_channel(store.backend, "latest")[0].rolled_back == [2]

    # Version 2 was withdrawn on purpose: no re-run publishes it or builds on it.
    with pytest.raises(StoreError) as refused:
        backfill(config)
    assert str(refused.value) == (
        "channel 'latest' shows version 1 but the newest is 2, and it was rolled back from "
        "version 2; a backfill builds on the newest: publish version 2 or run a refresh"
    )
    assert read_channel(store.backend, "latest")[0].version == 1

    # Publishing it again is deliberate: it is no longer withdrawn, and a backfill builds on it.
    publish(store, 2, "latest")
    assert read_channel(store.backend, "latest")[0].rolled_back == []
    assert not backfill(config).committed


def test_an_ivf_index_is_built_from_shards_and_changed_in_place_over_layers(
    tmp_path: Path, registry: Path
) -> None:
    config = config_for(tmp_path, registry, flat_max_rows=10, tuning_queries=10)
    store = Store(config.store)
    built = refresh(config).indexes["item"]
    assert built.kind == "ivf-flat" and not built.updated and built.rows == ITEMS
    edit_items(tmp_path / "catalogue" / "items.csv")
    assert backfill(config).indexes["item"].updated
    delta = tmp_path / "new-items.csv"
    delta.write_text("id,title,year,genres\n3,retitled once more,1999,drama\n61,later,2002,war\n")
    # The parent is now itself incremental: its live rows span two layers.
    report = backfill(config, items=delta)
    assert report.indexes["item"].updated and report.indexes["item"].rows == ITEMS + 1

    snapshot = open_snapshot(store, "latest", verify=True)
    index = snapshot.index("item")
    faiss.extract_index_ivf(index).nprobe = faiss.extract_index_ivf(index).nlist
    ids, vectors = snapshot.matrix("item")
    assert index.ntotal == len(ids) == ITEMS + 1
    # Each live id is found by its own vector (among near-twins the tiny encoder makes).
    scores, found = index.search(normalised(vectors), 10)
    assert all(int(i) in row for i, row in zip(ids, found, strict=True))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
