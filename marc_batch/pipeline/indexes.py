"""Publishing an entity's index with a snapshot: build, prove recall, record the proof."""

import faiss
import numpy as np
import pyarrow as pa

from marc_batch.config import IndexConfig
from marc_batch.index import IndexReport, build_index
from marc_batch.index.update import ParentIndex, update_index
from marc_batch.store import Transaction


def index_quality(entity: str, report: IndexReport) -> dict[str, float]:
    """The index's proof of quality, as manifest quality metrics."""
    figures = {
        f"{entity}.recall@{report.recall_k}": report.recall,
        f"{entity}.recall_target": report.recall_target,
        f"{entity}.index_build_seconds": report.build_seconds,
    }
    if report.nprobe is not None:
        figures[f"{entity}.nprobe"] = float(report.nprobe)
        figures[f"{entity}.nlist"] = float(report.nlist or 0)
    return figures


def publish_index(
    txn: Transaction,
    entity: str,
    ids: pa.Array | pa.ChunkedArray,
    vectors: np.ndarray,
    config: IndexConfig,
    parent: ParentIndex | None = None,
) -> IndexReport:
    """Index every live vector of ``entity`` and add the index to ``txn``.

    With ``parent`` (a backfill), the parent's index is updated in place when
    it can be, and built afresh otherwise. Raises :class:`IndexRecallError` if
    a fresh build misses the recall target, which aborts the transaction: a
    snapshot is never published with a worse index.
    """
    built = update_index(parent, vectors, ids, config) if parent is not None else None
    built = built or build_index(vectors, ids, config)
    report = built.report
    txn.write_index(
        entity,
        lambda stream: faiss.write_index(built.index, faiss.PyCallbackIOWriter(stream.write)),
        index_type=report.factory,
        metric=report.metric,
        rows=report.rows,
    )
    txn.quality.update(index_quality(entity, report))
    return report
