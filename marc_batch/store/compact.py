"""Compaction: rewrite a long chain of incremental layers as one fresh set of files.

Readers of a compacted snapshot read each id once instead of merging every
layer. The content is unchanged, so the new version keeps the head's index
files, metrics and quarantine counts, and concurrent incremental publishers
can rebase on it without a conflict.
"""

import pyarrow.compute as pc

from marc_batch.entities import ENTITIES
from marc_batch.errors import StoreError
from marc_batch.store.commit import Transaction
from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import merged_table
from marc_batch.store.store import Store
from marc_batch.store.writer import row_schema


def compact(store: Store, channel: str | None = None) -> Manifest:
    """Commit the head's live rows as one fresh layer; publishing it is the caller's choice.

    ``channel`` is recorded as the channel the caller is about to move, so a
    compaction killed between its commit and that move is published by the
    next run that finishes publishing (``pipeline/publish``), like any run's.
    """
    head = store.head()
    if head is None:
        raise StoreError(f"nothing to compact: {store.backend.uri} has no snapshot")
    txn = Transaction(
        store,
        model_version=head.model.version,
        model_sha256=head.model.sha256,
        k=head.k,
        dtype=head.dtype,
        normalization=head.normalization,
        mode="compaction",
        run_id=head.run_id,
    )
    columns = row_schema(head.k, head.dtype).names
    for entity in ENTITIES:
        table = merged_table(store, head, entity, columns, with_shard=True)
        for shard in pc.unique(table["shard"]).to_pylist():
            rows = table.filter(pc.equal(table["shard"], shard)).drop_columns(["shard"])
            txn.write_table(entity, rows, shard=shard)
    return txn.commit(
        indexes=head.indexes,
        quality=head.quality,
        quarantine=head.quarantine,
        channel=channel,
        describe=True,
    )
