"""The compatibility section renders a manifest's own record: the goal on test kept lift, and
the figures a record leaves undefined (no lift to keep, unmapped not scored) as such."""

import pytest

from benchmarks.summary import versions
from marc_batch.evaluate.compatibility import Compatibility
from marc_batch.evaluate.protocol import MethodScore
from marc_batch.store.manifest import CompatibilityRecord


def score(valid: float, test: float) -> MethodScore:
    return MethodScore(test_auc=[test], test_logloss=[0.5], valid_auc=[valid])


def result(scores: dict[str, MethodScore]) -> dict:
    """What benchmarks/compatibility.py writes, around a record built as a refresh builds it."""
    checked = Compatibility(
        protocol="leak-free",
        seeds=[0],
        baseline=score(0.70, 0.70),
        scores=scores,
        min_kept_lift=0.95,
    )
    record = CompatibilityRecord(previous_version=1, previous_model="a", figures=checked.summary())
    return {
        "machine": "test machine",
        "previous_model": "a",
        "new_model": "b",
        "compatibility": record.model_dump(),
        "alignment": {"fitted_on": 1682, "residual": {"procrustes": 0.12, "ridge": 0.1}},
        "gate": "published" if checked.compatible else "refused: incompatible",
        "seconds": {"refresh_previous": 61.0, "refresh_new_with_check": 140.2},
    }


def test_kept_lift_on_test_is_the_goal_and_an_unscored_input_reads_as_such() -> None:
    data = result({"previous": score(0.80, 0.80), "mapped": score(0.796, 0.79)})
    part = versions.compatibility(data, "another seed")
    (row,) = part.rows
    assert row.ratio == pytest.approx(0.9)  # (0.79 - 0.70) / (0.80 - 0.70), on test
    assert row.met is False
    auc, gate = part.tables
    assert ["AUC, new vectors unmapped", "not scored", "not scored"] in auc.rows
    assert ["lift kept, mapped", "96.0%", "90.0%"] in auc.rows
    assert ["promotion to prod", "published"] in gate.rows


def test_with_no_lift_to_keep_the_mapped_auc_must_reach_the_previous_one() -> None:
    data = result(
        {"previous": score(0.69, 0.69), "mapped": score(0.70, 0.695), "unmapped": score(0.6, 0.6)}
    )
    (row,) = versions.compatibility(data, "another seed").rows
    assert row.goal is not None and row.goal.limit == 1.0
    assert row.met is True
    assert ["lift kept, unmapped", "—", "—"] in versions.compatibility(data, "another seed").tables[
        0
    ].rows
