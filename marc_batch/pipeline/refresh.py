"""The full refresh: ingest, encode every item and user, write a snapshot, index it, publish.

Each entity is encoded shard by shard (shard = stable hash of the id), so a
worker holds one shard's texts at a time, and each shard becomes its own
Parquet partition. Where the shards run is the caller's choice (``encode``):
serially here, or as Prefect tasks on threads or a Dask or Ray cluster in
the flows. Finished shards are checkpointed, so a re-run after a crash
encodes only the shards that were not finished. The index is built and
recall-checked before the commit: if it misses its target, the transaction
is aborted and the channel keeps pointing at the previous snapshot.
Conservation is checked before anything is committed: rows in = rows
embedded + rows quarantined. The channel moves only after the committed
snapshot has been re-read and verified against its manifest.
"""

from pathlib import Path

from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.data.ingest import TableReport, ingest
from marc_batch.errors import ConservationError
from marc_batch.index import IndexReport
from marc_batch.model.artifact import MANIFEST, file_sha256
from marc_batch.model.registry import Registry
from marc_batch.pipeline.checkpoints import Checkpoints
from marc_batch.pipeline.indexes import publish_index
from marc_batch.pipeline.publish import promote_new
from marc_batch.pipeline.shards import (
    ShardRunner,
    collect_shards,
    encode_serially,
    run_jobs,
    stage_shards,
)
from marc_batch.store import Conservation, Store, Transaction

ENTITY_TEXTS = {"item": "item_texts", "user": "user_texts"}


class RefreshReport(BaseModel):
    """What a refresh published; ``marc-batch refresh --json`` prints it."""

    run_id: str
    version: int
    snapshot_id: str
    channel: str
    model_version: str
    rows: dict[str, int]
    quarantined: int
    encode: dict[str, dict[str, float]]
    indexes: dict[str, IndexReport]


def check_conservation(
    tables: dict[str, TableReport], embedded: dict[str, int]
) -> dict[str, Conservation]:
    """Rows in = rows embedded + rows quarantined, per entity, or nothing is published.

    Returns the figures, which the manifest records.
    """
    figures = {}
    for entity, counts in tables.items():
        if counts.rows_in != embedded[entity] + counts.quarantined:
            raise ConservationError(
                f"{entity}s: {counts.rows_in} rows in but {embedded[entity]} embedded and "
                f"{counts.quarantined} quarantined; refusing to publish"
            )
        figures[entity] = Conservation(
            rows_in=counts.rows_in, embedded=embedded[entity], quarantined=counts.quarantined
        )
    return figures


def quarantine_counts(tables: dict[str, TableReport]) -> dict[str, int]:
    """``table.REASON`` -> rows, as the manifest records them."""
    return {
        f"{table}.{reason}": count
        for table, entry in tables.items()
        for reason, count in entry.reasons.items()
    }


def model_transaction(config: Config, model_version: str, run_id: str, **options) -> Transaction:
    """A transaction for embeddings made by a registered model version (pinned by its hash)."""
    registry = Registry(Path(config.model.registry))
    version = registry.resolve(model_version)
    artifact = registry.config(version)
    return Transaction(
        Store(config.store),
        model_version=version,
        model_sha256=file_sha256(registry.path(version) / MANIFEST),
        k=artifact.model.k,
        normalization="l2",
        run_id=run_id,
        **options,
    )


def refresh(
    config: Config,
    model_version: str = "current",
    run_id: str | None = None,
    encode: ShardRunner = encode_serially,
    channel: str | None = None,
) -> RefreshReport:
    """Re-encode everything with ``model_version`` and publish a full snapshot."""
    channel = channel or config.flows.channel
    catalogue, ingested = ingest(config, run_id=run_id)
    txn = model_transaction(config, model_version, ingested.run_id)
    version = txn.model.version
    txn.quarantine = quarantine_counts(ingested.tables)
    checkpoints = Checkpoints(txn.store.backend)
    jobs = {
        entity: stage_shards(
            checkpoints,
            version,
            entity,
            getattr(catalogue, attribute),
            config.store.shards,
        )
        for entity, attribute in ENTITY_TEXTS.items()
    }
    # Every text is staged now; holding the catalogue through encoding and indexing
    # would only add its size to the run's peak memory.
    del catalogue
    encoded, indexes, rows = {}, {}, {}
    try:
        totals = run_jobs(encode, config, version, jobs)
        for entity, entity_jobs in jobs.items():
            stats = totals[entity]
            ids, vectors = collect_shards(txn, checkpoints, entity_jobs)
            rows[entity] = len(ids)
            encoded[entity] = stats.summary()
            txn.quality.update(
                {
                    f"{entity}.texts_per_second": stats.texts_per_second,
                    f"{entity}.padding_ratio": stats.padding_ratio,
                }
            )
            if entity == "item" or config.index.users:
                indexes[entity] = publish_index(txn, entity, ids, vectors, config.index)
        txn.conservation = check_conservation(ingested.entity_tables(), rows)
        manifest = txn.commit([])
    except BaseException:
        txn.abort()
        raise
    promote_new(txn.store, manifest, channel)
    checkpoints.clear([job.key for entity_jobs in jobs.values() for job in entity_jobs])
    return RefreshReport(
        run_id=ingested.run_id,
        version=manifest.version,
        snapshot_id=manifest.snapshot_id,
        channel=channel,
        model_version=version,
        rows=rows,
        quarantined=ingested.quarantined,
        encode=encoded,
        indexes=indexes,
    )
