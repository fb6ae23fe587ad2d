"""Compaction: rewrite a long chain of incremental layers as one fresh set of files.

Readers of a compacted snapshot read each id once instead of merging every
layer, and a BAHE model's behaviour vectors, written as a file per shard of
every run, are merged into files of at most ``BEHAVIOUR_FILE_ROWS`` keys,
each key once. The content is unchanged, so the new version keeps the head's index
files, metrics and quarantine counts, and concurrent incremental publishers
can rebase on it without a conflict.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.entities import ENTITIES
from marc_batch.errors import StoreError
from marc_batch.store.behaviours import read_behaviour_file
from marc_batch.store.commit import Transaction
from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import merged_table
from marc_batch.store.store import Store
from marc_batch.store.writer import row_schema

BEHAVIOUR_FILE_ROWS = 1_000_000


def _compact_behaviours(store: Store, head: Manifest, txn: Transaction) -> None:
    """Rewrite the head's behaviour files, if there are several, with each key once."""
    if len(head.behaviours) < 2:
        return
    table = pa.concat_tables(read_behaviour_file(store, head, e) for e in head.behaviours)
    first = (
        table.append_column("row", pa.array(np.arange(table.num_rows)))
        .group_by("key", use_threads=False)
        .aggregate([("row", "min")])["row_min"]
    )
    table = table.take(np.sort(first.to_numpy()))
    dim = head.behaviours[0].dim
    for start in range(0, table.num_rows, BEHAVIOUR_FILE_ROWS):
        part = table.slice(start, BEHAVIOUR_FILE_ROWS)
        vectors = part["vector"].combine_chunks().flatten().to_numpy().reshape(-1, dim)
        txn.write_behaviours(part["key"].to_pylist(), vectors)
    txn.replace_behaviours(head.behaviours)


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
    _compact_behaviours(store, head, txn)
    return txn.commit(
        indexes=head.indexes,
        quality=head.quality,
        quarantine=head.quarantine,
        channel=channel,
        describe=True,
    )
