"""Fixtures: a store on the local filesystem and one on a real S3-compatible server.

The S3 server is ``moto_server`` (``s3_endpoint`` in ``tests/conftest.py``),
started on a free loopback port for the test session; nothing leaves
127.0.0.1. Each test gets its own bucket.
"""

import uuid
from pathlib import Path

import boto3
import pytest

from marc_batch.config import S3Config, StoreConfig
from marc_batch.store import Store


@pytest.fixture(params=["local", "s3"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_root(backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty store root of the parametrised kind."""
    if backend_kind == "local":
        return str(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"store-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/snapshots"


@pytest.fixture
def endpoint(backend_kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("s3_endpoint") if backend_kind == "s3" else None


@pytest.fixture
def store_config(store_root: str, endpoint: str | None) -> StoreConfig:
    return StoreConfig(root=store_root, row_group_bytes=2**16, s3=S3Config(endpoint_url=endpoint))


@pytest.fixture
def store(store_config: StoreConfig) -> Store:
    return Store(store_config)
