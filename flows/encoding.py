"""Shard encoding as Prefect tasks, on whichever engine the config names.

Each shard is one task run: retried on failure (a flaky object store, a
shard past ``flows.shard_timeout_seconds``; a lost Dask worker's shard is
run again by the scheduler), holding one slot of the global concurrency
limit ``gpu`` while it encodes, and logging its throughput. Operators size ``gpu`` to
their GPUs (``prefect gcl create gpu --limit <GPUs>``); where it does not
exist yet, the first run creates it with one slot per local GPU (one on a
CPU machine) on threads, or ``flows.workers`` slots on a cluster. The tasks run
inside an ``encode-shards`` subflow whose task runner comes from
``flows.runner`` (threads, a Dask cluster, a Ray cluster), so the engine is
a deployment setting, not code.
"""

from collections.abc import Callable
from typing import TypeVar

import torch
from prefect import flow, get_client, get_run_logger, task, unmapped
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.runtime import flow_run, task_run
from prefect.states import State

from flows.outcome import SHARD_TASK, run_step
from flows.runners import gpu_request, one_cluster, shard_deadline, task_runner
from flows.slots import GPU_LIMIT, gpu_slot, reclaim_expired_slots
from marc_batch.config import Config
from marc_batch.encode.stats import EncodeStats
from marc_batch.parameters import BackfillParameters, RefreshParameters
from marc_batch.pipeline.shards import ShardJob, encode_job

R = TypeVar("R")


@task(name="encode-shard", task_run_name="encode-{job.entity}-shard-{job.shard}", **SHARD_TASK)
def encode_shard(config: Config, model_version: str, job: ShardJob) -> EncodeStats:
    holder = ConcurrencyLeaseHolder(type="task_run", id=task_run.get_id())
    what = f"{job.entity} shard {job.shard}"
    with gpu_slot(config.flows, holder), shard_deadline(config.flows, what):
        stats = encode_job(config, model_version, job)
    get_run_logger().info(
        "%s shard %d: %d texts, %.0f texts/s, %.0f tokens/s, padding %.1f%%",
        job.entity,
        job.shard,
        job.rows,
        stats.texts_per_second,
        stats.tokens_per_second,
        100 * stats.padding_ratio,
    )
    return stats


def ensure_gpu_limit(config: Config) -> None:
    """Create the ``gpu`` limit if it is missing, so encoding is always limited."""
    slots = config.flows.workers
    if config.flows.runner == "threads":
        slots = max(1, torch.cuda.device_count())
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(GPU_LIMIT)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=GPU_LIMIT, limit=slots)
                )
            except ObjectAlreadyExists:  # another run created it first
                return
            get_run_logger().info(
                "created the %r concurrency limit with %d slot(s)", GPU_LIMIT, slots
            )


@flow(name="encode-shards", log_prints=False)
def encode_shards(config: Config, model_version: str, jobs: list[ShardJob]) -> list[EncodeStats]:
    """Submit every shard at once; the runner and the ``gpu`` limit decide how many run at once."""
    ensure_gpu_limit(config)
    reclaim_expired_slots()
    with gpu_request(config.flows):
        futures = encode_shard.map(unmapped(config), unmapped(model_version), jobs)
    return [future.result() for future in futures]


def encode_on_engine(config: Config, model_version: str, jobs: list[ShardJob]) -> list[EncodeStats]:
    """The :data:`ShardRunner` the flows hand to the library's refresh and backfill."""
    engine = encode_shards.with_options(task_runner=task_runner(config.flows))
    return engine(config, model_version, jobs)


def run_on_engine(
    job: Callable[..., R],
    parameters: RefreshParameters | BackfillParameters,
    summarise: Callable[[R], None],
    **options: object,
) -> R | State:
    """Run a snapshot-writing ``job`` (refresh, backfill) with its shards on the engine.

    The run id is the flow run's, so quarantine files and the manifest name it;
    its subflows share one cluster (:func:`one_cluster`).
    """

    def run() -> R:
        with one_cluster(parameters.load()) as config:
            return job(
                config,
                run_id=flow_run.get_id(),
                encode=encode_on_engine,
                channel=parameters.channel,
                **options,
            )

    return run_step(run, summarise)
