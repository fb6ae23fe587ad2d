"""Shared fixtures: configs rooted in a temporary store and copies of the embedded data."""

import shutil
import subprocess
import sys
from pathlib import Path

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
