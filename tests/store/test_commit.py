"""One winner per version, rebases only when harmless, channels moved only by compare-and-swap."""

import numpy as np
import pytest

from marc_batch.errors import ChannelConflict, SnapshotConflict, SnapshotNotFound
from marc_batch.store import Store, Transaction, open_snapshot
from marc_batch.store import channels as channel_ops
from tests.publishing import committed

K = 4


def transaction(store: Store, mode: str = "incremental", model: str = "m1") -> Transaction:
    return Transaction(store, model_version=model, k=K, mode=mode)


def put(txn: Transaction, *ids: str) -> Transaction:
    txn.write("item", list(ids), np.ones((len(ids), K)), [f"h{i}" for i in ids])
    return txn


def test_two_overwrites_from_the_same_head_have_one_winner(store: Store) -> None:
    committed(put(transaction(store, "overwrite"), "a"))
    first, second = transaction(store, "overwrite"), transaction(store, "overwrite")
    committed(put(first, "b"))
    put(second, "c")
    with pytest.raises(SnapshotConflict, match="would undo"):
        committed(second)
    assert store.versions() == [1, 2]
    assert open_snapshot(store).table("item")["id"].to_pylist() == ["b"]


def test_disjoint_incremental_changes_rebase_and_both_land(store: Store) -> None:
    committed(put(transaction(store, "overwrite"), "a", "b"))
    slow, fast = put(transaction(store), "c"), put(transaction(store), "d")
    fast.delete("item", ["a"])
    assert committed(fast).version == 2
    rebased = committed(slow)
    assert (rebased.version, rebased.parent_version) == (3, 2)
    assert rebased.rows["item"] == 3
    assert sorted(open_snapshot(store).table("item")["id"].to_pylist()) == ["b", "c", "d"]


def test_overlapping_incremental_changes_conflict(store: Store) -> None:
    committed(put(transaction(store, "overwrite"), "a", "b"))
    slow, fast = put(transaction(store), "a"), transaction(store)
    fast.delete("item", ["a"])
    committed(fast)
    with pytest.raises(SnapshotConflict, match="same item ids"):
        committed(slow)
    assert store.versions() == [1, 2]


def test_an_incremental_change_does_not_rebase_onto_an_overwrite(store: Store) -> None:
    committed(put(transaction(store, "overwrite"), "a", "b"))
    slow = put(transaction(store), "c")
    slow.delete("item", ["a"])
    committed(put(transaction(store, "overwrite"), "x"))
    with pytest.raises(SnapshotConflict, match="replaced every row"):
        committed(slow)
    assert open_snapshot(store).table("item")["id"].to_pylist() == ["x"]


def test_a_snapshot_never_mixes_models_or_widths(store: Store) -> None:
    committed(put(transaction(store, "overwrite"), "a"))
    with pytest.raises(SnapshotConflict, match="must match its parent"):
        transaction(store, model="m2")
    with pytest.raises(SnapshotConflict, match="must match its parent"):
        Transaction(store, model_version="m1", k=K + 1, mode="incremental")
    slow = put(transaction(store), "b")
    committed(put(transaction(store, "overwrite", model="m2"), "z"))
    with pytest.raises(SnapshotConflict, match="must match its parent"):
        committed(slow)


def test_channels_move_by_compare_and_swap_and_roll_back(store: Store) -> None:
    for name in ("a", "b", "c"):
        put(transaction(store, "overwrite"), name).commit()
    backend = store.backend
    channel_ops.move(backend, "prod", store.manifest(1))
    channel_ops.move(backend, "prod", store.manifest(3), expected=1)
    with pytest.raises(ChannelConflict, match="points at version 3, not version 1"):
        channel_ops.move(backend, "prod", store.manifest(2), expected=1)
    assert not channel_ops.advance(backend, "prod", store.manifest(2))  # never backwards
    assert channel_ops.rollback(backend, "prod", store.manifest).version == 1
    with pytest.raises(SnapshotNotFound, match="no earlier target"):
        channel_ops.rollback(backend, "prod", store.manifest)
    assert open_snapshot(store, "prod").version == 1
    with pytest.raises(SnapshotNotFound, match="no channel"):
        open_snapshot(store, "staging")
    snapshot_id = store.manifest(2).snapshot_id
    assert open_snapshot(store, snapshot_id).version == 2
