"""BAHE behaviour vectors in the store: listed by the manifest, carried per model, verified."""

import numpy as np
import pytest

from marc_batch.errors import CorruptFile
from marc_batch.pipeline.publish import promote_new
from marc_batch.store import Store, Transaction
from marc_batch.store.behaviours import read_behaviours
from marc_batch.store.compact import compact
from marc_batch.store.gc import collect_garbage
from marc_batch.store.validate import validate
from tests.publishing import committed

K, DIM = 4, 6


def commit(store: Store, model: str, keys: list[str], seed: int) -> tuple[np.ndarray, int]:
    txn = Transaction(store, model_version=model, k=K)
    txn.write("item", ["a"], np.ones((1, K)), ["h"])
    vectors = np.random.default_rng(seed).normal(size=(len(keys), DIM)).astype(np.float32)
    if keys:
        txn.write_behaviours(keys, vectors)
    return vectors, committed(txn).version


def cached(store: Store, model: str) -> dict[str, list[float]]:
    table = read_behaviours(store, store.head(), model)
    return dict(zip(table["key"].to_pylist(), table["vector"].to_pylist(), strict=True))


def test_vectors_are_carried_while_the_model_stays_and_dropped_when_it_changes(
    store: Store,
) -> None:
    first, _ = commit(store, "m1", ["x", "y"], 0)
    second, version = commit(store, "m1", ["z"], 1)
    assert len(store.manifest(version).behaviours) == 2
    found = cached(store, "m1")
    assert sorted(found) == ["x", "y", "z"]
    np.testing.assert_array_equal(found["y"], first[1])
    np.testing.assert_array_equal(found["z"], second[0])
    assert cached(store, "m2") == {}  # another model's vectors are never offered

    commit(store, "m2", [], 2)
    assert store.head().behaviours == [] and cached(store, "m2") == {}
    assert validate(store, store.manifest(version)) == []


def test_a_tampered_file_is_refused_and_reported(store: Store) -> None:
    commit(store, "m1", ["x", "y"], 0)
    (entry,) = store.head().behaviours
    data = bytearray(store.backend.read_bytes(entry.path))
    data[len(data) // 2] ^= 0xFF
    store.backend.delete(entry.path)
    with store.backend.writing(entry.path) as handle:
        handle.write(bytes(data))
    with pytest.raises(CorruptFile, match="sha256"):
        read_behaviours(store, store.head(), "m1")
    assert [p for p in validate(store, store.head()) if entry.path in p]


def test_gc_keeps_listed_vector_files_and_deletes_orphans(store: Store) -> None:
    commit(store, "m1", ["x"], 0)
    commit(store, "m2", ["y"], 1)
    (kept,) = store.head().behaviours
    report = collect_garbage(store, keep=1, grace_seconds=0)
    assert kept.path not in report.deleted_files
    assert [p for p in report.deleted_files if p.startswith("behaviours/")]
    assert sorted(cached(store, "m2")) == ["y"]


def test_compaction_merges_the_files_with_each_key_once(store: Store) -> None:
    first, _ = commit(store, "m1", ["x", "y"], 0)
    second, _ = commit(store, "m1", ["z", "x"], 1)  # "x" again: a duplicate a merge must drop
    before = store.head().behaviours
    assert len(before) == 2

    compacted = compact(store, "latest")
    promote_new(store, compacted, "latest")
    (merged,) = compacted.behaviours
    assert merged.path not in {entry.path for entry in before} and merged.rows == 3
    found = cached(store, "m1")
    assert sorted(found) == ["x", "y", "z"]
    np.testing.assert_array_equal(found["x"], first[0])  # the first written is kept
    np.testing.assert_array_equal(found["z"], second[0])
    assert validate(store, compacted) == []

    report = collect_garbage(store, keep=1, grace_seconds=0)
    assert {entry.path for entry in before} <= set(report.deleted_files)
    assert sorted(cached(store, "m1")) == ["x", "y", "z"]
