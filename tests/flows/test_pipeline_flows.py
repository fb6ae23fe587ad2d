"""The flows end to end on a tiny model: refresh, backfill, publish, rollback, user errors."""

import asyncio
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import yaml
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from flows.backfill import backfill_flow
from flows.nightly_refresh import nightly_refresh
from flows.publish import publish_flow, rollback_flow
from marc_batch.config import Config
from marc_batch.parameters import (
    BackfillParameters,
    PublishParameters,
    RefreshParameters,
    RollbackParameters,
)
from marc_batch.store import Store, open_snapshot
from marc_batch.store.channels import read_channel
from tests.pipeline.test_backfill import edit_items
from tests.tiny import ITEMS, USERS, config_for


def config_file(tmp_path: Path, config: Config, **flows: object) -> Path:
    data = config.model_dump(mode="json")
    data["flows"].update(flows)
    path = tmp_path / "marc-batch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def artifact(key: str) -> str:
    async def read() -> str:
        async with get_client() as client:
            found = await client.read_latest_artifacts()
            return next(a.data for a in found if a.key == key)

    return asyncio.run(read())


def content(store: Store, entity: str) -> pa.Table:
    """A snapshot's rows without their timestamps, in id order."""
    table = open_snapshot(store, "latest").table(entity).drop_columns(["updated_at"])
    return table.sort_by("id")


def assert_same_content(ours: Store, theirs: Store) -> None:
    """Same ids and text hashes per entity, embeddings equal within float error."""
    for entity in ("item", "user"):
        a, b = content(ours, entity), content(theirs, entity)
        assert a["id"].equals(b["id"]) and a["text_hash"].equals(b["text_hash"])
        np.testing.assert_allclose(
            np.stack(a["embedding"].to_numpy(zero_copy_only=False)),
            np.stack(b["embedding"].to_numpy(zero_copy_only=False)),
            atol=1e-5,
        )


def test_refresh_backfill_publish_and_rollback_as_flows(tmp_path: Path, registry: Path) -> None:
    config = config_for(tmp_path, registry)
    path = config_file(tmp_path, config)
    refreshed = nightly_refresh(RefreshParameters(config=path))
    assert refreshed.rows == {"item": ITEMS, "user": USERS}
    assert f"version {refreshed.version}" in artifact("nightly-refresh")

    edit_items(tmp_path / "catalogue" / "items.csv")
    state = backfill_flow(BackfillParameters(config=path), return_state=True)
    assert state.is_completed()
    report = state.result()
    assert report.committed and report.changes["item"].added == 1
    summary = artifact("backfill")
    assert "+1 ~1 -1" in summary and "Statistics:" in summary
    # The rows a backfill keeps from its parent are its parent's, to the last bit.
    assert "item: cosine of 58 unchanged texts min 1.000000, mean 1.000000, 0 below" in summary

    store = Store(config.store)
    assert publish_flow(PublishParameters(config=path, snapshot="1", channel="prod")) == 1
    assert publish_flow(PublishParameters(config=path, snapshot="latest", channel="prod")) == 2
    assert rollback_flow(RollbackParameters(config=path, channel="prod")) == 1
    assert read_channel(store.backend, "prod")[0].version == 1


def test_a_user_error_fails_the_run_with_one_line(tmp_path: Path, registry: Path) -> None:
    path = config_file(tmp_path, config_for(tmp_path, registry))
    state = backfill_flow(BackfillParameters(config=path), return_state=True)
    assert state.is_failed()
    assert state.message == (
        "nothing to backfill: the store has no snapshot yet; run a refresh first"
    )


def test_refresh_on_a_two_worker_dask_cluster_matches_the_single_process_run(
    tmp_path: Path, registry: Path
) -> None:
    single = config_for(tmp_path / "single", registry)
    nightly_refresh(RefreshParameters(config=config_file(tmp_path / "single", single)))
    spread = config_for(tmp_path / "dask", registry)
    path = config_file(tmp_path / "dask", spread, runner="dask", workers=2)
    nightly_refresh(RefreshParameters(config=path))
    assert_same_content(Store(spread.store), Store(single.store))
    # Each shard's vectors were indexed by a task on the cluster; merged, they label the same ids.
    labels = [
        faiss.vector_to_array(faiss.downcast_index(open_snapshot(store).index("item")).id_map)
        for store in (Store(spread.store), Store(single.store))
    ]
    assert labels[0].tolist() == labels[1].tolist() and len(labels[0]) == ITEMS


def test_encoding_holds_the_gpu_limit_and_creates_it_when_missing(
    tmp_path: Path, registry: Path
) -> None:
    async def limit() -> int | None:
        async with get_client() as client:
            try:
                found = await client.read_global_concurrency_limit_by_name("gpu")
            except ObjectNotFound:
                return None
            return found.limit

    async def drop() -> None:
        async with get_client() as client:
            await client.delete_global_concurrency_limit_by_name("gpu")

    if asyncio.run(limit()) is not None:
        asyncio.run(drop())
    path = config_file(tmp_path, config_for(tmp_path, registry))
    nightly_refresh(RefreshParameters(config=path))
    assert asyncio.run(limit()) == 1  # one slot: this machine has no GPU
