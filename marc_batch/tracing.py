"""Phase timing and memory for the run path, off unless someone is listening.

The pipeline marks its phases (``with phase("encode_rows"): ...``); a phase
costs one context-variable lookup when no tracer is active, so production
runs pay nothing. A benchmark switches a :class:`Tracer` on around a run and
reads, per phase, wall seconds, calls and resident memory (the RSS when the
phase first began and the highest RSS seen while it ran; nested phases
report inclusive peaks). RSS is sampled by a background thread, because a
phase's peak usually falls between its start and its end. The tracer also
keeps the highest *anonymous* resident memory of the run: RSS counts the
pages of memory-mapped files (an index's on-disk lists) that the kernel
can drop and read again under pressure; anonymous memory is what a
memory cap must hold.

The tracer is process-wide on purpose: shard tasks on a thread pool run in
other threads but the same process and memory, and belong to the same run.
"""

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, Self, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

PAGE = os.sysconf("SC_PAGE_SIZE")

_active: "Tracer | None" = None


def memory_mib() -> tuple[float, float]:
    """Resident memory of this process now, and the part of it not backed by files."""
    with open("/proc/self/statm") as fh:
        resident, file_backed = (int(field) for field in fh.read().split()[1:3])
    return resident * PAGE / 2**20, (resident - file_backed) * PAGE / 2**20


def rss_mib() -> float:
    """Resident memory of this process now."""
    return memory_mib()[0]


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a phase of the run; recorded only while a :class:`Tracer` is on."""
    tracer = _active
    if tracer is None:
        yield
        return
    with tracer.phase(name):
        yield


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Mark every call of the decorated function as the phase ``name``."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with phase(name):
                return function(*args, **kwargs)

        return run

    return decorate


class Tracer:
    """Records the phases marked with :func:`phase` while it is on (``with Tracer() as t``)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.records: dict[str, dict[str, float]] = {}
        self._open: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.peak_anonymous_mib = memory_mib()[1]

    def __enter__(self) -> Self:
        global _active
        if _active is not None:
            raise RuntimeError("a tracer is already on in this process")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._observe()

    def _observe(self) -> None:
        now, anonymous = memory_mib()
        with self._lock:
            self.peak_anonymous_mib = max(self.peak_anonymous_mib, anonymous)
            for name in self._open:
                record = self.records[name]
                record["peak_rss_mib"] = max(record["peak_rss_mib"], now)
                record["peak_anonymous_mib"] = max(record["peak_anonymous_mib"], anonymous)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        now, anonymous = memory_mib()
        with self._lock:
            record = self.records.setdefault(
                name,
                {
                    "seconds": 0.0,
                    "calls": 0,
                    "rss_in_mib": now,
                    "peak_rss_mib": now,
                    "peak_anonymous_mib": anonymous,
                },
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

    def figures(self) -> dict[str, dict[str, float]]:
        """The records, rounded for a JSON result (seconds to ms, memory to MiB)."""
        with self._lock:
            return {
                name: {k: round(v, 3) if k == "seconds" else round(v) for k, v in record.items()}
                for name, record in self.records.items()
            }
