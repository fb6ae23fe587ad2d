"""Scale-out: the nightly-refresh flow on a Dask cluster of two workers against one.

Usage: python -m benchmarks.dask_workers --items 200000 --out benchmarks/results/dask_workers.json

One generated catalogue (``benchmarks/catalogue.py``) is refreshed by the
``nightly-refresh`` flow with ``flows.runner = "dask"``: a temporary
``LocalCluster`` of ``--workers`` worker processes (one thread each), the
encoder a registered MARC model on a tiny random BERT with one encode
thread, 8 shards. Each arm runs in a fresh process with a Prefect home of
its own (an ephemeral server, and a ``gpu`` limit the run creates with one
slot per worker) and writes a store of its own. The figure is throughput:
rows per second of the whole flow, and of its encoding alone (the driver's
``run_jobs`` phase, which waits for every shard task), each arm against the
one-worker arm of the same run. The stores must hold the same items: the
largest difference between their vectors is recorded (None if the ids differ).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.catalogue import config_for, write_catalogue
from benchmarks.common import child, command, machine, save
from fixtures.encoders import benchmark_registry

MODULE = "benchmarks.dask_workers"
GOAL = 1.7


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", type=Path, help="a config to refresh (one arm, in-process)")
    return parser.parse_args(argv)


def run_flow(config_path: Path) -> dict:
    """The nightly-refresh flow on the config's engine, timed as a whole and by phase."""
    from flows.nightly_refresh import nightly_refresh
    from marc_batch.parameters import RefreshParameters
    from marc_batch.tracing import Tracer

    with Tracer() as tracer:
        start = time.perf_counter()
        report = nightly_refresh(RefreshParameters(config=config_path))
        seconds = time.perf_counter() - start
    phases = tracer.figures()
    return {
        "seconds": round(seconds, 3),
        "rows": report.rows,
        "encode_wall_seconds": phases["run_jobs"]["seconds"],
        "phases": phases,
    }


def item_vectors(store: Path) -> tuple[np.ndarray, np.ndarray]:
    """The latest snapshot's item ids and vectors, in id order."""
    from marc_batch.store import open_snapshot

    ids, vectors = open_snapshot(str(store), "latest").matrix("item")
    order = np.argsort(ids)
    return ids[order], vectors[order]


def difference(stores: list[Path]) -> float | None:
    """The largest difference between the stores' item vectors; None if their ids differ."""
    (ids, first), *others = [item_vectors(store) for store in stores]
    if any(not np.array_equal(ids, other_ids) for other_ids, _ in others):
        return None
    return max(float(np.abs(first - vectors).max()) for _, vectors in others)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.child:
        result = run_flow(args.child)
        print(json.dumps(result))
        return result
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-dask-"))
    registry = benchmark_registry(work / "model", "tiny")
    paths = write_catalogue(work / "catalogue", args.items, args.users)
    arms = {}
    for workers in args.workers:
        root = work / f"workers-{workers}"
        flows = {"runner": "dask", "workers": workers}
        config = config_for(paths, registry, root / "store", encode={"threads": 1}, flows=flows)
        config_path = root / "marc-batch.yaml"
        root.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        os.environ["PREFECT_HOME"] = str(root / "prefect-home")
        arms[str(workers)] = child(MODULE, "--child", config_path)
        print(workers, arms[str(workers)]["seconds"], file=sys.stderr, flush=True)
    one = arms[str(min(args.workers))]
    rows = sum(one["rows"].values())
    for arm in arms.values():
        arm["rows_per_second"] = round(rows / arm["seconds"], 1)
        arm["speedup"] = round(one["seconds"] / arm["seconds"], 3)
        arm["encode_speedup"] = round(one["encode_wall_seconds"] / arm["encode_wall_seconds"], 3)
    figures = {
        "command": command(MODULE, argv),
        "machine": machine(),
        "model": "registered MARC encoder on a tiny random BERT (2 layers, hidden 32), k 64",
        "catalogue": f"generated, {args.items} items, {args.users} users with 20-100 behaviours",
        "engine": "nightly-refresh flow, Dask LocalCluster, 1 thread per worker, 8 shards",
        "encode_threads": 1,
        "rows": rows,
        "workers": arms,
        "max_vector_difference": difference([work / f"workers-{n}" / "store" for n in arms]),
        "goal": f">= {GOAL}x throughput with 2 workers",
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
