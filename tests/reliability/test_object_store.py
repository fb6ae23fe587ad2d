"""Object-store errors (500s, 503 SlowDown, timeouts, dropped connections, lost responses)
injected by a proxy in front of the S3 server: retried with back-off, or a clean failure."""

from pathlib import Path

import numpy as np
import pytest

from marc_batch.config import Config, StoreConfig
from marc_batch.errors import StoreUnavailable
from marc_batch.pipeline.backfill import backfill
from marc_batch.pipeline.publish import publish
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, Transaction
from marc_batch.store.channels import read_channel
from tests.pipeline.test_backfill import edit_items
from tests.publishing import committed
from tests.reliability.faulty_proxy import Fault, FaultyProxy
from tests.reliability.helpers import check_snapshot, published, rows_lost, same_content
from tests.tiny import config_for


def on_s3(config: Config, bucket: str, endpoint: str, **s3: object) -> Config:
    store = config.store.model_copy(
        update={
            "root": f"s3://{bucket}/snapshots",
            "s3": config.store.s3.model_copy(update={"endpoint_url": endpoint, **s3}),
        }
    )
    return config.model_copy(update={"store": store})


TRANSIENT = [
    ("500 InternalError", Fault("status", times=2, method="PUT", status=500, code="InternalError")),
    ("503 SlowDown", Fault("status", times=1, method="GET", status=503, code="SlowDown")),
    ("503 ServiceUnavailable", Fault("status", times=1, status=503, code="ServiceUnavailable")),
    ("timeout", Fault("delay", times=1, method="GET", path="_checkpoints", seconds=2.5)),
    ("dropped connection", Fault("drop", times=1, method="PUT", path="/data/")),
    ("lost response: manifest", Fault("lost_response", method="PUT", path="_manifests/")),
    ("lost response: channel", Fault("lost_response", method="PUT", path="_channels/")),
]


def test_refresh_and_backfill_ride_out_transient_errors_and_match_a_clean_run(
    tmp_path: Path, registry: Path, bucket: str, faulty_s3: FaultyProxy, ledger
) -> None:
    local = config_for(tmp_path, registry)
    config = on_s3(local, bucket, faulty_s3.endpoint, read_timeout=1.0, retries=5)
    store = Store(config.store)
    reference = config_for(tmp_path / "reference", registry)

    for run in ("refresh", "backfill"):
        faulty_s3.clear()
        faulty_s3.inject(*(fault for _, fault in TRANSIENT))
        if run == "refresh":
            report = refresh(config)
            refresh(reference)
        else:
            edit_items(tmp_path / "catalogue" / "items.csv")
            edit_items(tmp_path / "reference" / "catalogue" / "items.csv")
            report = backfill(config)
            backfill(reference)
        missed = [name for name, fault in TRANSIENT if fault.applied < fault.times]
        assert missed == [], f"faults never reached during the {run}: {missed}"
        manifest = store.manifest(report.version)
        assert store.versions()[-1] == report.version  # one commit, not two
        assert read_channel(store.backend, "latest")[0].version == report.version
        check_snapshot(store, manifest)
        assert same_content(store, Store(reference.store))
        assert rows_lost(store, Store(reference.store)) == 0
        for name, fault in TRANSIENT:
            ledger(
                "fault",
                flow=run,
                point=f"object store: {name} x{fault.times}",
                backend="s3",
                outcome="retried, published",
                rerun="not needed",
                rows_lost=0,
            )


def test_a_lost_response_to_a_channel_move_is_not_a_conflict(
    bucket: str, faulty_s3: FaultyProxy, ledger
) -> None:
    store = Store(
        StoreConfig(root=f"s3://{bucket}/snapshots", s3={"endpoint_url": faulty_s3.endpoint})
    )
    txn = Transaction(store, model_version="m1", k=4)
    txn.write("item", ["a", "b"], np.eye(2, 4, dtype=np.float32), ["h1", "h2"])
    version = committed(txn).version
    faulty_s3.inject(Fault("lost_response", method="PUT", path="_channels/prod"))
    assert publish(store, version, "prod").version == version
    assert faulty_s3.injected == 1
    assert read_channel(store.backend, "prod")[0].version == version
    ledger(
        "fault",
        flow="publish",
        point="object store: lost response to the channel move",
        backend="s3",
        outcome="retried, published",
        rerun="not needed",
        rows_lost=0,
    )


def test_an_outage_past_the_retry_budget_fails_cleanly_and_a_rerun_succeeds(
    tmp_path: Path, registry: Path, bucket: str, faulty_s3: FaultyProxy, ledger
) -> None:
    config = on_s3(config_for(tmp_path, registry), bucket, faulty_s3.endpoint, retries=2)
    store = Store(config.store)
    faulty_s3.inject(
        Fault("status", times=1000, method="PUT", path="_manifests/", status=503, code="SlowDown")
    )
    # After its retries the run fails with one line (the flows retry such shard tasks).
    with pytest.raises(StoreUnavailable, match="reduce your request rate") as failure:
        refresh(config)
    assert "\n" not in str(failure.value) and "_manifests/" in str(failure.value)
    assert published(store) == ([], {})
    faulty_s3.clear()
    report = refresh(config)  # the shards checkpointed by the failed run are reused
    assert report.version == 1
    check_snapshot(store, store.manifest(1))
    assert read_channel(store.backend, "latest")[0].version == 1
    ledger(
        "fault",
        flow="refresh",
        point="object store: 503 SlowDown on every manifest write (outage)",
        backend="s3",
        outcome=f"failed ({type(failure.value).__name__}), nothing published",
        rerun="ok",
        rows_lost=0,
    )
