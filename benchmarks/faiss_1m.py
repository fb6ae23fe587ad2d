"""The published ANN index against exact search: recall@10, build seconds, queries per second.

Usage: python -m benchmarks.faiss_1m --store WORK/1000000/store \\
           --out benchmarks/results/faiss_1m.json

The vectors are a refresh's item embeddings (version 1 of ``--store``,
written by ``benchmarks.scaling``: a tiny random BERT encoder on generated
catalogue text, k = 64), not random noise. Queries are the embeddings of
the items a later backfill added (same encoder, not in the index), else a
random sample of indexed vectors. Ours is what a refresh publishes,
``build_index`` with the default ``IndexConfig`` (IVF with an HNSW coarse
quantizer, ``nprobe`` tuned to recall@10 >= 0.95); the peer is exact
``IndexFlatIP`` over the same vectors, which is also the ground truth.
Searches run as one batch on all cores; the best of ``--repeats`` counts.
"""

import argparse
import time
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.common import command, machine, peak_rss_mib, save
from marc_batch.config import IndexConfig, StoreConfig
from marc_batch.index import IdMap, build_index
from marc_batch.index.recall import recall_at_k
from marc_batch.index.vectors import normalised
from marc_batch.store import Store, open_snapshot

MODULE = "benchmarks.faiss_1m"
K = 10


def queries_for(store: Store, ids: np.ndarray, vectors: np.ndarray, count: int) -> tuple:
    """Embeddings of items added after version 1, or a sample of the indexed ones."""
    versions = store.versions()
    if len(versions) > 1:
        table = open_snapshot(store, versions[-1]).table("item")
        new = table.filter(pc.invert(pc.is_in(table["id"], value_set=pa.array(ids))))
        if new.num_rows:
            matrix = np.stack(new["embedding"].to_numpy(zero_copy_only=False)[:count])
            return normalised(matrix), f"{len(matrix)} items added by a backfill, not indexed"
    rng = np.random.default_rng(1)
    chosen = rng.choice(len(vectors), min(count, len(vectors)), replace=False)
    return vectors[chosen], f"{len(chosen)} indexed items (random sample)"


def best_search(index: faiss.Index, queries: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    timings, found = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        _, found = index.search(queries, K)
        timings.append(time.perf_counter() - start)
    return min(timings), found


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flat-max-rows", type=int, help="IndexConfig.flat_max_rows (smoke runs)")
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    store = Store(StoreConfig(root=args.store))
    snapshot = open_snapshot(store, store.versions()[0])
    ids, matrix = snapshot.matrix("item")
    vectors = normalised(matrix)
    del matrix
    queries, described = queries_for(store, ids, vectors, args.queries)
    config = IndexConfig(**({"flat_max_rows": args.flat_max_rows} if args.flat_max_rows else {}))

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    flat_build = time.perf_counter() - start
    flat_seconds, truth_positions = best_search(flat, queries, args.repeats)
    flat_bytes = len(faiss.serialize_index(flat))
    del flat

    start = time.perf_counter()
    built = build_index(vectors, pa.array(ids), config)
    ours_build = time.perf_counter() - start
    ours_seconds, found = best_search(built.index, queries, args.repeats)
    recall = recall_at_k(found, IdMap.for_ids(pa.array(ids)).faiss_ids[truth_positions])
    report = built.report
    figures = {
        "command": command(MODULE, argv),
        "machine": machine(),
        "vectors": (
            f"{len(ids)} x {vectors.shape[1]} item embeddings of snapshot version 1 of "
            f"{args.store}: tiny random BERT encoder on generated catalogue text"
        ),
        "queries": described,
        "threads": faiss.omp_get_max_threads(),
        "ours": {
            "index": report.factory,
            "nlist": report.nlist,
            "nprobe": report.nprobe,
            "build_seconds": round(ours_build, 2),
            "tuning_recall": report.recall,
            "recall_at_10": round(recall, 4),
            "queries_per_second": round(len(queries) / ours_seconds),
            "bytes": len(faiss.serialize_index(built.index)),
        },
        "peer": {
            "index": "Flat (exact inner product)",
            "build_seconds": round(flat_build, 2),
            "recall_at_10": 1.0,
            "queries_per_second": round(len(queries) / flat_seconds),
            "bytes": flat_bytes,
        },
        "speedup": round(flat_seconds / ours_seconds, 1),
        "recall_goal": f">= {config.recall_target} (index.recall_target)",
        "refresh_index_build_seconds": snapshot.manifest.quality.get("item.index_build_seconds"),
        "peak_rss_mib": round(peak_rss_mib()),
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
