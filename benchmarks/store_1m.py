"""Snapshot store throughput: write and read N x k embeddings, plus a 1% backfill.

Usage: python -m benchmarks.store_1m --rows 1000000 --k 64 --out benchmarks/results/store_1m.json

Each phase runs in a fresh process so that its peak RSS is its own: the
streaming write (batches of 50,000 rows from a stand-in encoder, 8 shards),
an unverified read to a numpy matrix, a verified read (sha256 of every
file), a top-10 cosine query through the DuckDB view, and an incremental
snapshot that re-embeds 1% of the rows. Bytes on disk count every data
file of the full snapshot (ids, hashes and timestamps included).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, command, machine, peak_rss_mib
from marc_batch.config import StoreConfig
from marc_batch.store import Store, Transaction, open_snapshot

BATCH = 50_000
SHARDS = 8


def batch(start: int, stop: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-norm vectors with ids and text hashes, as the encoder would hand them over."""
    rng = np.random.default_rng(seed + start)
    vectors = rng.standard_normal((stop - start, k), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.char.add("item-", np.arange(start, stop).astype(str))
    hashes = np.char.add("h", np.arange(start, stop).astype(str))
    return ids, vectors, hashes


def write(store: Store, rows: int, k: int, dtype: str) -> dict:
    started = time.perf_counter()
    txn = Transaction(store, model_version="bench", k=k, dtype=dtype, normalization="l2")
    for start in range(0, rows, BATCH):
        stop = min(rows, start + BATCH)
        ids, vectors, hashes = batch(start, stop, k, 0)
        txn.write("item", ids, vectors, hashes, shard=start * SHARDS // rows)
    manifest = txn.commit()
    seconds = time.perf_counter() - started
    size = sum(f.size for f in manifest.files)
    return {
        "seconds": round(seconds, 2),
        "files": len(manifest.files),
        "bytes_on_disk": size,
        "bytes_per_embedding": round(size / rows, 1),
        "raw_bytes_per_embedding": k * np.dtype(dtype).itemsize,
    }


def newest(store: Store) -> int:
    """The version the write phase committed (a commit moves no channel, so no "latest")."""
    head = store.head()
    assert head is not None, "run the write phase first"
    return head.version


def read(store: Store, rows: int, k: int, verify: bool) -> dict:
    started = time.perf_counter()
    ids, matrix = open_snapshot(store, newest(store), verify=verify).matrix("item")
    seconds = time.perf_counter() - started
    assert matrix.shape == (rows, k) and len(ids) == rows
    return {"seconds": round(seconds, 2)}


def query(store: Store, rows: int, k: int) -> dict:
    snapshot = open_snapshot(store, newest(store))
    con = snapshot.duckdb()
    started = time.perf_counter()
    top = con.execute(
        "SELECT id FROM item ORDER BY array_cosine_similarity(embedding, "
        "(SELECT embedding FROM item WHERE id = 'item-7')) DESC LIMIT 10"
    ).fetchall()
    assert top[0][0] == "item-7"
    return {"seconds": round(time.perf_counter() - started, 2)}


def backfill(store: Store, rows: int, k: int) -> dict:
    changed = rows // 100
    before = store.head()
    started = time.perf_counter()
    txn = Transaction(
        store,
        model_version="bench",
        k=k,
        dtype=before.dtype,
        normalization="l2",
        mode="incremental",
    )
    ids, vectors, _ = batch(0, changed, k, 1)
    txn.write("item", ids, vectors, np.char.add("changed", ids))
    manifest = txn.commit()
    seconds = time.perf_counter() - started
    added = [f for f in manifest.files if f.sequence == manifest.version]
    assert manifest.rows["item"] == rows
    return {
        "rows_changed": changed,
        "seconds": round(seconds, 2),
        "bytes_written": sum(f.size for f in added),
    }


PHASES = {"write": write, "read": read, "read_verified": read, "query": query, "backfill": backfill}


def run_phase(args: argparse.Namespace) -> dict:
    store = Store(StoreConfig(root=args.root, shards=SHARDS))
    if args.phase == "write":
        result = write(store, args.rows, args.k, args.dtype)
    elif args.phase in ("read", "read_verified"):
        result = read(store, args.rows, args.k, verify=args.phase == "read_verified")
    else:
        result = PHASES[args.phase](store, args.rows, args.k)
    result["peak_rss_mib"] = int(peak_rss_mib())
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--phase", choices=tuple(PHASES))
    parser.add_argument("--root")
    parser.add_argument("--inline", action="store_true", help="phases in this process (smoke runs)")
    args = parser.parse_args(argv)
    if args.phase:
        result = run_phase(args)
        print(json.dumps(result))
        return result
    results = {
        "command": command("benchmarks.store_1m", argv),
        "machine": machine(),
        "rows": args.rows,
        "k": args.k,
        "dtype": args.dtype,
    }
    with tempfile.TemporaryDirectory() as root:
        for phase in PHASES:
            run = ["--phase", phase, "--root", root]
            run += ["--rows", str(args.rows), "--k", str(args.k), "--dtype", args.dtype]
            if args.inline:
                results[phase] = run_phase(parser.parse_args(run))
            else:
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.store_1m", *run],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[phase] = json.loads(done.stdout)
            print(phase, results[phase], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
