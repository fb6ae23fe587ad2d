"""Snapshot statistics and the alignment fit: time and peak memory over two snapshots of N ids.

Usage:
    python -m benchmarks.drift_1m --rows 1000000 --out benchmarks/results/drift_1000000.json

A fresh process builds the store: a full snapshot of N items (8 shards)
under model ``a``, then a full snapshot of the same ids and texts under
model ``b``, whose vectors are ``a``'s turned by one random rotation.
Another fresh process describes the second against the first exactly as a
refresh's commit does (:func:`marc_batch.store.attachments.describe`):
moments, the cosine of every unchanged text, neighbour overlap@10 on 200
sampled items by exact search, and the Procrustes and ridge fits. Its peak
RSS is compared with the size of the two snapshots' vectors, and the fitted
map with the rotation.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import ortho_group

from benchmarks.common import child, command, machine, peak_rss_mib, save
from marc_batch.config import StoreConfig
from marc_batch.store import Store, Transaction
from marc_batch.store.attachments import describe, load_alignment

BATCH = 50_000
SHARDS = 8


def rotation(k: int) -> np.ndarray:
    return ortho_group.rvs(k, random_state=7).astype(np.float32)


def build(store: Store, rows: int, k: int) -> dict:
    started = time.perf_counter()
    for model, turn in (("a", np.eye(k, dtype=np.float32)), ("b", rotation(k).T)):
        txn = Transaction(store, model_version=model, k=k)
        for start in range(0, rows, BATCH):
            stop = min(rows, start + BATCH)
            names = np.char.add("item-", np.arange(start, stop).astype(str))
            x = np.random.default_rng(start).standard_normal((stop - start, k), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            txn.write("item", names, x @ turn, names, shard=start * SHARDS // rows)
        txn.commit()
    return {"seconds": round(time.perf_counter() - started, 2)}


def measure(store: Store, k: int) -> dict:
    old, new = store.manifest(1), store.manifest(2)
    started = time.perf_counter()
    described = describe(store, new, old)
    seconds = time.perf_counter() - started
    mapped = load_alignment(store, described)
    figures = json.loads((Path(store.config.root) / described.statistics.path).read_text())
    return {
        "seconds": round(seconds, 2),
        "fitted_on": mapped.fitted_on,
        "residual_procrustes": mapped.residual,
        "max_weight_error": float(np.abs(mapped.weights - rotation(k)).max()),
        "neighbour_overlap_mean": figures["parent"]["neighbours"]["overlap_mean"],
        "sampled": figures["parent"]["neighbours"]["sampled"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--phase", choices=("build", "describe"))
    parser.add_argument("--root")
    args = parser.parse_args(argv)
    if args.phase:
        store = Store(StoreConfig(root=args.root, shards=SHARDS))
        before = int(peak_rss_mib())  # the interpreter and its imports
        if args.phase == "build":
            result = build(store, args.rows, args.k)
        else:
            result = measure(store, args.k)
        result["rss_before_mib"], result["peak_rss_mib"] = before, int(peak_rss_mib())
        print(json.dumps(result))
        return result
    figures = {
        "command": command("benchmarks.drift_1m", argv),
        "machine": machine(),
        "rows": args.rows,
        "k": args.k,
        "vectors_of_both_snapshots_mib": round(2 * args.rows * args.k * 4 / 2**20),
    }
    with tempfile.TemporaryDirectory() as scratch:
        root = str(Path(scratch) / "store")
        for phase in ("build", "describe"):
            figures[phase] = child(
                "benchmarks.drift_1m",
                *("--phase", phase, "--root", root, "--rows", args.rows, "--k", args.k),
            )
    assert figures["describe"]["fitted_on"] == args.rows, figures
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
