"""Fixtures: a store on the local filesystem and one on a real S3-compatible server.

The S3 server is ``moto_server`` started on a free loopback port for the test
session; nothing leaves 127.0.0.1. Each test gets its own bucket.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from marc_batch.config import S3Config, StoreConfig
from marc_batch.store import Store

BIN = Path(sys.executable).parent
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            boto3.client("s3", endpoint_url=endpoint).list_buckets()
            break
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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
