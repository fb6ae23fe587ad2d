"""Where shard tasks run: threads here, or an existing Dask or Ray cluster.

Scale-out reuses Prefect's own task runners rather than a scheduler of
ours: the flow code is the same whatever the engine, and Prefect tracks
every task run, its retries and its state in any of them.
"""

from contextlib import AbstractContextManager, nullcontext

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from marc_batch.config import FlowsConfig
from marc_batch.errors import ConfigError


def task_runner(config: FlowsConfig) -> TaskRunner:
    """The task runner ``config.runner`` names."""
    if config.runner == "threads":
        return ThreadPoolTaskRunner(max_workers=config.workers)
    if config.runner == "dask":
        from prefect_dask import DaskTaskRunner

        if config.cluster_address:
            return DaskTaskRunner(address=config.cluster_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": config.workers, "threads_per_worker": 1, "processes": True}
        )
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise ConfigError(
            "flows.runner 'ray' needs prefect-ray: pip install 'marc-batch[ray]'"
        ) from None
    return RayTaskRunner(address=config.cluster_address)


def gpu_request(config: FlowsConfig) -> AbstractContextManager:
    """Around task submission: reserve ``gpus_per_task`` GPUs per task on Ray; elsewhere nothing."""
    if config.runner != "ray" or not config.gpus_per_task:
        return nullcontext()
    from prefect_ray.context import remote_options

    return remote_options(num_gpus=config.gpus_per_task)
