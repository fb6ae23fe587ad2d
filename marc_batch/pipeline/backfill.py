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
size, and a fresh build otherwise; either way recall is proved again over
every live vector. Indexes of untouched entities are carried over as they are.
"""

from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.data.ingest import TableReport, ingest, ingest_items, new_run_id
from marc_batch.errors import StoreError
from marc_batch.index import IndexReport
from marc_batch.index.build import factory_for
from marc_batch.index.update import ParentIndex
from marc_batch.pipeline.checkpoints import Checkpoints
from marc_batch.pipeline.indexes import publish_index
from marc_batch.pipeline.publish import promote_new
from marc_batch.pipeline.refresh import check_conservation, model_transaction, quarantine_counts
from marc_batch.pipeline.shards import (
    ShardRunner,
    collect_shards,
    encode_serially,
    run_jobs,
    stage_shards,
)
from marc_batch.store import IndexFile, Manifest, Store, Transaction
from marc_batch.store.channels import read_channel
from marc_batch.store.incremental import ChangePlan, plan_change
from marc_batch.store.reader import embedding_matrix, merged_table, read_index_file


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
    rows: dict[str, int]
    changes: dict[str, EntityChange]
    quarantined: int
    encode: dict[str, dict[str, float]]
    indexes: dict[str, IndexReport]


def _parent(store: Store, channel: str) -> Manifest:
    """The newest version, which the channel must be showing (or the channel is new)."""
    parent = store.head()
    if parent is None:
        raise StoreError("nothing to backfill: the store has no snapshot yet; run a refresh first")
    found = read_channel(store.backend, channel)
    if found is not None and found[0].version != parent.version:
        raise StoreError(
            f"channel {channel!r} shows version {found[0].version} but the newest is "
            f"{parent.version}; a backfill builds on the newest: publish it or run a refresh"
        )
    return parent


def _catalogue(
    config: Config, items: Path | None, run_id: str
) -> tuple[dict[str, pa.Table], dict[str, TableReport]]:
    """Texts and ingestion counts per entity: the full catalogue, or just an items file."""
    if items is not None:
        texts, report, _ = ingest_items(config, items, run_id)
        return {"item": texts}, {"item": report}
    catalogue, ingested = ingest(config, run_id=run_id)
    texts = {"item": catalogue.item_texts, "user": catalogue.user_texts}
    return texts, ingested.entity_tables()


def _live_vectors(
    store: Store, parent: Manifest, entity: str, touched: pa.Array, ids: pa.Array, new: np.ndarray
) -> tuple[pa.ChunkedArray, pa.ChunkedArray, np.ndarray]:
    """The parent's ids, then every live id and vector after the change (untouched rows first)."""
    table = merged_table(store, parent, entity, ("id", "embedding"))
    kept = table.filter(pc.invert(pc.is_in(table["id"], value_set=touched)))
    all_ids = pa.chunked_array([*kept["id"].chunks, *pa.chunked_array([ids]).chunks], pa.string())
    vectors = np.vstack([embedding_matrix(kept, parent.k).astype(np.float32), new])
    return table["id"], all_ids, vectors


def _parent_index(
    store: Store, parent: Manifest, entry: IndexFile | None, factory: str
) -> faiss.Index | None:
    """The parent's index if it has the factory the new one needs, so it can change in place."""
    if entry is None or entry.index_type != factory:
        return None
    data = read_index_file(store, parent, entry)
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


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
    parent = _parent(store, channel)
    run_id = run_id or new_run_id()
    texts, tables = _catalogue(config, items, run_id)
    txn = model_transaction(config, parent.model.version, run_id, mode="incremental")
    version = txn.model.version
    txn.quarantine = quarantine_counts({f"{e}s": table for e, table in tables.items()})
    plans: dict[str, ChangePlan] = {
        entity: plan_change(store, parent, entity, table, complete=items is None)
        for entity, table in texts.items()
    }
    checkpoints = Checkpoints(store.backend)
    jobs = {
        entity: stage_shards(checkpoints, version, entity, plan.encode, config.store.shards)
        for entity, plan in plans.items()
    }
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
    if not any(plan.encode.num_rows or len(plan.removed) for plan in plans.values()):
        txn.abort()
        return _report(run_id, False, parent, parent, channel, changes, tables, {}, {})
    encoded, indexes, embedded = {}, {}, {}
    try:
        new_rows = {}
        totals = run_jobs(encode, config, version, jobs)
        for entity, plan in plans.items():
            stats = totals[entity]
            new_rows[entity] = collect_shards(txn, checkpoints, jobs[entity])
            if len(plan.removed):
                txn.delete(entity, plan.removed)
            embedded[entity] = len(new_rows[entity][0]) + plan.unchanged
            encoded[entity] = stats.summary()
        txn.conservation = check_conservation(tables, embedded)
        indexes = _update_indexes(config, store, parent, txn, plans, new_rows)
        manifest = txn.commit([])
    except BaseException:
        txn.abort()
        raise
    promote_new(txn.store, manifest, channel)
    checkpoints.clear([job.key for entity_jobs in jobs.values() for job in entity_jobs])
    return _report(run_id, True, manifest, parent, channel, changes, tables, encoded, indexes)


def _update_indexes(
    config: Config,
    store: Store,
    parent: Manifest,
    txn: Transaction,
    plans: dict[str, ChangePlan],
    new_rows: dict[str, tuple[pa.ChunkedArray, np.ndarray]],
) -> dict[str, IndexReport]:
    """Update the indexes of changed entities; carry the others over with their figures."""
    wanted = {"item", "user"} if config.index.users else {"item"}
    existing = {entry.entity: entry for entry in parent.indexes}
    reports = {}
    for entity in sorted(wanted | set(existing)):
        plan = plans.get(entity)
        touched = (
            pa.concat_arrays([plan.encode["id"].combine_chunks(), plan.removed])
            if plan is not None
            else pa.array([], pa.string())
        )
        if entity in existing and not len(touched):
            txn.keep_index(existing[entity])
            txn.quality.update(
                {k: v for k, v in parent.quality.items() if k.startswith(f"{entity}.")}
            )
            continue
        new_ids, new_vectors = new_rows.get(entity, (pa.chunked_array([], pa.string()), None))
        if new_vectors is None:
            new_vectors = np.empty((0, parent.k), np.float32)
        parent_ids, ids, vectors = _live_vectors(
            store, parent, entity, touched, new_ids.combine_chunks(), new_vectors
        )
        index = _parent_index(
            store, parent, existing.get(entity), factory_for(len(ids), config.index)
        )
        in_place = ParentIndex(index, parent_ids, touched) if index is not None else None
        reports[entity] = publish_index(txn, entity, ids, vectors, config.index, in_place)
    return reports


def _report(
    run_id: str,
    committed: bool,
    manifest: Manifest,
    parent: Manifest,
    channel: str,
    changes: dict[str, EntityChange],
    tables: dict[str, TableReport],
    encoded: dict[str, dict[str, float]],
    indexes: dict[str, IndexReport],
) -> BackfillReport:
    return BackfillReport(
        run_id=run_id,
        committed=committed,
        version=manifest.version,
        snapshot_id=manifest.snapshot_id,
        parent_version=parent.version,
        channel=channel,
        model_version=manifest.model.version,
        rows=manifest.rows,
        changes=changes,
        quarantined=sum(table.quarantined for table in tables.values()),
        encode=encoded,
        indexes=indexes,
    )
