"""Which failed shard tasks are retried: a flaky store or a lost worker, never a user's error."""

import pytest
from prefect.states import Failed

from flows.outcome import worth_retrying
from marc_batch.errors import SourceError, StoreError, StoreUnavailable


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (StoreUnavailable("s3://b/x: SlowDown; the object store kept failing"), True),
        (ConnectionResetError("worker lost"), True),
        (SourceError("items.csv: no column 'title'"), False),
        (StoreError("s3://b: no space"), False),
    ],
)
def test_only_transient_failures_are_worth_retrying(error: Exception, retried: bool) -> None:
    assert worth_retrying(None, None, Failed(data=error)) is retried
