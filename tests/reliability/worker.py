"""A refresh, backfill or publish in a process of its own, for the kill tests.

:func:`start` forks the test process (the encoder and libraries are already
loaded, so a worker starts in milliseconds, not the seconds a fresh
interpreter needs) and runs one job in the child. ``hang_at="shard:N"``
stops inside the encoder on the N-th shard (after N - 1 shards are saved),
``hang_at="index"`` inside the index build; either creates ``ready`` and
sleeps, so that the test can SIGKILL the child at exactly that point. A
``failpoint`` makes the child kill itself inside a commit or a channel move
(see ``marc_batch/store/failpoints.py``).
"""

import multiprocessing
import os
import signal
import time
from pathlib import Path

from marc_batch.config import Config
from marc_batch.store.failpoints import ENV

FORK = multiprocessing.get_context("fork")


def _hang(ready: Path) -> None:
    ready.write_text("ready")
    while True:
        time.sleep(60)


def _work(
    config: Config,
    mode: str,
    hang_at: str | None,
    ready: Path | None,
    failpoint: str | None,
    ref: str,
    channel: str,
) -> None:
    os.environ.pop(ENV, None)
    if failpoint:
        os.environ[ENV] = failpoint
    import marc_batch.pipeline.indexes as indexes
    import marc_batch.pipeline.shards as shards
    from marc_batch.pipeline.backfill import backfill
    from marc_batch.pipeline.publish import publish
    from marc_batch.pipeline.refresh import refresh
    from marc_batch.store import Store

    if hang_at and hang_at.startswith("shard:"):
        wanted, seen = int(hang_at.split(":")[1]), []
        real_encode = shards.encode_rows

        def encode_rows(runtime, part):
            seen.append(part.num_rows)
            if len(seen) == wanted:
                _hang(ready)
            return real_encode(runtime, part)

        shards.encode_rows = encode_rows
    elif hang_at == "index":
        indexes.build_from_pieces = lambda *_, **__: _hang(ready)
    if mode == "publish":
        publish(Store(config.store), ref, channel)
    elif mode == "refresh":
        refresh(config)
    else:
        backfill(config)


def start(
    config: Config,
    mode: str,
    hang_at: str | None = None,
    ready: Path | None = None,
    failpoint: str | None = None,
    ref: str = "latest",
    channel: str = "prod",
) -> multiprocessing.Process:
    child = FORK.Process(
        target=_work, args=(config, mode, hang_at, ready, failpoint, ref, channel), daemon=True
    )
    child.start()
    return child


def kill_when_ready(child: multiprocessing.Process, ready: Path, timeout: float = 240) -> None:
    """SIGKILL the child as soon as it reports reaching its hang point."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if not child.is_alive():
            raise AssertionError(f"the worker ended ({child.exitcode}) before its hang point")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("the worker never reached its hang point")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL


def died_at_failpoint(child: multiprocessing.Process, timeout: float = 240) -> bool:
    child.join(timeout)
    return child.exitcode == -signal.SIGKILL
