"""A refresh and a backfill running at the same time on one channel: one wins, the other gets
a clear SnapshotConflict and publishes nothing, the channel stays consistent, a re-run works."""

import threading
from pathlib import Path

import pytest

from marc_batch.errors import SnapshotConflict
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, Transaction
from marc_batch.store.gc import collect_garbage
from tests.pipeline.test_backfill import edit_items
from tests.reliability.helpers import check_snapshot, published, rows_lost, same_content
from tests.tiny import config_for


def race(monkeypatch: pytest.MonkeyPatch, first, second, second_mode: str):
    """Run ``second`` in a thread up to its commit; run ``first`` to the end meanwhile.

    Returns ``first``'s result and ``second``'s result or exception.
    """
    waiting, go = threading.Event(), threading.Event()
    real = Transaction.commit

    def gated(self, **record):
        if self.mode == second_mode and not go.is_set():
            waiting.set()
            assert go.wait(120)
        return real(self, **record)

    monkeypatch.setattr(Transaction, "commit", gated)
    outcome: dict[str, object] = {}

    def run_second() -> None:
        try:
            outcome["result"] = second()
        except Exception as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run_second)
    thread.start()
    try:
        assert waiting.wait(120), "the second run never reached its commit"
        winner = first()
    finally:
        go.set()
        thread.join(120)
    monkeypatch.setattr(Transaction, "commit", real)
    return winner, outcome


def test_a_refresh_committed_during_a_backfill_wins(
    tmp_path: Path,
    registry: Path,
    reference: dict[str, Store],
    monkeypatch: pytest.MonkeyPatch,
    ledger,
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")

    winner, loser = race(
        monkeypatch, lambda: refresh(config), lambda: backfill(config), "incremental"
    )
    assert isinstance(loser.get("error"), SnapshotConflict), loser
    assert "version 2 replaced every row" in str(loser["error"])
    assert published(store) == ([1, 2], {"latest": 2}) and winner.version == 2
    check_snapshot(store, store.manifest(2))
    assert same_content(store, reference["edited"])

    again = backfill(config)  # builds on the refresh, which already holds the change
    assert not again.committed and published(store) == ([1, 2], {"latest": 2})
    assert rows_lost(store, reference["edited"]) == 0
    # The loser's files and checkpoints are invisible, and gc reclaims them.
    report = collect_garbage(store, keep=1, grace_seconds=0)
    assert any(p.startswith("_checkpoints/") for p in report.deleted_files)
    assert list(store.backend.list("_checkpoints")) == []
    assert same_content(store, reference["edited"])
    ledger(
        "concurrency",
        case="backfill in flight while a refresh commits",
        winner="refresh",
        loser="backfill: SnapshotConflict",
        rerun="ok (nothing left to do)",
        rows_lost=0,
    )


def test_a_backfill_committed_during_a_refresh_wins(
    tmp_path: Path,
    registry: Path,
    reference: dict[str, Store],
    monkeypatch: pytest.MonkeyPatch,
    ledger,
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")

    winner, loser = race(
        monkeypatch, lambda: backfill(config), lambda: refresh(config), "overwrite"
    )
    assert isinstance(loser.get("error"), SnapshotConflict), loser
    assert "it would undo that version" in str(loser["error"])
    assert winner.committed and winner.version == 2
    assert published(store) == ([1, 2], {"latest": 2})
    check_snapshot(store, store.manifest(2))
    assert same_content(store, reference["edited"])

    again = refresh(config)
    assert again.version == 3 and published(store) == ([1, 2, 3], {"latest": 3})
    check_snapshot(store, store.manifest(3))
    assert same_content(store, reference["edited"])
    assert rows_lost(store, reference["edited"]) == 0
    ledger(
        "concurrency",
        case="refresh in flight while a backfill commits",
        winner="backfill",
        loser="refresh: SnapshotConflict",
        rerun="ok (version 3)",
        rows_lost=0,
    )
