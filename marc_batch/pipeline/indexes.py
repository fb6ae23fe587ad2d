"""An entity's index for a snapshot: built (or changed in place), recall-proved, streamed in.

A refresh indexes every live vector afresh. A backfill starts from its
parent's index: the touched ids are removed and the re-encoded rows added to
the trained lists when the index's shape (Flat, or IVF with the same number
of lists) still fits the catalogue's size, and a fresh build is made
otherwise. Either way recall is proved again over every live vector, and
an index that misses its target raises :class:`IndexRecallError`, which
aborts the transaction: a snapshot is never published with a worse index.
"""

from dataclasses import dataclass

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.config import IndexConfig
from marc_batch.entities import Entity
from marc_batch.index import BuiltIndex, IndexReport, build_index
from marc_batch.index.build import factory_for
from marc_batch.index.io import index_from_bytes, write_index
from marc_batch.index.update import ParentIndex, update_index
from marc_batch.store import IndexFile, Manifest, Store, Transaction
from marc_batch.store.reader import embedding_matrix, merged_table, read_index_file
from marc_batch.tracing import traced


@dataclass
class StagedIndex:
    """An index file written into a transaction, with the proof of its quality."""

    file: IndexFile
    report: IndexReport

    @property
    def quality(self) -> dict[str, float]:
        """The proof as manifest quality metrics, prefixed with the entity."""
        report, entity = self.report, self.file.entity
        figures = {
            f"{entity}.recall@{report.recall_k}": report.recall,
            f"{entity}.recall_target": report.recall_target,
            f"{entity}.index_build_seconds": report.build_seconds,
        }
        if report.nprobe is not None:
            figures[f"{entity}.nprobe"] = float(report.nprobe)
            figures[f"{entity}.nlist"] = float(report.nlist or 0)
        return figures


def _write(txn: Transaction, entity: Entity, built: BuiltIndex) -> StagedIndex:
    report = built.report
    file = txn.write_index(
        entity,
        lambda stream: write_index(built.index, stream),
        index_type=report.factory,
        metric=report.metric,
        rows=report.rows,
    )
    return StagedIndex(file, report)


@traced("publish_index")
def stage_index(
    txn: Transaction,
    entity: Entity,
    ids: pa.Array | pa.ChunkedArray,
    vectors: np.ndarray,
    config: IndexConfig,
) -> StagedIndex:
    """Index every live vector of ``entity`` afresh and write the index into ``txn``."""
    return _write(txn, entity, build_index(vectors, ids, config))


def _live_vectors(
    store: Store,
    parent: Manifest,
    entity: Entity,
    touched: pa.Array,
    ids: pa.Array,
    new: np.ndarray,
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
    return index_from_bytes(read_index_file(store, parent, entry))


@traced("publish_index")
def restage_index(
    txn: Transaction,
    parent: Manifest,
    entity: Entity,
    touched: pa.Array,
    new_rows: tuple[pa.Array, np.ndarray],
    config: IndexConfig,
) -> StagedIndex:
    """The parent's index of ``entity`` after a change that touched the ``touched`` ids.

    ``new_rows`` are the re-encoded ids and vectors; the other live vectors
    are read from the parent snapshot.
    """
    store = txn.store
    parent_ids, ids, vectors = _live_vectors(store, parent, entity, touched, *new_rows)
    existing = next((i for i in parent.indexes if i.entity == entity), None)
    index = _parent_index(store, parent, existing, factory_for(len(ids), config))
    built = None
    if index is not None:
        built = update_index(ParentIndex(index, parent_ids, touched), vectors, ids, config)
    return _write(txn, entity, built or build_index(vectors, ids, config))
