"""A channel remembers what it was rolled back from: a re-run tells withdrawn from unpublished."""

import json
from pathlib import Path

import numpy as np
import pytest

from marc_batch.config import StoreConfig
from marc_batch.pipeline.publish import finish_publish, withheld
from marc_batch.store import Manifest, Store, Transaction
from marc_batch.store import channels as channel_ops
from marc_batch.store.compact import compact
from marc_batch.store.paths import channel_path

K = 4


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    """A local store: these tests are about pointer files, not the backend."""
    return Store(StoreConfig(root=str(tmp_path / "store"), row_group_bytes=2**16))


def commit(store: Store, row: str, channel: str | None = "latest") -> Manifest:
    """One incremental version adding ``row``, committed for ``channel`` and not published."""
    mode = "incremental" if store.head() else "overwrite"
    txn = Transaction(store, model_version="m1", k=K, mode=mode, run_id=f"run-{row}")
    txn.write("item", [row], np.ones((1, K)), [f"h{row}"])
    return txn.commit(channel=channel)


def shown(store: Store, name: str = "latest") -> channel_ops.ChannelPointer:
    found = channel_ops.read_channel(store.backend, name)
    assert found is not None
    return found[0]


def test_rollback_remembers_the_version_it_leaves_and_moves_keep_it(local_store: Store) -> None:
    backend, manifest = local_store.backend, local_store.manifest
    for row in "abc":
        channel_ops.advance(backend, "latest", commit(local_store, row))
    assert shown(local_store).rolled_back == []

    assert channel_ops.rollback(backend, "latest", manifest).version == 2
    assert channel_ops.rollback(backend, "latest", manifest).version == 1
    assert (shown(local_store).version, shown(local_store).rolled_back) == (1, [2, 3])

    # Publishing forward never returns to a withdrawn version, and keeps the memory.
    assert not channel_ops.advance(backend, "latest", manifest(2))
    assert channel_ops.advance(backend, "latest", commit(local_store, "d"))
    assert (shown(local_store).version, shown(local_store).rolled_back) == (4, [2, 3])

    # An explicit move is deliberate: the version it moves to is no longer withdrawn.
    channel_ops.move(backend, "latest", manifest(3), expected=4)
    assert (shown(local_store).version, shown(local_store).rolled_back) == (3, [2])


def test_a_pointer_written_before_rollback_memory_still_reads(local_store: Store) -> None:
    backend = local_store.backend
    channel_ops.advance(backend, "latest", commit(local_store, "a"))
    data, tag = backend.read_tagged(channel_path("latest")) or (b"", "")
    pointer = json.loads(data)
    del pointer["rolled_back"]
    backend.swap(channel_path("latest"), json.dumps(pointer).encode(), tag)
    assert shown(local_store).rolled_back == []


def test_the_rerun_publishes_the_head_its_channel_skipped_past_an_orphan(
    local_store: Store,
) -> None:
    channel_ops.advance(local_store.backend, "latest", commit(local_store, "a"))
    commit(local_store, "b")
    head = commit(local_store, "c")  # two runs died before moving the channel
    assert withheld(shown(local_store), head) is None

    assert finish_publish(local_store, "latest") == head
    assert (shown(local_store).version, shown(local_store).history) == (3, [1])
    assert finish_publish(local_store, "latest") is None  # up to date
    assert finish_publish(local_store, "prod") is None  # a channel that does not exist yet


def test_withdrawn_or_foreign_versions_are_not_published(local_store: Store) -> None:
    backend = local_store.backend
    for row in "ab":
        channel_ops.advance(backend, "latest", commit(local_store, row))
    channel_ops.rollback(backend, "latest", local_store.manifest)
    head = commit(local_store, "c")  # committed past a withdrawn version 2
    assert withheld(shown(local_store), head) == "and it was rolled back from version 2"
    assert finish_publish(local_store, "latest") is None
    assert shown(local_store).version == 1

    for version in (1, 3, 1):  # moved back by hand, not rolled back
        channel_ops.move(backend, "prod", local_store.manifest(version))
    assert withheld(shown(local_store, "prod"), head) == "and it was moved back from version 3"
    assert finish_publish(local_store, "prod") is None

    channel_ops.move(backend, "latest", head)
    foreign, unnamed = commit(local_store, "d", "staging"), commit(local_store, "e", None)
    assert withheld(shown(local_store), foreign) == "which was committed for channel 'staging'"
    assert "names no channel" in (withheld(shown(local_store), unnamed) or "")
    assert finish_publish(local_store, "latest") is None
    assert shown(local_store).version == 3


def test_a_compaction_killed_before_its_move_is_published_by_the_next_run(
    local_store: Store,
) -> None:
    for row in "ab":
        channel_ops.advance(local_store.backend, "latest", commit(local_store, row))
    compacted = compact(local_store, "latest")  # the move that follows never happens
    assert (compacted.channel, shown(local_store).version) == ("latest", 2)
    assert finish_publish(local_store, "latest") == compacted
    assert shown(local_store).version == compacted.version
