"""The full refresh: ingest, encode every item and user, write a snapshot, index it, publish.

Everything runs shard by shard (shard = stable hash of the id), so no step
holds the whole catalogue: ingestion validates and renders one shard at a
time and stages its texts in the store, a worker encodes one shard's texts
at a time, each shard becomes its own Parquet partition, and the index is
built from the saved shards, each shard's vectors added by a task of its
own (see :mod:`marc_batch.pipeline.shard_indexes`). Where the shards run
is the caller's choice (``encode``, ``index_shards``): serially here, or as
Prefect tasks on threads or a Dask or Ray cluster in the flows. Finished
shards are checkpointed, so a re-run after a crash encodes only the shards
that were not finished. A BAHE model's users are read as behaviours, each
encoded once per model and kept in the store (:mod:`marc_batch.pipeline.behaviours`).
The index is built and
recall-checked before the commit: if it misses its target, the transaction
is aborted and the channel keeps pointing at the previous snapshot.
Conservation is checked before anything is committed: rows in = rows
embedded + rows quarantined. The channel moves only after the committed
snapshot has been re-read and verified against its manifest.
"""

from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.data.sharded import ingest_by_shard
from marc_batch.entities import Entity
from marc_batch.evaluate.compatibility import assessor
from marc_batch.index import IndexReport
from marc_batch.pipeline import steps
from marc_batch.pipeline.behaviours import BehaviourCounts, stage_run_behaviours
from marc_batch.pipeline.checkpoints import Checkpoints
from marc_batch.pipeline.indexes import StagedIndex, stage_index
from marc_batch.pipeline.shard_indexes import IndexRunner, index_serially, shard_parts
from marc_batch.pipeline.shards import (
    ShardRunner,
    collect_shards,
    encode_serially,
    run_jobs,
    shard_vectors,
    stage_catalogue,
)
from marc_batch.store.attachments import read_statistics
from marc_batch.store.manifest import CompatibilityRecord


class RefreshReport(BaseModel):
    """What a refresh published; ``marc-batch refresh --json`` prints it."""

    run_id: str
    version: int
    snapshot_id: str
    channel: str
    model_version: str
    rows: dict[Entity, int]
    quarantined: int
    encode: dict[Entity, dict[str, float]]
    indexes: dict[Entity, IndexReport]
    statistics: dict | None = None  # recorded with the snapshot: marc_batch.store.statistics
    compatibility: CompatibilityRecord | None = None  # across a model change (docs/store.md)
    behaviours: BehaviourCounts | None = None


def refresh(
    config: Config,
    model_version: str = "current",
    run_id: str | None = None,
    encode: ShardRunner = encode_serially,
    channel: str | None = None,
    index_shards: IndexRunner = index_serially,
) -> RefreshReport:
    """Re-encode everything with ``model_version`` and publish a full snapshot.

    ``encode`` runs the shards' encoding and ``index_shards`` their index
    building wherever the caller wants them: here, or on a cluster.
    """
    channel = channel or config.flows.channel
    with ingest_by_shard(config, config.store.shards, run_id=run_id) as catalogue:
        ingested = catalogue.report
        txn = steps.model_transaction(config, model_version, ingested.run_id)
        version = txn.model.version
        checkpoints = Checkpoints(txn.store.backend)
        jobs = stage_catalogue(checkpoints, version, catalogue)
    rows: dict[Entity, int] = {}
    indexes: dict[Entity, StagedIndex] = {}
    quality: dict[str, float] = {}
    with steps.aborting(txn):
        pending = [job.key for job in jobs[Entity.USER] if not job.done]
        behaviours = stage_run_behaviours(config, txn, checkpoints, pending)
        totals = run_jobs(encode, config, version, jobs)
        for entity, entity_jobs in jobs.items():
            rows[entity] = collect_shards(txn, checkpoints, entity_jobs)
            quality[f"{entity}.texts_per_second"] = totals[entity].texts_per_second
            quality[f"{entity}.padding_ratio"] = totals[entity].padding_ratio
        conservation = steps.check_conservation(ingested.entity_tables(), rows)
        for entity, entity_jobs in jobs.items():
            if entity is Entity.ITEM or config.index.users:
                vectors = shard_vectors(checkpoints, entity_jobs, txn.k)
                parts = shard_parts(config, checkpoints, entity_jobs, index_shards)
                indexes[entity] = stage_index(txn, entity, vectors, config.index, parts)
                quality.update(indexes[entity].quality)
        manifest = txn.commit(
            indexes=[staged.file for staged in indexes.values()],
            quality=quality,
            quarantine=steps.quarantine_counts(ingested.tables),
            conservation=conservation,
            channel=channel,
            describe=True,
            assess=assessor(config, txn.store),
        )
    protected = config.evaluate.compatibility.protected_channels
    steps.publish_run(txn.store, manifest, channel, checkpoints, jobs, protected)
    return RefreshReport(
        run_id=ingested.run_id,
        version=manifest.version,
        snapshot_id=manifest.snapshot_id,
        statistics=read_statistics(txn.store, manifest),
        compatibility=manifest.compatibility,
        channel=channel,
        model_version=version,
        rows=rows,
        quarantined=ingested.quarantined,
        encode={entity: stats.summary() for entity, stats in totals.items()},
        indexes={entity: staged.report for entity, staged in indexes.items()},
        behaviours=behaviours,
    )
