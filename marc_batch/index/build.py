"""Build the index a snapshot publishes, and prove its recall before anyone reads it.

Small catalogues get the exact Flat index. Large ones get IVF with an HNSW
coarse quantizer (assigning a vector to a list costs a graph walk, not a scan
of every centroid), with ``nlist`` about sqrt(N) and k-means trained once on
a uniform sample. The vectors arrive piece by piece (a shard at a time, see
:mod:`marc_batch.index.vectors`): each piece is added to an index of its own,
a copy of the trained empty one, saved as a file in a local working
directory, and the pieces' inverted lists are merged into one set of lists
on disk (:mod:`marc_batch.index.ondisk`), so the build never holds every
vector in memory. (A Flat index, at most ``flat_max_rows`` vectors, is
merged in memory with ``merge_from``.) ``nprobe`` then doubles until
recall@k against exact search (itself computed piece by piece) on held-out
queries meets the target; the smallest such ``nprobe`` is stored in the
index file itself, so a plain ``faiss.read_index`` searches as tuned.
"""

import io
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from marc_batch.config import IndexConfig
from marc_batch.errors import IndexRecallError
from marc_batch.index.io import index_from_bytes, write_index
from marc_batch.index.ondisk import merge_on_disk
from marc_batch.index.recall import exact_labels, recall_at_k
from marc_batch.index.vectors import Vectors, in_one_piece, survey


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


Parts = Callable[[faiss.Index, bool, Path], Iterator[Path]]
"""Given the trained empty index, the id scheme and a local directory: each piece's index file."""


def added_here(vectors: Vectors) -> Parts:
    """Each piece added to its own copy of the trained empty index, in this process."""

    def parts(empty: faiss.Index, native: bool, directory: Path) -> Iterator[Path]:
        for number, (labels, piece) in enumerate(vectors.labelled(native)):
            part = faiss.clone_index(empty)
            part.add_with_ids(piece, labels)
            path = directory / f"part-{number}.faiss"
            faiss.write_index(part, str(path))
            yield path

    return parts


def build_index(
    vectors: np.ndarray, ids: pa.Array | pa.ChunkedArray, config: IndexConfig
) -> BuiltIndex:
    """Build, tune and recall-check an index over a matrix labelled by catalogue ``ids``.

    The index comes back in memory (the matrix already is): it is built in a
    temporary directory as a refresh builds one, then read back from its file.
    """
    with tempfile.TemporaryDirectory(prefix="marc-index-") as directory:
        built = build_from_pieces(in_one_piece(vectors, ids), config, Path(directory))
        stored = io.BytesIO()
        write_index(built.index, stored)
    return BuiltIndex(index_from_bytes(stored.getvalue()), built.report)


def _merged(trained: faiss.Index, files: list[Path], directory: Path) -> faiss.Index:
    """The pieces' index files merged in order, then deleted."""
    if faiss.try_extract_index_ivf(trained) is None:
        index = faiss.clone_index(trained)
        for path in files:
            index.merge_from(faiss.read_index(str(path)), 0)
    else:
        index = merge_on_disk(trained, files, directory / "lists.ivfdata")
    for path in files:
        path.unlink()
    return index


def build_from_pieces(
    vectors: Vectors, config: IndexConfig, directory: Path, parts: Parts | None = None
) -> BuiltIndex:
    """Build, tune and recall-check an index over ``vectors``, holding one piece at a time.

    Three passes: a survey (id scheme, training sample, held-out queries),
    then each piece added to its own copy of the trained empty index (here,
    or wherever ``parts`` sends them) and merged, then exact search over the
    pieces for the recall proof. An IVF index's lists stay in ``directory``,
    which must outlive the index.
    """
    started = time.perf_counter()
    factory = factory_for(vectors.rows, config)
    if vectors.rows <= config.flat_max_rows:
        found = survey(vectors, 0, config.seed)
        empty = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.dim))
        queries = np.empty((0, vectors.dim), np.float32)
    else:
        nlist = nlist_for(vectors.rows, config.train_points_per_list)
        training = nlist * config.train_points_per_list
        found = survey(vectors, training + config.tuning_queries, config.seed)
        held_out = found.sample[training:]
        queries = (held_out if len(held_out) else found.sample)[: config.tuning_queries]
        empty = faiss.index_factory(vectors.dim, factory, faiss.METRIC_INNER_PRODUCT)
        empty.train(found.sample[:training])
    files = list((parts or added_here(vectors))(empty, found.native, directory))
    index = _merged(empty, files, directory)
    report = report_for(index, vectors, found.native, config, started, queries)
    return BuiltIndex(index, report)


def report_for(
    index: faiss.Index,
    vectors: Vectors,
    native: bool,
    config: IndexConfig,
    started: float,
    queries: np.ndarray,
    updated: bool = False,
) -> IndexReport:
    """Prove ``index``'s recall over the ``vectors`` it holds, and describe it.

    A Flat index is exact, so its recall is 1 by construction; an IVF index
    gets the smallest nprobe meeting the target on ``queries`` (unit
    vectors), or :class:`IndexRecallError`.
    """
    rows = vectors.rows
    figures: dict[str, float | int | None] = {"recall": 1.0, "tuning_queries": 0}
    if rows > config.flat_max_rows:
        nlist = faiss.extract_index_ivf(index).nlist
        k = min(config.recall_k, rows)
        truth = exact_labels(vectors, native, queries, k)
        nprobe, recall = tune_nprobe(index, queries, truth, nlist, config)
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
        dim=vectors.dim,
        recall_k=config.recall_k,
        recall_target=config.recall_target,
        build_seconds=round(time.perf_counter() - started, 3),
        native_ids=native,
        updated=updated,
        **figures,
    )


def tune_nprobe(
    index: faiss.Index,
    queries: np.ndarray,
    truth: np.ndarray,
    nlist: int,
    config: IndexConfig,
) -> tuple[int, float]:
    """The smallest power-of-two nprobe meeting the recall target; raise if none does."""
    k = truth.shape[1]
    ceiling = min(nlist, config.max_nprobe)
    nprobe = 1
    while True:
        set_nprobe(index, nprobe)
        recall = recall_at_k(index.search(queries, k)[1], truth)
        if recall >= config.recall_target:
            return nprobe, recall
        if nprobe >= ceiling:
            raise IndexRecallError(
                f"{config.ann} index reaches recall@{k} {recall:.3f} at nprobe {nprobe}, "
                f"below the target {config.recall_target}; it is not published"
            )
        nprobe = min(2 * nprobe, ceiling)
