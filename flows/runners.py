"""Where shard tasks run: threads here, or an existing Dask or Ray cluster.

Scale-out reuses Prefect's own task runners rather than a scheduler of
ours: the flow code is the same whatever the engine, and Prefect tracks
every task run, its retries and its state in any of them.

A Dask worker lost mid-shard (SIGKILL, OOM, a lost node) costs no more than
its shard: the scheduler runs the same task run again on a live worker
(the nanny of a local cluster starts a replacement), up to Dask's
``distributed.scheduler.allowed-failures`` times, each time with Prefect's
own retries afresh. Nothing is lost or doubled: the rows go to the store
under the shard's key, and the driver reads one set per shard.

A stuck shard is stopped by :func:`shard_deadline`, whatever the engine.
"""

import contextvars
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from prefect import get_run_logger
from prefect.logging.handlers import APILogWorker
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.timeout import timeout

from marc_batch.config import Config, FlowsConfig
from marc_batch.errors import ConfigError


def task_runner(config: FlowsConfig) -> TaskRunner:
    """The task runner ``config.runner`` names.

    On Dask it connects to ``cluster_address``, which a run without one of
    its own gets from :func:`one_cluster`.
    """
    if config.runner == "threads":
        return ThreadPoolTaskRunner(max_workers=config.workers)
    if config.runner == "dask":
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=config.cluster_address)
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise ConfigError(
            "flows.runner 'ray' needs prefect-ray: pip install 'marc-batch[ray]'"
        ) from None
    return RayTaskRunner(address=config.cluster_address)


@contextmanager
def one_cluster(config: Config) -> Iterator[Config]:
    """``config`` for every subflow of one run, all on one Dask cluster.

    A ``dask`` runner without ``cluster_address`` starts a local cluster of
    ``flows.workers`` processes; started per subflow (encoding, then
    indexing), a refresh would pay the processes' start-up and imports
    twice, about 30 s each on a 2-core machine (``benchmarks/dask_workers.py``).
    So the run starts it once, here, and its subflows connect to it by
    address. Other runners get ``config`` as it is.
    """
    flows = config.flows
    if flows.runner != "dask" or flows.cluster_address:
        yield config
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=flows.workers, threads_per_worker=1, processes=True) as cluster:
        address = {"cluster_address": cluster.scheduler_address}
        yield config.model_copy(update={"flows": flows.model_copy(update=address)})


def gpu_request(config: FlowsConfig) -> AbstractContextManager:
    """Around task submission: reserve ``gpus_per_task`` GPUs per task on Ray; elsewhere nothing."""
    if config.runner != "ray" or not config.gpus_per_task:
        return nullcontext()
    from prefect_ray.context import remote_options

    return remote_options(num_gpus=config.gpus_per_task)


STUCK_GRACE_SECONDS = 60.0


class ShardTimeout(TimeoutError):
    """A shard still encoding after ``flows.shard_timeout_seconds``: retried, like a lost worker."""


def _on_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


Logger = logging.Logger | logging.LoggerAdapter


def _restart_worker(logger: Logger, what: str, seconds: float) -> None:
    """Kill this Dask worker process, as a lost machine dies; the scheduler reruns its shard."""
    logger.error(
        "%s is stuck in a call that cannot be interrupted %.0f s after its deadline; "
        "killing Dask worker process %d so the shard runs again on a live worker",
        what,
        seconds,
        os.getpid(),
    )
    APILogWorker.drain_all(timeout=5)
    os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def shard_deadline(config: FlowsConfig, what: str) -> Iterator[None]:
    """Stop the block (a shard's encoding) after ``config.shard_timeout_seconds`` with
    :class:`ShardTimeout`, which the task's retries then retry.

    The deadline covers the encoding only, not the wait for a ``gpu`` slot:
    a shard queued behind others is not stuck (Prefect's task timeout counts
    both, and timed out every shard that waited its turn too long). It is
    Prefect's timeout all the same: in a worker thread (threads and Dask
    alike) it raises at the next Python instruction of the shard, which
    stops an encode loop that crawls or spins at once, but not a thread
    blocked in a single call into C code (a hung driver, a read that never
    returns): that raises only when the call returns. On a Dask worker, a
    shard still running ``STUCK_GRACE_SECONDS`` (or its timeout, if shorter)
    past its deadline kills its worker process, and the scheduler runs it
    again elsewhere. On threads nothing can stop such a thread, and the run
    waits for the call.
    """
    seconds = config.shard_timeout_seconds
    if seconds is None:
        yield
        return
    watchdog = None
    if _on_dask_worker():
        grace = min(seconds, STUCK_GRACE_SECONDS)
        # In the task's context, so that its last words reach the run's API, not a new server.
        context = contextvars.copy_context()
        watchdog = threading.Timer(
            seconds + grace, context.run, (_restart_worker, get_run_logger(), what, grace)
        )
        watchdog.daemon = True
        watchdog.start()
    try:
        with timeout(seconds, timeout_exc_type=ShardTimeout):
            yield
    except ShardTimeout:
        raise ShardTimeout(
            f"{what} still encoding after {seconds:g} s (flows.shard_timeout_seconds)"
        ) from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
