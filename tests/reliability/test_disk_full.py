"""The disk fills up while a refresh writes: a one-line StoreError, nothing half-published,
the partial file given back, and a re-run after space is freed completes."""

import errno
from pathlib import Path

import pytest

from marc_batch.errors import StoreError
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store
from marc_batch.store.backends.local import LocalBackend
from tests.reliability.helpers import check_snapshot, published, rows_lost, same_content
from tests.tiny import config_for


class FullDisk:
    """A file that accepts ``room`` bytes, then fails like a full disk."""

    def __init__(self, handle, room: int) -> None:
        self.handle = handle
        self.room = room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.handle.write(bytes(memoryview(data)[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name: str):
        return getattr(self.handle, name)

    def __enter__(self) -> "FullDisk":
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


# (what is being written, the path it goes to, bytes that fit before the disk is full)
POINTS = [
    ("a shard's checkpoint", "_checkpoints/", 100),
    ("a data file, mid-file", "data/entity=item/", 1_000),
    ("an index file", "indexes/", 0),
    ("the manifest", "_manifests/", 10),
    ("the quarantine file", "quarantine/", 0),
    ("the channel pointer", "_channels/", 0),
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, registry: Path) -> Store:
    config = config_for(tmp_path_factory.mktemp("reference"), registry)
    with_a_bad_row(config.sources.items.path)
    refresh(config)
    return Store(config.store)


def with_a_bad_row(items: str) -> None:
    path = Path(items)
    path.write_text(path.read_text() + "999,,2001,drama\n")  # quarantined: a blank title


@pytest.mark.parametrize(("what", "where", "room"), POINTS, ids=[p[0] for p in POINTS])
def test_a_full_disk_fails_one_line_and_a_rerun_completes(
    what: str,
    where: str,
    room: int,
    tmp_path: Path,
    registry: Path,
    reference: Store,
    monkeypatch: pytest.MonkeyPatch,
    ledger,
) -> None:
    config = config_for(tmp_path, registry)
    with_a_bad_row(config.sources.items.path)
    store = Store(config.store)
    refresh(config)
    before = published(store)

    real = LocalBackend._create
    hits: list[Path] = []

    def filling(self, target: Path):
        handle = real(self, target)
        if where in target.relative_to(self.root).as_posix():
            hits.append(target)
            return FullDisk(handle, room)
        return handle

    monkeypatch.setattr(LocalBackend, "_create", filling)
    with pytest.raises(StoreError, match="no space left on device") as failure:
        refresh(config)
    assert hits, f"nothing was written to {where}"
    assert "\n" not in str(failure.value)
    assert not any(path.exists() for path in hits), "a partial file was left taking space"
    versions, channels = published(store)
    if where == "_channels/":
        # The manifest was committed; only the pointer could not move. Readers of the
        # channel still see the previous version, and the new one is complete.
        assert versions == [*before[0], versions[-1]] and channels == before[1]
        check_snapshot(store, store.manifest(versions[-1]))
        outcome = "StoreError; version committed, channel unmoved"
    else:
        assert (versions, channels) == before
        outcome = "StoreError, nothing published"

    monkeypatch.setattr(LocalBackend, "_create", real)
    report = refresh(config)
    check_snapshot(store, store.manifest(report.version))
    assert published(store)[1]["latest"] == report.version
    assert same_content(store, reference)
    assert rows_lost(store, reference) == 0
    ledger(
        "fault",
        flow="refresh",
        point=f"disk full (ENOSPC) writing {what}",
        backend="local",
        outcome=outcome,
        rerun="ok",
        rows_lost=0,
    )
