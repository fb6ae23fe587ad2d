"""The backfill: encode only what changed since the published snapshot, commit it incrementally.

The catalogue (or a file of new and changed items) is compared with the
newest snapshot in DuckDB: new ids and ids whose ``text_hash`` changed are
encoded, ids the full catalogue no longer has are deleted, and the change is
committed as an incremental snapshot that references its parent's files.
GPU time and bytes written grow with the change, not with the catalogue.

The embeddings are made with the parent's model version, never ``current``:
an incremental snapshot must stay in one embedding space (a new model means
a full refresh). The index of an entity that changed is the parent's index
with the touched ids removed and the new vectors added, when its shape
(Flat, or IVF with the same number of lists) still fits the catalogue's
size, and a fresh build otherwise; either way recall is proved again, on
queries near the change and across the catalogue, the live vectors read one
file at a time. Indexes of untouched entities are carried over as they are.
"""

from collections.abc import Collection
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.data.ingest import TableReport, ingest, ingest_items, new_run_id
from marc_batch.entities import Entity
from marc_batch.errors import StoreError
from marc_batch.index import IndexReport
from marc_batch.index.vectors import Vectors
from marc_batch.pipeline.behaviours import BehaviourCounts, stage_run_behaviours
from marc_batch.pipeline.checkpoints import Checkpoints
from marc_batch.pipeline.indexes import StagedIndex, restage_index
from marc_batch.pipeline.publish import finish_publish, withheld
from marc_batch.pipeline.shards import (
    ShardRunner,
    collect_shards,
    encode_serially,
    run_jobs,
    shard_vectors,
    stage_all,
)
from marc_batch.pipeline.steps import (
    aborting,
    check_conservation,
    model_transaction,
    publish_run,
    quarantine_counts,
)
from marc_batch.store import IndexFile, Manifest, Store, Transaction
from marc_batch.store.attachments import read_statistics
from marc_batch.store.channels import read_channel
from marc_batch.store.incremental import ChangePlan, plan_change


class EntityChange(BaseModel):
    rows_in: int
    quarantined: int
    added: int
    changed: int
    removed: int
    unchanged: int


class BackfillReport(BaseModel):
    """What a backfill changed; ``committed`` is False when there was nothing to do."""

    run_id: str
    committed: bool
    version: int
    snapshot_id: str
    parent_version: int
    channel: str
    model_version: str
    rows: dict[Entity, int]
    changes: dict[Entity, EntityChange]
    quarantined: int
    encode: dict[Entity, dict[str, float]]
    indexes: dict[Entity, IndexReport]
    statistics: dict | None = None  # recorded with the snapshot: marc_batch.store.statistics
    behaviours: BehaviourCounts | None = None


def _parent(store: Store, channel: str, protected: Collection[str]) -> Manifest:
    """The newest version, which the channel must be showing (or the channel is new).

    A backfill diffs against one snapshot, and readers of the channel must get
    exactly that snapshot plus the change. A newest version that a crashed run
    committed for this channel but never published is published first
    (verified, see :func:`finish_publish`), so the re-run finishes that job;
    one the channel was rolled back from, or that is not this channel's, is
    refused: building on it would publish it behind the back of whoever
    withdrew it.
    """
    finish_publish(store, channel, protected)
    parent = store.head()
    if parent is None:
        raise StoreError("nothing to backfill: the store has no snapshot yet; run a refresh first")
    found = read_channel(store.backend, channel)
    if found is not None and found[0].version != parent.version:
        pointer = found[0]
        why = withheld(pointer, parent) or "which it has not been moved to"
        raise StoreError(
            f"channel {channel!r} shows version {pointer.version} but the newest is "
            f"{parent.version}, {why}; a backfill builds on the newest: publish version "
            f"{parent.version} or run a refresh"
        )
    return parent


def _catalogue(
    config: Config, items: Path | None, run_id: str
) -> tuple[dict[Entity, pa.Table], dict[Entity, TableReport]]:
    """Texts and ingestion counts per entity: the full catalogue, or just an items file."""
    if items is not None:
        texts, report, _ = ingest_items(config, items, run_id)
        return {Entity.ITEM: texts}, {Entity.ITEM: report}
    catalogue, ingested = ingest(config, run_id=run_id)
    return catalogue.texts(), ingested.entity_tables()


def backfill(
    config: Config,
    items: Path | None = None,
    run_id: str | None = None,
    encode: ShardRunner = encode_serially,
    channel: str | None = None,
) -> BackfillReport:
    """Encode new and changed rows, delete removed ones, and publish an incremental snapshot.

    Without ``items`` the configured catalogue is compared whole (items and
    users, deletions included); with ``items`` that file holds new or changed
    items only and nothing is deleted.
    """
    channel = channel or config.flows.channel
    store = Store(config.store)
    protected = config.evaluate.compatibility.protected_channels
    parent = _parent(store, channel, protected)
    run_id = run_id or new_run_id()
    texts, tables = _catalogue(config, items, run_id)
    txn = model_transaction(config, parent.model.version, run_id, mode="incremental")
    version = txn.model.version
    plans: dict[Entity, ChangePlan] = {
        entity: plan_change(store, parent, entity, table, complete=items is None)
        for entity, table in texts.items()
    }
    checkpoints = Checkpoints(store.backend)
    jobs = stage_all(
        checkpoints, version, {e: plan.encode for e, plan in plans.items()}, config.store.shards
    )
    changes = {
        entity: EntityChange(
            rows_in=tables[entity].rows_in,
            quarantined=tables[entity].quarantined,
            added=plan.added,
            changed=plan.changed,
            removed=len(plan.removed),
            unchanged=plan.unchanged,
        )
        for entity, plan in plans.items()
    }
    report = BackfillReport(
        run_id=run_id,
        committed=False,
        version=parent.version,
        snapshot_id=parent.snapshot_id,
        parent_version=parent.version,
        channel=channel,
        model_version=version,
        rows=parent.rows,
        changes=changes,
        quarantined=sum(table.quarantined for table in tables.values()),
        encode={},
        indexes={},
    )
    if not any(plan.encode.num_rows or len(plan.removed) for plan in plans.values()):
        txn.abort()
        return report
    with aborting(txn):
        embedded = {}
        pending = [job.key for job in jobs.get(Entity.USER, []) if not job.done]
        behaviours = stage_run_behaviours(config, txn, checkpoints, pending)
        totals = run_jobs(encode, config, version, jobs)
        for entity, plan in plans.items():
            embedded[entity] = collect_shards(txn, checkpoints, jobs[entity]) + plan.unchanged
            if len(plan.removed):
                txn.delete(entity, plan.removed)
        conservation = check_conservation(tables, embedded)
        new_rows = {
            entity: shard_vectors(checkpoints, entity_jobs, txn.k)
            for entity, entity_jobs in jobs.items()
        }
        indexes, kept = _update_indexes(config, parent, txn, plans, new_rows)
        manifest = txn.commit(
            indexes=[*kept, *(staged.file for staged in indexes.values())],
            quality=_quality(parent, indexes, kept),
            quarantine=quarantine_counts({e.table: table for e, table in tables.items()}),
            conservation=conservation,
            channel=channel,
            describe=True,
        )
    publish_run(store, manifest, channel, checkpoints, jobs, protected)
    return report.model_copy(
        update={
            "committed": True,
            "version": manifest.version,
            "snapshot_id": manifest.snapshot_id,
            "rows": manifest.rows,
            "statistics": read_statistics(store, manifest),
            "encode": {entity: stats.summary() for entity, stats in totals.items()},
            "indexes": {entity: staged.report for entity, staged in indexes.items()},
            "behaviours": behaviours,
        }
    )


def _update_indexes(
    config: Config,
    parent: Manifest,
    txn: Transaction,
    plans: dict[Entity, ChangePlan],
    new_rows: dict[Entity, Vectors],
) -> tuple[dict[Entity, StagedIndex], list[IndexFile]]:
    """Restage the indexes of changed entities; the parent's others are kept as they are."""
    wanted = {Entity.ITEM, Entity.USER} if config.index.users else {Entity.ITEM}
    existing = {Entity(entry.entity): entry for entry in parent.indexes}
    staged, kept = {}, []
    for entity in sorted(wanted | set(existing)):
        plan = plans.get(entity)
        touched = (
            pa.concat_arrays([plan.encode["id"].combine_chunks(), plan.removed])
            if plan is not None
            else pa.array([], pa.string())
        )
        if entity in existing and not len(touched):
            kept.append(existing[entity])
            continue
        added = new_rows.get(entity, Vectors(0, parent.k, lambda: iter(())))
        staged[entity] = restage_index(txn, parent, entity, touched, added, config.index)
    return staged, kept


def _quality(
    parent: Manifest, staged: dict[Entity, StagedIndex], kept: list[IndexFile]
) -> dict[str, float]:
    """The proofs of the new indexes, and the parent's figures of the indexes kept."""
    quality = {}
    for entry in kept:
        quality.update(
            {k: v for k, v in parent.quality.items() if k.startswith(f"{entry.entity}.")}
        )
    for index in staged.values():
        quality.update(index.quality)
    return quality
