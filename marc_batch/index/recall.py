"""Exact neighbours and recall@k: the yardstick every approximate index is held to."""

import faiss
import numpy as np


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Positions of each query's top-k by inner product, by brute force.

    ``faiss.knn`` scans ``vectors`` where they lie; a Flat index would first
    copy all of them, doubling the memory of a large build.
    """
    return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true top-k that the index returned in its top-k."""
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[:k], t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
