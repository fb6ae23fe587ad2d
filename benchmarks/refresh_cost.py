"""Refresh overhead and backfill cost, each against its peer in the same run.

Usage: python -m benchmarks.refresh_cost --out benchmarks/results/refresh_cost.json
       (add --backbone tiny --items 2000 --users 100 for a quick run on a generated catalogue)

Overhead: ``refresh(config)`` end to end (ingest, stage shards, encode,
write the snapshot, build and recall-check the index, commit) against the
pure encoder time on the same inputs: the same item and user texts through
``EncoderRuntime.encode``, one call per entity, with the model already
loaded. Backfill: ``backfill(config, items=PATH)`` with 1% new items after
a refresh, against that refresh. By default the model is a registered MARC
encoder on the bundled all-MiniLM-L6-v2 (LoRA, random heads: the cost of
encoding does not depend on the weights) and the catalogue is
MovieLens-100K. Every measurement runs in a fresh process (so each refresh
loads its model as a nightly run would), the three alternate ``--repeats``
times, and the best of each counts, which damps the noise of a shared machine.
"""

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.catalogue import config_for, write_catalogue, write_new_items
from benchmarks.common import child, command, machine, peak_rss_mib, save
from fixtures.encoders import benchmark_registry
from marc_batch.config import Config
from marc_batch.tracing import Tracer, rss_mib

MODULE = "benchmarks.refresh_cost"
ML100K_ITEMS = 1_682


def cpu_seconds() -> float:
    """CPU time of this process so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_refresh(config: Config) -> dict:
    from marc_batch.pipeline.refresh import refresh

    rss_start = rss_mib()
    with Tracer() as tracer:
        start, cpu = time.perf_counter(), cpu_seconds()
        report = refresh(config)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "rows": report.rows,
        "encode_seconds": round(sum(e["seconds"] for e in report.encode.values()), 3),
        "encode": {
            entity: {"seconds": round(e["seconds"], 3), "padding_ratio": e["padding_ratio"]}
            for entity, e in report.encode.items()
        },
        "index": report.indexes["item"].factory,
        "behaviours": report.behaviours.model_dump() if report.behaviours else None,
        "phases": tracer.figures(),
        "rss_start_mib": round(rss_start),
        "peak_rss_mib": round(peak_rss_mib()),
        "peak_anonymous_mib": round(tracer.peak_anonymous_mib),
    }


def run_pure(config: Config) -> dict:
    """The same texts through ``EncoderRuntime.encode``: one call per entity, model loaded."""
    from marc_batch.data.ingest import ingest
    from marc_batch.model.registry import Registry
    from marc_batch.pipeline.encoders import entity_runtime

    catalogue, _ = ingest(config)
    version = Registry(Path(config.model.registry)).current()
    entities = {}
    with Tracer():  # the same sampling thread as in the refresh, so both pay for it
        for entity, table in (("item", catalogue.item_texts), ("user", catalogue.user_texts)):
            texts = table["text"].to_pylist()
            runtime = entity_runtime(config, version, entity)
            start, cpu = time.perf_counter(), cpu_seconds()
            _, stats = runtime.encode(texts)
            entities[entity] = {
                "texts": len(texts),
                "tokens": stats.tokens,
                "max_length": runtime.max_length,
                "seconds": round(time.perf_counter() - start, 3),
                "cpu_seconds": round(cpu_seconds() - cpu, 3),
                "padding_ratio": round(stats.padding_ratio, 4),
            }
    return {
        "seconds": round(sum(e["seconds"] for e in entities.values()), 3),
        "cpu_seconds": round(sum(e["cpu_seconds"] for e in entities.values()), 3),
        "entities": entities,
        "peak_rss_mib": round(peak_rss_mib()),
    }


def run_backfill(config: Config, items: Path) -> dict:
    from marc_batch.pipeline.backfill import backfill

    rss_start = rss_mib()
    with Tracer() as tracer:
        start, cpu = time.perf_counter(), cpu_seconds()
        report = backfill(config, items=items)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert report.committed and report.changes["item"].added > 0
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "added": report.changes["item"].added,
        "rows": report.rows,
        "index": report.indexes["item"].factory if "item" in report.indexes else None,
        "index_updated": "item" in report.indexes and report.indexes["item"].updated,
        "phases": tracer.figures(),
        "rss_start_mib": round(rss_start),
        "peak_rss_mib": round(peak_rss_mib()),
        "peak_anonymous_mib": round(tracer.peak_anonymous_mib),
    }


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda run: run["seconds"])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", choices=("minilm", "tiny"), default="minilm")
    parser.add_argument("--items", type=int, default=0, help="generated items; 0: MovieLens-100K")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--threads", type=int, help="encode.threads (default: 1 for tiny)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--inline", action="store_true", help="no fresh processes (smoke runs)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=("refresh", "pure", "backfill"))
    parser.add_argument("--config", type=Path)
    parser.add_argument("--new-items", type=Path)
    return parser.parse_args(argv)


def child_result(argv: list[str]) -> dict:
    """One measurement (``--child``), in the process that calls this."""
    args = parse(argv)
    config = Config.model_validate_json(args.config.read_text())
    if args.child == "backfill":
        return run_backfill(config, args.new_items)
    return run_refresh(config) if args.child == "refresh" else run_pure(config)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.child:
        result = child_result(sys.argv[1:] if argv is None else argv)
        print(json.dumps(result))
        return result
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    threads = args.threads or (1 if args.backbone == "tiny" else None)
    registry = benchmark_registry(work / "model", args.backbone)
    paths = write_catalogue(work / "catalogue", args.items, args.users) if args.items else None
    config = config_for(paths, registry, work / "store", encode={"threads": threads})
    config_path = work / "config.json"
    config_path.write_text(config.model_dump_json())
    catalogue_items = args.items or ML100K_ITEMS
    new = max(1, round(catalogue_items / 100))
    runs: dict[str, list[dict]] = {"refresh": [], "backfill": [], "pure": []}
    for repeat in range(args.repeats):
        items = write_new_items(work / f"new-{repeat}.parquet", 10**7 + repeat * new, new)
        for name, extra in (("refresh", []), ("backfill", ["--new-items", items]), ("pure", [])):
            runs[name].append(
                child(MODULE, "--child", name, "--config", config_path, *extra, inline=args.inline)
            )
        print({name: run[-1]["seconds"] for name, run in runs.items()}, file=sys.stderr)
    refresh, pure, backfill = best(runs["refresh"]), best(runs["pure"]), best(runs["backfill"])
    figures = {
        "command": command(MODULE, argv),
        "machine": machine(),
        "model": (
            "registered MARC encoder on all-MiniLM-L6-v2 (bundled), k 64, LoRA, untrained heads"
            if args.backbone == "minilm"
            else "registered MARC encoder on a tiny random BERT (2 layers, hidden 32), k 64"
        ),
        "catalogue": (
            f"generated, {args.items} items, {args.users} users with 20-100 behaviours each"
            if args.items
            else "MovieLens-100K (1682 items, 943 users)"
        ),
        "short": (
            f"{'MiniLM' if args.backbone == 'minilm' else 'tiny BERT'}, "
            f"{f'{args.items:,} generated items' if args.items else 'ML-100K'}"
        ),
        "encode_threads": threads or "all cores",
        "shards": config.store.shards,
        "repeats": args.repeats,
        "fresh_processes": not args.inline,
        "refresh_seconds": refresh["seconds"],
        "pure_encode_seconds": pure["seconds"],
        "overhead_ratio": round(refresh["seconds"] / pure["seconds"], 3),
        "overhead_goal": "<= 1.10",
        "cpu_overhead_ratio": round(refresh["cpu_seconds"] / pure["cpu_seconds"], 3),
        "refresh_encode_seconds": refresh["encode_seconds"],
        "backfill_items": new,
        "backfill_seconds": backfill["seconds"],
        "backfill_ratio": round(backfill["seconds"] / refresh["seconds"], 4),
        "backfill_goal": "<= 0.05",
        "best": {"refresh": refresh, "pure": pure, "backfill": backfill},
        "runs": {name: [run["seconds"] for run in values] for name, values in runs.items()},
        "cpu_runs": {name: [run["cpu_seconds"] for run in values] for name, values in runs.items()},
        "store": str(work / "store"),
    }
    save(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
