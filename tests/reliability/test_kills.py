"""Processes SIGKILLed mid-run: mid-shard, during the index build, between the commit and
the channel, during a channel move. Afterwards the published state is the old one (or the
complete new version), and a re-run publishes the right snapshot with nothing lost."""

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import marc_batch.pipeline.shards as shards_module
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.publish import publish
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store
from marc_batch.store.failpoints import COMMIT_STEPS
from marc_batch.store.gc import collect_garbage
from tests.pipeline.test_backfill import edit_items
from tests.reliability import worker
from tests.reliability.helpers import check_snapshot, published, rows_lost, same_content
from tests.tiny import config_for


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows per shard the encoder is asked to embed in this process."""
    seen: list[int] = []
    real = shards_module.encode_rows
    monkeypatch.setattr(
        shards_module, "encode_rows", lambda rt, part: seen.append(part.num_rows) or real(rt, part)
    )
    return seen


def saved_shards(store: Store) -> int:
    return sum(1 for f in store.backend.list("_checkpoints") if f.path.endswith(".rows.parquet"))


def saved_rows(store: Store) -> int:
    return sum(
        pq.read_metadata(io.BytesIO(store.backend.read_bytes(f.path))).num_rows
        for f in store.backend.list("_checkpoints")
        if f.path.endswith(".rows.parquet")
    )


@pytest.mark.parametrize("hang_at", ["shard:3", "index"])
def test_refresh_killed_mid_shard_or_mid_index_build_resumes(
    hang_at: str,
    tmp_path: Path,
    registry: Path,
    reference: dict[str, Store],
    encoded: list[int],
    ledger,
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    ready = tmp_path / "ready"
    worker.kill_when_ready(worker.start(config, "refresh", hang_at=hang_at, ready=ready), ready)
    assert published(store) == ([], {})
    done = saved_shards(store)
    assert done == (2 if hang_at == "shard:3" else 6)  # 3 item + 3 user shards in all

    report = refresh(config)
    assert len(encoded) == 6 - done  # finished shards are not encoded again
    check_snapshot(store, store.manifest(report.version))
    assert published(store) == ([1], {"latest": 1})
    assert same_content(store, reference["initial"])
    assert rows_lost(store, reference["initial"]) == 0
    assert list(store.backend.list("_checkpoints")) == []
    point = "mid-shard" if hang_at.startswith("shard") else "during the index build"
    ledger(
        "fault",
        flow="refresh",
        point=f"process SIGKILLed {point}",
        backend="local",
        outcome="nothing published",
        rerun=f"ok, {6 - done} of 6 shards encoded again",
        rows_lost=0,
    )


def test_backfill_killed_mid_shard_resumes(
    tmp_path: Path, registry: Path, reference: dict[str, Store], encoded: list[int], ledger
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")
    before = published(store)
    ready = tmp_path / "ready"
    worker.kill_when_ready(worker.start(config, "backfill", hang_at="shard:2", ready=ready), ready)
    assert published(store) == before
    assert saved_shards(store) == 1
    saved = saved_rows(store)

    encoded.clear()
    report = backfill(config)
    assert report.committed and report.parent_version == 1
    # Only the unfinished shards are encoded again: the saved one is reused.
    assert sum(encoded) + saved == sum(c.added + c.changed for c in report.changes.values())
    check_snapshot(store, store.manifest(report.version))
    assert published(store) == ([1, 2], {"latest": 2})
    assert same_content(store, reference["edited"])
    assert rows_lost(store, reference["edited"]) == 0
    ledger(
        "fault",
        flow="backfill",
        point="process SIGKILLed mid-shard",
        backend="local",
        outcome="nothing published",
        rerun="ok, only unfinished shards encoded",
        rows_lost=0,
    )


def stray_files(store: Store) -> list[str]:
    """Files no manifest lists, outside the log and the channels (what a crash leaves)."""
    listed = {path for v in store.versions() for path in store.manifest(v).all_paths()}
    return [
        info.path
        for prefix in ("data", "deletes", "indexes", "_checkpoints")
        for info in store.backend.list(prefix)
        if info.path not in listed
    ]


@pytest.mark.parametrize("step", COMMIT_STEPS)
@pytest.mark.parametrize("run", ["refresh", "backfill"])
def test_a_run_killed_at_any_step_of_its_commit_leaves_old_or_new_and_a_rerun_completes(
    run: str, step: str, tmp_path: Path, registry: Path, reference: dict[str, Store], ledger
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    refresh(config)
    edit_items(tmp_path / "catalogue" / "items.csv")
    old, new = reference["initial"], reference["edited"]

    assert worker.died_at_failpoint(worker.start(config, run, failpoint=step))
    versions, channels = published(store)
    shown = old if channels["latest"] == 1 else new
    assert same_content(store, shown), f"latest shows a torn snapshot after a kill at {step}"
    if len(versions) > 1:  # the manifest made it: the new version is whole
        assert versions == [1, 2]
        check_snapshot(store, store.manifest(2))
        assert same_content(store, new, ref=2)

    if run == "refresh":
        report = refresh(config)
        assert published(store) == ([*versions, report.version], {"latest": report.version})
        rerun = "ok"
    elif versions == [1, 2] and channels["latest"] == 1:
        # Committed, never published: the re-run verifies and publishes it, then finds no work.
        assert not backfill(config).committed
        assert published(store) == ([1, 2], {"latest": 2})
        rerun = "published the committed version 2; then nothing left to do"
    else:
        report = backfill(config)
        assert report.committed == (versions == [1])
        rerun = "ok" if report.committed else "ok (nothing left to do)"
    latest = store.resolve("latest")
    check_snapshot(store, latest)
    assert same_content(store, new)
    assert rows_lost(store, new) == 0
    collect_garbage(store, keep=1, grace_seconds=0)
    assert stray_files(store) == []
    assert same_content(store, new)
    outcome = {1: "old version shown"}.get(channels["latest"], "new version shown")
    ledger(
        "fault",
        flow=run,
        point=f"process SIGKILLed in the commit at {step}",
        backend="local",
        outcome=outcome + (", new version committed" if len(versions) > 1 else ""),
        rerun=rerun,
        rows_lost=0,
    )


@pytest.mark.parametrize("failpoint", ["channel.staged", "channel.swapped"])
def test_publish_killed_during_the_channel_move(
    failpoint: str, tmp_path: Path, registry: Path, ledger
) -> None:
    config = config_for(tmp_path, registry)
    store = Store(config.store)
    refresh(config)
    refresh(config)
    publish(store, 1, "prod")
    assert worker.died_at_failpoint(
        worker.start(config, "publish", ref="2", channel="prod", failpoint=failpoint)
    )
    moved = published(store)[1]["prod"]
    assert moved == (1 if failpoint == "channel.staged" else 2)  # old or new, never torn

    assert publish(store, 2, "prod").version == 2
    assert published(store) == ([1, 2], {"latest": 2, "prod": 2})
    check_snapshot(store, store.resolve("prod"))
    ledger(
        "fault",
        flow="publish",
        point=f"process SIGKILLed during the channel move ({failpoint})",
        backend="local",
        outcome="channel unchanged" if moved == 1 else "channel moved, caller never told",
        rerun="ok",
        rows_lost=0,
    )
