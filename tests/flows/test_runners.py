"""Shard tasks spread over a real local Dask cluster give what the thread runner gives,
and every subflow of a run uses the same cluster."""

import hashlib
import importlib.util
import os
from contextlib import nullcontext
from pathlib import Path

import pytest
from prefect import flow, task

from flows.runners import gpu_request, one_cluster, task_runner
from marc_batch.config import FlowsConfig
from marc_batch.errors import ConfigError
from tests.tiny import config_for


@task
def digest_shard(shard: int) -> tuple[int, str, int]:
    return shard, hashlib.sha256(f"shard-{shard}".encode()).hexdigest(), os.getpid()


@flow
def digest_all(shards: int) -> list[tuple[int, str, int]]:
    return [future.result() for future in digest_shard.map(range(shards))]


def run(config: FlowsConfig) -> list[tuple[int, str, int]]:
    return digest_all.with_options(task_runner=task_runner(config))(8)


def test_the_subflows_of_one_run_share_one_dask_cluster_and_match_threads(
    tmp_path: Path,
) -> None:
    threads = run(FlowsConfig(runner="threads"))
    config = config_for(tmp_path, tmp_path / "models")
    config.flows = FlowsConfig(runner="dask", workers=2)
    with one_cluster(config) as shared:
        assert shared.flows.cluster_address and not config.flows.cluster_address
        first, second = run(shared.flows), run(shared.flows)
    assert [row[:2] for row in first] == [row[:2] for row in threads]
    worker_pids = {row[2] for row in first}
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    assert {row[2] for row in second} == worker_pids  # the same two processes
    in_process = config.model_copy(update={"flows": FlowsConfig(runner="threads")})
    with one_cluster(in_process) as unchanged:
        assert unchanged is in_process


@pytest.mark.skipif(importlib.util.find_spec("prefect_ray") is not None, reason="ray installed")
def test_ray_without_its_extra_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"marc-batch\[ray\]"):
        task_runner(FlowsConfig(runner="ray"))


def test_gpus_are_requested_only_on_ray() -> None:
    assert isinstance(gpu_request(FlowsConfig(runner="dask", gpus_per_task=1)), nullcontext)
    assert isinstance(gpu_request(FlowsConfig(runner="ray", gpus_per_task=0)), nullcontext)
