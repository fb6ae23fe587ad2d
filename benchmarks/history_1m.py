"""Point-in-time history export: time and peak memory over a store of N ids and several versions.

Usage:
    python -m benchmarks.history_1m --rows 1000000 --out benchmarks/results/history_1m.json

A fresh process builds the store: a full snapshot of N items (8 shards),
then ``--versions - 1`` incremental snapshots that each re-embed 1% of the
ids, delete 0.1% and add 0.1% new ones. Another fresh process exports the
whole history (``export_history``), so its peak RSS (DuckDB's included: it
runs in the same process) is the export's own. The export's row count is
checked against the intervals those changes must produce.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmarks.common import child, command, machine, peak_rss_mib, save
from marc_batch.config import StoreConfig
from marc_batch.store import Store, Transaction
from marc_batch.store.history import export_history

BATCH = 50_000
SHARDS = 8


def ids(start: int, stop: int) -> np.ndarray:
    return np.char.add("item-", np.arange(start, stop).astype(str))


def vectors(count: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, k), dtype=np.float32)


def build(store: Store, rows: int, k: int, versions: int) -> dict:
    """The store, and the number of intervals its history must have."""
    started = time.perf_counter()
    txn = Transaction(store, model_version="bench", k=k)
    for start in range(0, rows, BATCH):
        stop = min(rows, start + BATCH)
        names = ids(start, stop)
        txn.write(
            "item", names, vectors(stop - start, k, start), names, shard=start * SHARDS // rows
        )
    txn.commit()
    intervals, changed, moved = rows, rows // 100, rows // 1000
    for version in range(2, versions + 1):
        # Re-embed ids from the start of the catalogue, delete some from its end, add new ones.
        txn = Transaction(store, model_version="bench", k=k, mode="incremental")
        fresh = ids(rows + (version - 2) * moved, rows + (version - 1) * moved)
        names = np.concatenate([ids((version - 2) * changed, (version - 1) * changed), fresh])
        txn.write("item", names, vectors(len(names), k, rows + version), np.char.add("v", names))
        gone = rows - (version - 1) * moved
        txn.delete("item", ids(gone, gone + moved))
        txn.commit()
        intervals += changed + moved
    return {"seconds": round(time.perf_counter() - started, 2), "intervals": intervals}


def export(store: Store, out: Path) -> dict:
    started = time.perf_counter()
    report = export_history(store, out, ["item"])
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "versions": report.versions,
        "intervals": report.files[str(out)],
        "bytes_written": out.stat().st_size,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--phase", choices=("build", "export"))
    parser.add_argument("--root")
    args = parser.parse_args(argv)
    if args.phase:
        store = Store(StoreConfig(root=args.root, shards=SHARDS))
        if args.phase == "build":
            result = build(store, args.rows, args.k, args.versions)
        else:
            result = export(store, Path(args.root).parent / "history.parquet")
        result["peak_rss_mib"] = int(peak_rss_mib())
        print(json.dumps(result))
        return result
    figures = {
        "command": command("benchmarks.history_1m", argv),
        "machine": machine(),
        "rows": args.rows,
        "k": args.k,
        "versions": args.versions,
    }
    with tempfile.TemporaryDirectory() as scratch:
        root = str(Path(scratch) / "store")
        for phase in ("build", "export"):
            figures[phase] = child(
                "benchmarks.history_1m",
                *("--phase", phase, "--root", root, "--rows", args.rows),
                *("--k", args.k, "--versions", args.versions),
            )
        figures["export"]["rows_per_second"] = int(
            figures["export"]["intervals"] / figures["export"]["seconds"]
        )
        assert figures["export"]["intervals"] == figures["build"]["intervals"], figures
        assert (
            pq.read_metadata(Path(scratch) / "history.parquet").num_rows
            == (figures["export"]["intervals"])
        )
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
