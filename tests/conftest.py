"""Shared fixtures: configs rooted in a temporary store, copies of the embedded data, and
an S3-compatible server on a loopback port."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from marc_batch.config import Config, load_config
from marc_batch.data.movielens import embedded_dir
from tests.tiny import build_registry


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Defaults with the store under tmp_path, so tests never write into the work tree."""
    monkeypatch.setenv("MARC_BATCH_STORE__ROOT", str(tmp_path / "store"))
    return load_config()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose current version is a tiny LoRA-adapted BERT (see tests/tiny.py)."""
    return build_registry(tmp_path_factory)


@pytest.fixture
def ml100k_copy(tmp_path: Path) -> Path:
    """A writable copy of the embedded MovieLens-100K atomic files."""
    target = tmp_path / "ml-100k"
    target.mkdir()
    for suffix in ("item", "user", "inter"):
        shutil.copy(embedded_dir() / f"ml-100k.{suffix}", target / f"ml-100k.{suffix}")
    return target


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "marc_batch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


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


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One ephemeral Prefect server for every test that runs flows: it takes seconds to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
