"""A protected channel takes another model's snapshot only with a passing compatibility record."""

from pathlib import Path

import numpy as np
import pytest

from marc_batch.config import StoreConfig
from marc_batch.errors import IncompatibleModel
from marc_batch.pipeline.publish import publish, rollback
from marc_batch.store import Manifest, Store, Transaction
from marc_batch.store.manifest import CompatibilityRecord
from tests.conftest import run_cli

K = 4
PROTECTED = ["prod"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(StoreConfig(root=str(tmp_path / "store"), row_group_bytes=2**16))


def snapshot(store: Store, model: str, record: CompatibilityRecord | None = None) -> Manifest:
    """A snapshot of ``model``; across a model change the commit keeps ``record``."""
    txn = Transaction(store, model_version=model, k=K, run_id=f"run-{model}")
    txn.write("item", ["a", "b"], np.eye(2, K), ["ha", "hb"])
    return txn.commit(assess=lambda manifest, parent: record)


def measured(previous: Manifest, kept: float) -> CompatibilityRecord:
    figures = {"valid_kept_lift_mapped": kept, "min_kept_lift": 0.95, "compatible": kept >= 0.95}
    return CompatibilityRecord(
        previous_version=previous.version, previous_model=previous.model.version, figures=figures
    )


def test_prod_refuses_a_model_change_unless_measured_compatible(store: Store) -> None:
    first = snapshot(store, "m1")
    publish(store, first.version, "prod", protected=PROTECTED)  # a channel's first snapshot
    same_model = snapshot(store, "m1", measured(first, 1.0))
    assert same_model.compatibility is None  # recorded across a model change only
    assert publish(store, same_model.version, "prod", protected=PROTECTED) == same_model

    unmeasured = snapshot(store, "m2")
    with pytest.raises(IncompatibleModel, match="no compatibility was measured against model m1"):
        publish(store, unmeasured.version, "prod", protected=PROTECTED)
    snapshot(store, "m1")  # so that the next m2 snapshot is again a model change
    failing = snapshot(store, "m2", measured(same_model, 0.62))
    with pytest.raises(
        IncompatibleModel, match=r"keeps 62\.0% of its validation lift on the mapped vectors, below"
    ):
        publish(store, failing.version, "prod", protected=PROTECTED)
    # An unprotected channel, or an explicit override (no protected channels), moves.
    publish(store, failing.version, "latest", protected=PROTECTED)
    publish(store, failing.version, "canary", protected=[])
    assert store.resolve("prod") == same_model

    snapshot(store, "m1")
    passing = snapshot(store, "m2", measured(same_model, 0.97))
    assert publish(store, passing.version, "prod", protected=PROTECTED) == passing
    # A record measured against a model prod no longer serves does not count.
    stale = snapshot(store, "m3", measured(same_model, 0.99))
    with pytest.raises(IncompatibleModel, match="against model m2"):
        publish(store, stale.version, "prod", protected=PROTECTED)
    # Going back is not gated: prod served m1 before.
    assert rollback(store, "prod") == same_model


def test_the_cli_prints_the_refusal_on_one_line_and_honours_the_override(store: Store) -> None:
    publish(store, snapshot(store, "m1").version, "prod")
    candidate = snapshot(store, "m2")
    root = ["--root", store.config.root]
    refused = run_cli("snapshots", "promote", str(candidate.version), *root)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(
        f"error: version {candidate.version} (model m2) for channel 'prod': no compatibility"
    )
    assert "--allow-incompatible" in refused.stderr
    forced = run_cli("snapshots", "promote", str(candidate.version), "--allow-incompatible", *root)
    assert forced.stdout.strip() == f"prod -> version {candidate.version}"
