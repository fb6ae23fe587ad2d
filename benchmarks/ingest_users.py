"""Ingestion's memory as users grow: does the driver's peak follow a part or the catalogue?

Usage: python -m benchmarks.ingest_users --users 200000 1000000 \
           --out benchmarks/results/streaming/ingest_users.json

Each size is a generated catalogue (``benchmarks/catalogue.py``: ``--items``
items, N users with 20 to 100 distinct items each, drawn with popularity
skew, and ``--defects`` of every table's rows made bad: null and repeated
keys, empty and overlong titles, unknown users and items) ingested by shard
(:func:`marc_batch.data.sharded.ingest_by_shard`, 8 shards, the default
``sources.part_rows`` and ``sources.memory_limit``) in a fresh process. The
figures are the traced phases (partition, validate, split, render: seconds,
RSS on entry and peak) and the process's peak RSS. The peer is the same
catalogue's refresh by the code before parts (the ``ingest`` phase of
``benchmarks/results/bahe_users_1m.json``, same generator and seed).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.catalogue import config_for, write_catalogue
from benchmarks.common import child, command, machine, peak_rss_mib, save

MODULE = "benchmarks.ingest_users"


def child_result(argv: list[str]) -> dict:
    """Ingest the catalogue under ``argv[-1]`` and report phases and rows."""
    from marc_batch.data.sharded import ingest_by_shard
    from marc_batch.tracing import Tracer, rss_mib

    root = Path(argv[-1])
    paths = {name: root / f"{name}.parquet" for name in ("items", "users", "interactions")}
    config = config_for(paths, root / "registry", root / "store")
    start = rss_mib()
    with Tracer() as tracer, ingest_by_shard(config, config.store.shards) as catalogue:
        report = catalogue.report
    return {
        "tables": {name: table.model_dump() for name, table in report.tables.items()},
        "quarantined": report.quarantined,
        "phases": tracer.records,
        "rss_start_mib": round(start),
        "peak_rss_mib": round(peak_rss_mib()),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--defects", type=float, default=0.01, help="share of bad rows per table")
    parser.add_argument("--work", type=Path, help="where catalogues are kept (default: temporary)")
    parser.add_argument("--inline", action="store_true", help="no fresh processes (smoke runs)")
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ingest-users-"))
    sizes = {}
    for users in args.users:
        root = work / str(users)
        if not (root / "interactions.parquet").is_file():
            write_catalogue(root, args.items, users, defects=args.defects)
        sizes[str(users)] = child(MODULE, "--child", root, inline=args.inline)
        print(users, sizes[str(users)]["peak_rss_mib"], file=sys.stderr, flush=True)
    figures = {
        "command": command(MODULE, argv),
        "machine": machine(),
        "items": args.items,
        "catalogue": f"{args.items} generated items; users with 20-100 behaviours each, "
        f"popularity-skewed (P(rank r) ~ 1/r); {args.defects:.0%} of each table's rows bad; "
        "8 shards",
        "sizes": sizes,
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child_result(sys.argv[2:])))
    else:
        main()
