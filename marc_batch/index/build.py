"""Build the index a snapshot publishes, and prove its recall before anyone reads it.

Small catalogues get the exact Flat index. Large ones get IVF with an HNSW
coarse quantizer (assigning a vector to a list costs a graph walk, not a scan
of every centroid), with ``nlist`` about sqrt(N) and k-means trained on a
sample. ``nprobe`` then doubles until recall@k against brute force on
held-out queries meets the target; the smallest such ``nprobe`` is stored in
the index file itself, so a plain ``faiss.read_index`` searches as tuned.
"""

import time
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from marc_batch.config import IndexConfig
from marc_batch.errors import IndexRecallError
from marc_batch.index.ids import IdMap
from marc_batch.index.recall import exact_neighbours, recall_at_k


class IndexReport(BaseModel):
    """What was built and the recall it proved; recorded with the snapshot."""

    kind: Literal["flat", "ivf-flat", "ivf-sq8"]
    factory: str = Field(description="The FAISS index_factory string that builds this index.")
    metric: Literal["inner_product"] = "inner_product"
    rows: int
    dim: int
    nlist: int | None = None
    nprobe: int | None = None
    recall_k: int
    recall: float
    recall_target: float
    tuning_queries: int
    build_seconds: float
    native_ids: bool
    updated: bool = Field(
        False, description="The parent snapshot's index changed in place (a backfill)."
    )


@dataclass
class BuiltIndex:
    index: faiss.Index
    ids: IdMap
    report: IndexReport


def nlist_for(rows: int, points_per_list: int) -> int:
    """A power of two near sqrt(rows), leaving ``points_per_list`` training points per list."""
    target = 2 ** round(np.log2(max(np.sqrt(rows), 1.0)))
    return int(max(1, min(target, rows // points_per_list)))


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    """Lists probed per query, and a quantizer beam wide enough to find them."""
    params = faiss.ParameterSpace()
    params.set_index_parameter(index, "nprobe", nprobe)
    params.set_index_parameter(index, "quantizer_efSearch", max(64, 2 * nprobe))


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Unit rows as C-ordered float32, so inner product is cosine similarity.

    Vectors that already are (a snapshot's embeddings) come back as they are;
    a copy of a million of them would be the largest allocation of a build.
    Others are normalised in a copy: the caller's array is never modified.
    """
    if vectors.dtype == np.float32 and vectors.flags.c_contiguous and len(vectors):
        norms = np.einsum("ij,ij->i", vectors, vectors)
        if np.allclose(norms, 1.0, atol=1e-5):
            return vectors
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(out)
    return out


def factory_for(rows: int, config: IndexConfig) -> str:
    """The index_factory string of the index ``rows`` vectors get under ``config``.

    IVF indexes label their vectors natively (IndexIVF stores int64 ids in its
    lists), so ids can later be removed in place; an IDMap wrapper would not
    survive removals, since IVF's internal sequence numbers are never compacted.
    """
    if rows <= config.flat_max_rows:
        return "IDMap2,Flat"
    nlist = nlist_for(rows, config.train_points_per_list)
    codec = "Flat" if config.ann == "ivf-flat" else "SQ8"
    return f"IVF{nlist}_HNSW{config.hnsw_m},{codec}"


def build_index(
    vectors: np.ndarray, ids: pa.Array | pa.ChunkedArray, config: IndexConfig
) -> BuiltIndex:
    """Build, tune and recall-check an index over ``vectors`` labelled by catalogue ``ids``."""
    started = time.perf_counter()
    vectors = normalised(vectors)
    rows, dim = vectors.shape
    id_map = IdMap.for_ids(ids)
    factory = factory_for(rows, config)
    if rows <= config.flat_max_rows:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        index.add_with_ids(vectors, id_map.faiss_ids)
        report = report_for(index, vectors, id_map, config, started, np.arange(0))
        return BuiltIndex(index, id_map, report)
    rng = np.random.default_rng(config.seed)
    nlist = nlist_for(rows, config.train_points_per_list)
    order = rng.permutation(rows)
    train = np.sort(order[: nlist * config.train_points_per_list])
    held_out = order[nlist * config.train_points_per_list :]
    queries = np.sort((held_out if len(held_out) else order)[: config.tuning_queries])
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors[train])
    index.add_with_ids(vectors, id_map.faiss_ids)
    report = report_for(index, vectors, id_map, config, started, queries)
    return BuiltIndex(index, id_map, report)


def report_for(
    index: faiss.Index,
    vectors: np.ndarray,
    id_map: IdMap,
    config: IndexConfig,
    started: float,
    queries: np.ndarray,
    updated: bool = False,
) -> IndexReport:
    """Prove ``index``'s recall over the normalised ``vectors`` it holds, and describe it.

    A Flat index is exact, so its recall is 1 by construction; an IVF index
    gets the smallest nprobe meeting the target on ``queries`` (positions in
    ``vectors``), or :class:`IndexRecallError`.
    """
    rows, dim = vectors.shape
    figures: dict[str, float | int | None] = {"recall": 1.0, "tuning_queries": 0}
    if rows > config.flat_max_rows:
        nlist = faiss.extract_index_ivf(index).nlist
        nprobe, recall = tune_nprobe(index, vectors, queries, id_map.faiss_ids, nlist, config)
        figures = {
            "nlist": nlist,
            "nprobe": nprobe,
            "recall": round(recall, 4),
            "tuning_queries": len(queries),
        }
    return IndexReport(
        kind="flat" if rows <= config.flat_max_rows else config.ann,
        factory=factory_for(rows, config),
        rows=rows,
        dim=dim,
        recall_k=config.recall_k,
        recall_target=config.recall_target,
        build_seconds=round(time.perf_counter() - started, 3),
        native_ids=id_map.native,
        updated=updated,
        **figures,
    )


def tune_nprobe(
    index: faiss.Index,
    vectors: np.ndarray,
    queries: np.ndarray,
    faiss_ids: np.ndarray,
    nlist: int,
    config: IndexConfig,
) -> tuple[int, float]:
    """The smallest power-of-two nprobe meeting the recall target; raise if none does."""
    k = min(config.recall_k, len(vectors))
    truth = faiss_ids[exact_neighbours(vectors, vectors[queries], k)]
    ceiling = min(nlist, config.max_nprobe)
    nprobe = 1
    while True:
        set_nprobe(index, nprobe)
        recall = recall_at_k(index.search(vectors[queries], k)[1], truth)
        if recall >= config.recall_target:
            return nprobe, recall
        if nprobe >= ceiling:
            raise IndexRecallError(
                f"{config.ann} index reaches recall@{k} {recall:.3f} at nprobe {nprobe}, "
                f"below the target {config.recall_target}; it is not published"
            )
        nprobe = min(2 * nprobe, ceiling)
