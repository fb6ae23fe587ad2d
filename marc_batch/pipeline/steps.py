"""The steps every run that writes a snapshot shares, in the order a run takes them.

1. :func:`model_transaction` opens a transaction pinned to one registered
   model version (by the hash of its manifest).
2. The run writes rows and indexes inside :func:`aborting`, so any failure
   (a bad shard, an index that misses recall, a kill signal) leaves no
   visible trace: the data files it wrote are never listed by a manifest.
3. :func:`check_conservation` proves rows in = rows embedded + rows
   quarantined before anything is committed, and the figures go into the
   manifest with :func:`quarantine_counts`.
4. After ``Transaction.commit``, :func:`publish_run` verifies the committed
   version byte for byte, moves the channel forward, and only then clears the
   run's checkpoints: a run killed before the end re-encodes nothing.
"""

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from marc_batch.config import Config
from marc_batch.data.ingest import TableReport
from marc_batch.entities import Entity
from marc_batch.errors import ConservationError, IncompatibleModel
from marc_batch.model.artifact import MANIFEST, check_user_encoder, file_sha256
from marc_batch.model.registry import Registry
from marc_batch.pipeline.checkpoints import Checkpoints
from marc_batch.pipeline.publish import promote_new
from marc_batch.pipeline.shards import ShardJob
from marc_batch.store import Conservation, Manifest, Store, Transaction
from marc_batch.store.commit import Mode


def model_transaction(
    config: Config, model_version: str, run_id: str, mode: Mode = "overwrite"
) -> Transaction:
    """A transaction for embeddings made by a registered model version (pinned by its hash)."""
    registry = Registry(Path(config.model.registry))
    version = registry.resolve(model_version)
    artifact = registry.config(version)  # a missing or broken artifact is one clear error
    check_user_encoder(config.model, artifact, version)
    return Transaction(
        Store(config.store),
        model_version=version,
        model_sha256=file_sha256(registry.path(version) / MANIFEST),
        k=artifact.model.k,
        normalization="l2",
        run_id=run_id,
        mode=mode,
    )


@contextmanager
def aborting(txn: Transaction) -> Iterator[Transaction]:
    """Abort ``txn`` (delete its unlisted files) if the block fails for any reason."""
    try:
        yield txn
    except BaseException:
        txn.abort()
        raise


def check_conservation(
    tables: Mapping[Entity, TableReport], embedded: Mapping[Entity, int]
) -> dict[Entity, Conservation]:
    """Rows in = rows embedded + rows quarantined, per entity, or nothing is published.

    Returns the figures, which the manifest records.
    """
    figures = {}
    for entity, counts in tables.items():
        if counts.rows_in != embedded[entity] + counts.quarantined:
            raise ConservationError(
                f"{entity.table}: {counts.rows_in} rows in but {embedded[entity]} embedded and "
                f"{counts.quarantined} quarantined; refusing to publish"
            )
        figures[entity] = Conservation(
            rows_in=counts.rows_in, embedded=embedded[entity], quarantined=counts.quarantined
        )
    return figures


def quarantine_counts(tables: Mapping[str, TableReport]) -> dict[str, int]:
    """``table.REASON`` -> rows, as the manifest records them (keyed by source table)."""
    return {
        f"{table}.{reason}": count
        for table, entry in tables.items()
        for reason, count in entry.reasons.items()
    }


def publish_run(
    store: Store,
    manifest: Manifest,
    channel: str,
    checkpoints: Checkpoints,
    jobs: Mapping[Entity, list[ShardJob]],
    protected: Collection[str] = (),
) -> None:
    """Verify the committed version, move ``channel`` to it, then forget the run's shards.

    A protected channel that refuses the version (another model, not shown
    compatible) stays where it was; the run's work is committed all the
    same, so its shards are forgotten before the refusal is raised.
    """
    keys = [job.key for entity_jobs in jobs.values() for job in entity_jobs]
    try:
        promote_new(store, manifest, channel, protected)
    except IncompatibleModel:
        checkpoints.clear(keys)
        raise
    checkpoints.clear(keys)
