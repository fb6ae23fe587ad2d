"""Exact neighbours and recall@k: the yardstick every approximate index is held to."""

import faiss
import numpy as np

from marc_batch.index.vectors import Vectors


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Positions of each query's top-k by inner product, by brute force.

    ``faiss.knn`` scans ``vectors`` where they lie; a Flat index would first
    copy all of them, doubling the memory of a large build.
    """
    return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def exact_labels(vectors: Vectors, native: bool, queries: np.ndarray, k: int) -> np.ndarray:
    """FAISS ids of each query's exact top-k over every vector, scanned one piece at a time.

    Each piece's top-k goes into FAISS's own result heap, so memory holds the
    queries, their k best so far and one piece: never all the vectors.
    """
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for labels, piece in vectors.labelled(native):
        if len(piece):
            scores, positions = faiss.knn(
                queries, piece, min(k, len(piece)), metric=faiss.METRIC_INNER_PRODUCT
            )
            found = np.where(positions >= 0, labels[np.maximum(positions, 0)], -1)
            heap.add_result(np.ascontiguousarray(scores), np.ascontiguousarray(found))
    heap.finalize()
    return heap.I


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true top-k that the index returned in its top-k."""
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[:k], t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
