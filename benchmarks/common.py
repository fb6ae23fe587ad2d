"""What every benchmark records: the command, the machine, timings, peak memory per phase."""

import importlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def machine() -> str:
    """CPU model, cores, memory and load when the benchmark started (the machine is shared)."""
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
                break
    memory = os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30
    load = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0))
    return f"{model}, {cores} cores, {memory:.0f} GiB, no GPU, load {load:.1f} at start"


def command(module: str, argv: list[str] | None = None) -> str:
    """``python -m module args``, as one would type it from the repository root."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def save(path: Path | None, figures: dict[str, Any]) -> None:
    """Print the figures and write them to ``path`` as JSON."""
    text = json.dumps(figures, indent=2) + "\n"
    print(text, end="", flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def rss_mib() -> float:
    """Resident memory now."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


def peak_rss_mib() -> float:
    """The most resident memory this process has had so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(module: str, *args: object, inline: bool = False) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process; its last stdout line is a JSON object.

    ``inline`` calls the module's ``child_result(argv)`` in this process instead,
    which saves the start-up of a process (seconds) where only running matters.
    """
    argv = [str(arg) for arg in args]
    if inline:
        return importlib.import_module(module).child_result(argv)
    full = [sys.executable, "-m", module, *argv]
    done = subprocess.run(full, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(full)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Phases:
    """Wall time and resident memory of named phases, by wrapping the functions that run them.

    A sampling thread reads the process's RSS every ``interval`` seconds;
    each open phase keeps the highest value seen while it ran, so nested
    phases report inclusive peaks. ``rss_in`` is the RSS when the phase
    (first) began, so ``peak - rss_in`` is what the phase added on top.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.records: dict[str, dict[str, float]] = {}
        self._open: list[str] = []
        self._restore: list[tuple[object, str, object]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._observe()

    def _observe(self) -> None:
        now = rss_mib()
        with self._lock:
            for name in self._open:
                record = self.records[name]
                record["peak_rss_mib"] = max(record["peak_rss_mib"], now)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        now = rss_mib()
        with self._lock:
            record = self.records.setdefault(
                name, {"seconds": 0.0, "calls": 0, "rss_in_mib": now, "peak_rss_mib": now}
            )
            self._open.append(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self._observe()
            with self._lock:
                record["seconds"] += time.perf_counter() - start
                record["calls"] += 1
                self._open.remove(name)

    def wrap(self, owner: object, attribute: str, name: str | None = None) -> None:
        """Replace ``owner.attribute`` (a function or method) by a timed version of itself."""
        original: Callable = getattr(owner, attribute)
        label = name or attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(label):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)
        self._restore.append((owner, attribute, original))

    def close(self) -> dict[str, dict[str, float]]:
        """Stop sampling, undo the wrapping, and return the rounded records."""
        self._stop.set()
        self._thread.join()
        for owner, attribute, original in reversed(self._restore):
            setattr(owner, attribute, original)
        return {
            name: {k: round(v, 3) if k == "seconds" else round(v) for k, v in record.items()}
            for name, record in self.records.items()
        }


def pipeline_phases() -> Phases:
    """Phases of a refresh or a backfill, as the pipeline modules call them."""
    from marc_batch.pipeline import backfill, refresh, shards
    from marc_batch.store import Transaction

    phases = Phases()
    for module in (refresh, backfill):
        for attribute in ("stage_shards", "run_jobs", "collect_shards"):
            phases.wrap(module, attribute)
    phases.wrap(refresh, "ingest")
    phases.wrap(refresh, "publish_index")
    phases.wrap(backfill, "_catalogue", "ingest")
    phases.wrap(backfill, "plan_change")
    phases.wrap(backfill, "_update_indexes", "publish_index")
    phases.wrap(shards, "entity_runtime", "load_encoder")
    phases.wrap(shards, "encode_rows")
    phases.wrap(Transaction, "commit")
    return phases
