"""Catalogue scaling: the whole refresh at growing catalogue sizes, time and peak memory.

Usage: python -m benchmarks.scaling --sizes 100000 1000000 --out benchmarks/results/scaling.json

Each size is a generated catalogue (``benchmarks/catalogue.py``; ``--users``
users, 1,000 by default, with 20 to 100 behaviours each) refreshed end to end with a registered
MARC encoder on a tiny random BERT (``fixtures/encoders.py``), one
encode thread, 8 shards, in a fresh process whose peak RSS
(``ru_maxrss``) is the figure; a sampling thread attributes it to the
refresh's phases and also records the peak of anonymous memory (RSS less
the pages of mapped files, such as an index's on-disk lists, which the
kernel can drop under pressure). Then a second fresh process backfills 1% new items
(``backfill(config, items=PATH)``). The stores are kept under ``--work``
for ``benchmarks.faiss_1m`` and ``benchmarks.storage``.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.catalogue import config_for, write_catalogue, write_new_items
from benchmarks.common import child, command, machine, save
from fixtures.encoders import benchmark_registry

MODULE = "benchmarks.scaling"
CHILD = "benchmarks.refresh_cost"


def store_for(work: Path, size: int) -> Path:
    return work / str(size) / "store"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--work", type=Path, help="where stores are kept (default: temporary)")
    parser.add_argument("--no-backfill", action="store_true")
    parser.add_argument("--inline", action="store_true", help="no fresh processes (smoke runs)")
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    registry = benchmark_registry(work / "model", "tiny")
    sizes = {}
    for size in args.sizes:
        root = work / str(size)
        paths = write_catalogue(root / "catalogue", size, args.users)
        config = config_for(paths, registry, store_for(work, size), encode={"threads": 1})
        config_path = root / "config.json"
        config_path.write_text(config.model_dump_json())
        result = {
            "refresh": child(
                CHILD, "--child", "refresh", "--config", config_path, inline=args.inline
            )
        }
        refresh = result["refresh"]
        result["seconds_per_100k_items"] = round(refresh["seconds"] * 100_000 / size, 2)
        result["peak_rss_mib"] = refresh["peak_rss_mib"]
        result["peak_anonymous_mib"] = refresh["peak_anonymous_mib"]
        if not args.no_backfill:
            new = write_new_items(root / "new-items.parquet", 10**8, max(1, size // 100))
            result["backfill"] = child(
                CHILD,
                "--child",
                "backfill",
                "--config",
                config_path,
                "--new-items",
                new,
                inline=args.inline,
            )
            result["backfill_ratio"] = round(result["backfill"]["seconds"] / refresh["seconds"], 4)
        sizes[str(size)] = result
        print(size, refresh["seconds"], refresh["peak_rss_mib"], file=sys.stderr, flush=True)
    smallest, largest = str(min(args.sizes)), str(max(args.sizes))
    figures = {
        "command": command(MODULE, argv),
        "machine": machine(),
        "model": "registered MARC encoder on a tiny random BERT (2 layers, hidden 32), k 64",
        "catalogue": (
            f"generated items; {args.users} users with 20-100 behaviours each at every size"
        ),
        "encode_threads": 1,
        "shards": 8,
        "fresh_processes": not args.inline,
        "sizes": sizes,
        "rss_ratio": round(sizes[largest]["peak_rss_mib"] / sizes[smallest]["peak_rss_mib"], 3),
        "rss_goal": f"peak RSS at {largest} <= 1.2 x that at {smallest}",
        "anonymous_ratio": round(
            sizes[largest]["peak_anonymous_mib"] / sizes[smallest]["peak_anonymous_mib"], 3
        ),
        "time_per_100k_ratio": round(
            sizes[largest]["seconds_per_100k_items"] / sizes[smallest]["seconds_per_100k_items"],
            3,
        ),
        "work": str(work),
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
