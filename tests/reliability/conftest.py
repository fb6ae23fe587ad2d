"""Fixtures of the reliability tests: the ledger, stores on disk and on S3, a faulty proxy.

The catalogue and the encoder are the tiny ones of ``tests/tiny.py``; the
``registry`` fixture (``tests/conftest.py``) builds the encoder once per
session.
"""

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store
from tests.pipeline.test_backfill import edit_items
from tests.reliability.faulty_proxy import FaultyProxy
from tests.reliability.ledger import record
from tests.tiny import config_for

Ledger = Callable[..., None]


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    """``ledger(kind, **figures)`` notes a fact for the reliability report."""

    def note(kind: str, **fields: object) -> None:
        record(request.node.nodeid, kind, **fields)

    return note


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A fresh bucket on the session's S3-compatible server."""
    name = f"reliability-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def faulty_s3(s3_endpoint: str) -> Iterator[FaultyProxy]:
    """A proxy in front of the S3 server that fails the requests a test asks it to."""
    proxy = FaultyProxy(s3_endpoint)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, registry: Path) -> dict[str, Store]:
    """What uninterrupted runs publish: the tiny catalogue, and the same after ``edit_items``."""
    initial = config_for(tmp_path_factory.mktemp("initial"), registry)
    refresh(initial)
    directory = tmp_path_factory.mktemp("edited")
    edited = config_for(directory, registry)
    edit_items(directory / "catalogue" / "items.csv")
    refresh(edited)
    return {"initial": Store(initial.store), "edited": Store(edited.store)}
