"""Run every benchmark and write ``results/*.json`` plus ``results/summary.md``.

Usage: python -m benchmarks.run                 (make bench: full sizes, into benchmarks/results)
       python -m benchmarks.run --mode quick    (make bench-quick: tiny sizes, into a temp dir)
       python -m benchmarks.run --mode slow     (full, plus retraining for the quality table)

``BENCH_MODE`` sets the default mode. Full mode runs each benchmark in its
own process, so no figure inherits another's memory or threads; quick mode
runs them in this process on tiny inputs and only shows that everything
runs (its figures mean nothing) and never writes into ``benchmarks/results``.
``--only NAME`` reruns some steps (``run.json`` lists every run and what it
ran); the summary is rebuilt from whatever JSON files the output directory
holds. The working directory (stores, catalogues, models) is temporary
unless ``--work`` is given.
"""

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import summary
from benchmarks.common import ROOT, command, machine

MODULE = "benchmarks.run"
RESULTS = ROOT / "benchmarks" / "results"


@dataclass
class Step:
    name: str
    module: str
    argv: list[str]


def steps(mode: str, out: Path, work: Path) -> list[Step]:
    """The benchmarks in run order (later ones read the stores earlier ones leave in ``work``)."""
    quick = mode == "quick"
    big = 2_000 if quick else 1_000_000
    rows = "20000" if quick else "1000000"
    refresh = (
        ["--backbone", "tiny", "--items", "500", "--users", "50", "--repeats", "1", "--inline"]
        if quick
        else ["--backbone", "minilm", "--repeats", "2"]
    )
    # Full mode: 300k and 3M, and 1M, whose store the later steps read.
    sizes = [500, big] if quick else [300_000, big, 3_000_000]
    scaling = ["--sizes", *map(str, sizes)] + (["--inline"] if quick else [])
    big_store = str(work / "scaling" / str(big) / "store")
    faiss = ["--queries", "200", "--repeats", "1", "--flat-max-rows", "1000"] if quick else []
    label = "tiny-500" if quick else "minilm-ml100k"
    big_label = "tiny-1m" if big == 1_000_000 else f"tiny-{big}"
    stores = [f"{label}={work / 'refresh' / 'store'}", f"{big_label}={big_store}"]
    listed = [
        Step("refresh_cost", "benchmarks.refresh_cost", [*refresh, "--work", f"{work}/refresh"]),
        Step("scaling", "benchmarks.scaling", [*scaling, "--work", f"{work}/scaling"]),
        Step(
            "storage",
            "benchmarks.storage",
            ["--store", stores[0], "--store", stores[1], "--hidden", "384"],
        ),
        Step("faiss_1m", "benchmarks.faiss_1m", ["--store", big_store, *faiss]),
        Step(
            "encoder_throughput",
            "benchmarks.encoder_throughput",
            ["--quick", "--repeats", "1", "--max-length", "64"] if quick else ["--repeats", "2"],
        ),
        Step(
            "bahe_throughput",
            "benchmarks.bahe_throughput",
            ["--quick", "--repeats", "1", "--max-length", "64"] if quick else ["--repeats", "2"],
        ),
        Step(
            "bahe_users",
            "benchmarks.bahe_users",
            ["--users", "100", "--items", "1000", "--text-max", "0", "--inline"]
            if quick
            else ["--users", "10000", "100000", "--text-max", "100000", "--work", f"{work}/bahe"],
        ),
        Step(
            "ingest_users",
            "benchmarks.ingest_users",
            ["--users", "200", "--items", "500", "--inline"]
            if quick
            else ["--work", f"{work}/ingest"],
        ),
        Step("validate_1m", "benchmarks.validate_1m", ["--rows", rows, "--peer-rows", "10000"]),
        Step(
            "store_1m",
            "benchmarks.store_1m",
            ["--rows", rows, "--k", "64"] + (["--inline"] if quick else []),
        ),
        Step("history_1m", "benchmarks.history_1m", ["--rows", str(big)]),
        # Named for the size the committed result holds (quick mode: a tiny store, same name).
        Step("drift_1000000", "benchmarks.drift_1m", ["--rows", str(big)]),
    ]
    if not quick:
        listed += [
            Step("store_1m_float16", "benchmarks.store_1m", ["--rows", rows, "--dtype", "float16"]),
            Step("drift_250000", "benchmarks.drift_1m", ["--rows", "250000"]),
            Step("dask_workers", "benchmarks.dask_workers", ["--work", f"{work}/dask"]),
        ]
    for step in listed:
        step.argv += ["--out", str(out / f"{step.name}.json")]
    return listed


def run_step(step: Step, inline: bool) -> None:
    if inline:
        importlib.import_module(step.module).main(step.argv)
        return
    argv = [sys.executable, "-m", step.module, *step.argv]
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def retrain(out: Path) -> None:
    """Slow mode: train and evaluate MARC against the baselines at k = 64 (with the leak check's
    all-rows arm), 32 and 128 (30 to 60 min each)."""
    for k, arms in (("64", []), ("32", ["--recipe-only"]), ("128", ["--recipe-only"])):
        subprocess.run(["bash", "benchmarks/run_ml100k.sh", k, *arms], cwd=ROOT, check=True)
        target = out / f"ml100k-minilm-k{k}"
        if out != RESULTS:
            shutil.copytree(RESULTS / f"ml100k-minilm-k{k}", target, dirs_exist_ok=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--mode", choices=("quick", "full", "slow"), default=os.environ.get("BENCH_MODE", "full")
    )
    parser.add_argument("--out", type=Path, help="default: benchmarks/results (quick: temporary)")
    parser.add_argument("--work", type=Path, help="kept if given; default: temporary, removed")
    parser.add_argument("--only", nargs="+", help="step names to run (default: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse(argv)
    quick = args.mode == "quick"
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-quick-")) if quick else RESULTS)
    if quick and out.resolve() == RESULTS.resolve():
        raise SystemExit("quick mode never writes into benchmarks/results; pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-work-"))
    log_path = out / "run.json"
    runs = json.loads(log_path.read_text())["runs"] if args.only and log_path.is_file() else []
    this = {"command": command(MODULE, argv), "mode": args.mode, "machine": machine()}
    steps_run: dict[str, float] = {}
    started = time.perf_counter()
    try:
        for step in steps(args.mode, out, work):
            if args.only and step.name not in args.only:
                continue
            print(f"[bench] {step.name}: python -m {step.module} {' '.join(step.argv)}", flush=True)
            begun = time.perf_counter()
            run_step(step, inline=quick)
            steps_run[step.name] = round(time.perf_counter() - begun, 1)
            print(f"[bench] {step.name}: {steps_run[step.name]} s", flush=True)
        if args.mode == "slow" and (not args.only or "quality" in args.only):
            begun = time.perf_counter()
            retrain(out)
            steps_run["quality"] = round(time.perf_counter() - begun, 1)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    this.update({"steps": steps_run, "seconds": round(time.perf_counter() - started, 1)})
    log_path.write_text(json.dumps({"runs": [*runs, this]}, indent=2) + "\n")
    path = summary.write(out, quality=RESULTS if out != RESULTS else out)
    print(f"[bench] {path}", flush=True)
    return path


if __name__ == "__main__":
    main()
