"""Shard indexing as Prefect tasks, on the same engine as the encoding.

Once the driver has trained the index's coarse quantizer, each shard's
vectors are added by an ``index-shard`` task (retried on failure like an
encoding task, but holding no ``gpu`` slot: it is CPU work) inside an
``index-shards`` subflow whose task runner comes from ``flows.runner``.
"""

from prefect import flow, get_run_logger, task, unmapped

from flows.outcome import SHARD_TASK
from flows.runners import task_runner
from marc_batch.config import Config
from marc_batch.pipeline.shard_indexes import IndexJob, index_job


@task(name="index-shard", task_run_name="index-{job.entity}-shard-{job.shard}", **SHARD_TASK)
def index_shard(config: Config, job: IndexJob) -> None:
    index_job(config, job)
    get_run_logger().info("%s shard %d added to the index", job.entity, job.shard)


@flow(name="index-shards", log_prints=False)
def index_shards(config: Config, jobs: list[IndexJob]) -> None:
    """Submit every shard at once; the runner decides how many run at once."""
    futures = index_shard.map(unmapped(config), jobs)
    for future in futures:
        future.result()


def index_on_engine(config: Config, jobs: list[IndexJob]) -> None:
    """The :data:`IndexRunner` the flows hand to the library's refresh."""
    index_shards.with_options(task_runner=task_runner(config.flows))(config, jobs)
