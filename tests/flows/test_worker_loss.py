"""A refresh that loses a Dask worker or has a shard hang publishes the uninterrupted snapshot.

Each test arms the ``shard.encoded`` failpoint (``marc_batch/store/failpoints.py``:
a shard's rows are encoded, not yet saved, and its task holds a ``gpu``
slot) for every process through the environment that the cluster's worker
processes inherit, with a marker file so that it fires in one process only:
that process renames the marker after its pid, so the test knows whom it hit.
The snapshot must then equal an uninterrupted run's, row for row, and the
``gpu`` limit must be left with no slot held. Timings on a 2-core machine:
about 60 to 100 s per Dask refresh, most of it starting worker processes.
"""

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    TaskRunFilter,
    TaskRunFilterName,
)
from prefect.client.schemas.objects import TaskRun
from prefect.exceptions import ObjectNotFound
from prefect.states import State

from flows.nightly_refresh import nightly_refresh
from flows.slots import GPU_LIMIT
from marc_batch.config import Config
from marc_batch.parameters import RefreshParameters
from marc_batch.store import Store
from marc_batch.store.failpoints import ENV, HANG, ONCE, SHARD_ENCODED
from tests.flows.test_pipeline_flows import assert_same_content, config_file
from tests.tiny import config_for

SHARDS = 6  # 3 per entity (tests/tiny.py)
HANG_SECONDS = 240  # far past any timeout here: a run this slow was not rescued


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, registry: Path) -> Store:
    """The store of a refresh on threads that nothing interrupts."""
    root = tmp_path_factory.mktemp("uninterrupted")
    config = config_for(root, registry)
    nightly_refresh(RefreshParameters(config=config_file(root, config)))
    return Store(config.store)


async def _drop_limit() -> None:
    async with get_client() as client:
        with suppress(ObjectNotFound):
            await client.delete_global_concurrency_limit_by_name(GPU_LIMIT)


@pytest.fixture
def fresh_gpu_limit() -> Iterator[None]:
    """No ``gpu`` limit before the test, so the run sizes it as it would on a new server."""
    asyncio.run(_drop_limit())
    yield
    asyncio.run(_drop_limit())


def gpu_limit() -> tuple[int, int]:
    """The ``gpu`` limit's (slots, slots held)."""

    async def read() -> tuple[int, int]:
        async with get_client() as client:
            found = await client.read_global_concurrency_limit_by_name(GPU_LIMIT)
            return found.limit, found.active_slots

    return asyncio.run(read())


def arm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hang: str | None = None) -> Path:
    """Arm the failpoint for one process of all those the run starts; returns its marker."""
    marker = tmp_path / "failpoint"
    marker.write_text("")
    monkeypatch.setenv(ENV, SHARD_ENCODED)
    monkeypatch.setenv(ONCE, str(marker))
    if hang is not None:
        monkeypatch.setenv(HANG, hang)
    return marker


def fired_in(marker: Path) -> int:
    """The pid of the process that took the marker (it fired there)."""
    taken = list(marker.parent.glob(f"{marker.name}.*"))
    assert not marker.exists() and len(taken) == 1, "the failpoint never fired"
    return int(taken[0].suffix[1:])


def dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def refresh(tmp_path: Path, registry: Path, **flows: object) -> tuple[State, Config, float]:
    config = config_for(tmp_path, registry)
    path = config_file(tmp_path, config, **flows)
    began = time.monotonic()
    state = nightly_refresh(RefreshParameters(config=path), return_state=True)
    return state, config, time.monotonic() - began


def shard_runs(state: State) -> list[TaskRun]:
    """The encode-shard task runs of the refresh that ended in ``state``."""

    async def read() -> list[TaskRun]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(
                        any_=[state.state_details.flow_run_id]
                    )
                ),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="encode-")),
            )

    runs = [run for run in asyncio.run(read()) if run.name.startswith("encode-")]
    assert len(runs) == SHARDS and all(run.state_name == "Completed" for run in runs), [
        (run.name, run.state_name) for run in runs
    ]
    return runs


def times_running(task_run_id: UUID) -> int:
    """How many times a task run was set Running: an attempt the engine started."""

    async def read() -> int:
        async with get_client() as client:
            states = await client.read_task_run_states(task_run_id)
            return sum(s.type.value == "RUNNING" for s in states)

    return asyncio.run(read())


Refresh = Callable[..., tuple[State, Store, float, Path]]


@pytest.fixture
def armed_refresh(
    tmp_path: Path, registry: Path, fresh_gpu_limit: None, monkeypatch: pytest.MonkeyPatch
) -> Refresh:
    """Run a refresh with the failpoint armed (``hang`` as ``HANG`` reads it, or a SIGKILL);
    returns its final state, store, seconds, and the marker that tells where it fired."""

    def run(hang: str | None = None, **flows: object) -> tuple[State, Store, float, Path]:
        marker = arm(monkeypatch, tmp_path, hang)
        state, config, took = refresh(tmp_path, registry, **flows)
        assert state.is_completed(), state.message
        return state, Store(config.store), took, marker

    return run


def test_a_dask_worker_killed_mid_shard_costs_only_a_rerun_of_its_shard(
    armed_refresh: Refresh, uninterrupted: Store
) -> None:
    state, store, _, marker = armed_refresh(runner="dask", workers=2)
    victim = fired_in(marker)
    assert victim != os.getpid() and dead(victim), "a worker process, not the driver, died"
    assert_same_content(store, uninterrupted)
    runs = shard_runs(state)
    # The lost shard's task run was started again (on a live worker), the others once.
    assert sorted(times_running(run.id) for run in runs) == [1] * (SHARDS - 1) + [2]
    # One slot per worker, so the survivor never waited for the dead worker's; and the
    # rerun released the dead attempt's slot rather than leaving it to its lease.
    assert gpu_limit() == (2, 0)


def test_a_shard_past_its_timeout_on_threads_is_retried_and_a_wait_for_the_slot_is_not(
    armed_refresh: Refresh, uninterrupted: Store
) -> None:
    # Stuck in Python code (a loop that never ends), which the timeout can interrupt.
    state, store, took, marker = armed_refresh(
        f"~{HANG_SECONDS}", workers=2, shard_timeout_seconds=10
    )
    assert fired_in(marker) == os.getpid()
    assert took < HANG_SECONDS
    assert_same_content(store, uninterrupted)
    # One slot on this machine: the other thread waited for it while the shard hung,
    # longer than the timeout, and was not timed out for waiting.
    assert gpu_limit() == (1, 0)
    assert sorted(run.run_count for run in shard_runs(state)) == [1] * (SHARDS - 1) + [2]


def test_a_shard_stuck_in_a_call_on_dask_restarts_its_worker_and_runs_again(
    armed_refresh: Refresh, uninterrupted: Store
) -> None:
    # Stuck in one C call (a sleep), which no exception raised into the thread can end.
    state, store, took, marker = armed_refresh(
        str(HANG_SECONDS), runner="dask", workers=2, shard_timeout_seconds=10
    )
    assert took < HANG_SECONDS
    victim = fired_in(marker)
    assert victim != os.getpid() and dead(victim), "the stuck worker was not restarted"
    assert_same_content(store, uninterrupted)
    shard_runs(state)
    assert gpu_limit() == (2, 0)
