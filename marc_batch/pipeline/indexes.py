"""An entity's index for a snapshot: built (or changed in place), recall-proved, streamed in.

A refresh indexes every live vector afresh, reading its saved shards one at
a time. A backfill starts from its parent's index: the touched ids are
removed and the re-encoded rows added to the trained lists when the index's
shape (Flat, or IVF with the same number of lists) still fits the
catalogue's size, and a fresh build is made otherwise. Either way the live
vectors are read one data file of the parent (and one shard of the change)
at a time, recall is proved again, and an index that misses its target
raises :class:`IndexRecallError`, which aborts the transaction: a snapshot
is never published with a worse index.

Both work in a temporary local directory (under ``TMPDIR``) that holds an
IVF index's lists while it is built or changed: up to twice the index's
size on disk, and none of it in memory.
"""

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.config import IndexConfig
from marc_batch.entities import Entity
from marc_batch.index import BuiltIndex, IndexReport
from marc_batch.index.build import Parts, build_from_pieces, factory_for
from marc_batch.index.ids import is_canonical
from marc_batch.index.io import write_index
from marc_batch.index.ondisk import open_stored
from marc_batch.index.update import ParentIndex, update_index
from marc_batch.index.vectors import Piece, Vectors
from marc_batch.store import IndexFile, Manifest, Store, Transaction
from marc_batch.store.reader import copy_verified, embedding_matrix, live_pieces
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
    txn: Transaction, entity: Entity, vectors: Vectors, config: IndexConfig, parts: Parts
) -> StagedIndex:
    """Index every live vector of ``entity`` afresh (``parts`` adds them) into ``txn``."""
    with tempfile.TemporaryDirectory(prefix="marc-index-") as directory:
        return _write(txn, entity, build_from_pieces(vectors, config, Path(directory), parts))


def _live_vectors(
    store: Store, parent: Manifest, entity: Entity, touched: pa.Array, added: Vectors
) -> tuple[bool, Vectors]:
    """The parent's id scheme, and every live vector after the change (untouched rows first).

    One pass over the parent's ids counts the untouched rows and tells the
    scheme its index was built under (the same rule as a fresh build's).
    """
    native, seen, untouched = True, 0, 0
    for table in live_pieces(store, parent, entity):
        native = native and (table.num_rows == 0 or is_canonical(table["id"]))
        seen += table.num_rows
        untouched += table.num_rows - (
            pc.sum(pc.is_in(table["id"], value_set=touched)).as_py() or 0
        )

    def pieces() -> Iterator[Piece]:
        for table in live_pieces(store, parent, entity, ("id", "embedding")):
            kept = table.filter(pc.invert(pc.is_in(table["id"], value_set=touched)))
            yield kept["id"], embedding_matrix(kept, parent.k).astype(np.float32)
        yield from added.pieces()

    return native and seen > 0, Vectors(untouched + added.rows, parent.k, pieces)


def _parent_index(
    store: Store, parent: Manifest, entry: IndexFile | None, factory: str, directory: Path
) -> faiss.Index | None:
    """The parent's index if it has the factory the new one needs, so it can be changed."""
    if entry is None or entry.index_type != factory:
        return None
    local = directory / "parent.faiss"
    copy_verified(store, parent, entry, local)
    return open_stored(local)


@traced("publish_index")
def restage_index(
    txn: Transaction,
    parent: Manifest,
    entity: Entity,
    touched: pa.Array,
    added: Vectors,
    config: IndexConfig,
) -> StagedIndex:
    """The parent's index of ``entity`` after a change that touched the ``touched`` ids.

    ``added`` are the re-encoded rows; the other live vectors are read from
    the parent snapshot, one data file at a time.
    """
    store = txn.store
    native, live = _live_vectors(store, parent, entity, touched, added)
    existing = next((i for i in parent.indexes if i.entity == entity), None)
    with tempfile.TemporaryDirectory(prefix="marc-index-") as name:
        directory = Path(name)
        factory = factory_for(live.rows, config)
        index = _parent_index(store, parent, existing, factory, directory)
        built = None
        if index is not None:
            built = update_index(
                ParentIndex(index, native, touched), live, added, config, directory
            )
        return _write(txn, entity, built or build_from_pieces(live, config, directory))
