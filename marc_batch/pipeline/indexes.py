"""Publishing an entity's index with a snapshot: build, prove recall, record the proof."""

import faiss
import numpy as np
import pyarrow as pa

from marc_batch.config import IndexConfig
from marc_batch.index import IndexReport, build_index
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
    trained: faiss.Index | None = None,
) -> IndexReport:
    """Build the index over every live vector of ``entity`` and add it to ``txn``.

    Raises :class:`IndexRecallError` if it misses the recall target, which
    aborts the transaction: a snapshot is never published with a worse index.
    """
    built = build_index(vectors, ids, config, trained=trained)
    report = built.report
    txn.write_index(
        entity,
        faiss.serialize_index(built.index).tobytes(),
        index_type=report.factory,
        metric=report.metric,
        rows=report.rows,
    )
    txn.quality.update(index_quality(entity, report))
    return report
