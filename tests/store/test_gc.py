"""gc keeps the newest versions and every channel target, and only deletes what nothing needs."""

import numpy as np

from marc_batch.store import Store, Transaction, open_snapshot
from marc_batch.store import channels as channel_ops
from marc_batch.store.gc import collect_garbage
from marc_batch.store.paths import DATA
from tests.publishing import committed

K = 4


def commit(store: Store, mode: str, name: str) -> int:
    txn = Transaction(store, model_version="m1", k=K, mode=mode)
    txn.write("item", [name], np.ones((1, K)), ["h"])
    return committed(txn).version


def data_files(store: Store) -> set[str]:
    return {info.path for info in store.backend.list(DATA)}


def test_gc_keeps_the_newest_versions_channel_targets_and_their_files(store: Store) -> None:
    commit(store, "overwrite", "a")
    commit(store, "overwrite", "b")
    channel_ops.move(store.backend, "prod", store.manifest(2))
    for name in "cde":
        commit(store, "incremental", name)
    orphan = next(iter(data_files(store)))
    orphan = orphan.replace(orphan.rsplit("/", 1)[-1], "0" * 32 + ".parquet")
    with store.backend.writing(orphan) as handle:  # what a crashed publisher leaves
        handle.write(b"partial")
    before = data_files(store)

    young = collect_garbage(store, keep=2, grace_seconds=3600)
    assert young.expired_versions == [1, 3]  # expired at once: no one can open them any more
    assert young.deleted_files == []  # but their files are too young to delete
    assert data_files(store) == before

    dry = collect_garbage(store, keep=1, grace_seconds=0, dry_run=True)
    assert store.versions() == [2, 4, 5]
    assert dry.kept_versions == [2, 5] and dry.expired_versions == [4]
    assert data_files(store) == before and orphan in dry.deleted_files

    report = collect_garbage(store, keep=1, grace_seconds=0)
    assert report.deleted_files == dry.deleted_files
    assert store.versions() == [2, 5]
    assert orphan not in data_files(store)
    assert data_files(store) == {p for v in (2, 5) for p in store.manifest(v).all_paths()}
    assert open_snapshot(store, "prod", verify=True).table("item")["id"].to_pylist() == ["b"]
    latest = open_snapshot(store, "latest", verify=True).table("item")["id"].to_pylist()
    assert sorted(latest) == ["b", "c", "d", "e"]
