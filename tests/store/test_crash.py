"""A publisher SIGKILLed at every step of a commit leaves the published state intact."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from marc_batch.store import Store, open_snapshot
from marc_batch.store.failpoints import COMMIT_STEPS, ENV
from marc_batch.store.gc import collect_garbage
from marc_batch.store.paths import CHANNELS, DATA, DELETES, INDEXES, MANIFESTS, STAGING_MARK
from tests.store.publisher import ROWS, batch, publish, small_files_store

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = {
    "manifest.staged",
    "channel.staged",
}  # S3 publishes small files in one request: nothing is staged


def run_publisher(
    root: str, endpoint: str | None, failpoint: str | None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if failpoint:
        env[ENV] = failpoint
    command = [sys.executable, "-m", "tests.store.publisher", root, "replace"]
    if endpoint:
        command += ["--endpoint", endpoint]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def content(store: Store, ref: str | int) -> dict[str, np.ndarray]:
    ids, matrix = open_snapshot(store, ref, verify=True).matrix("item")
    return dict(zip(ids.tolist(), matrix, strict=True))


def expected(prefix: str, seed: int) -> dict[str, np.ndarray]:
    ids, vectors, _ = batch(prefix, ROWS, seed)
    return dict(zip(ids, vectors, strict=True))


def same(seen: dict[str, np.ndarray], wanted: dict[str, np.ndarray]) -> bool:
    return seen.keys() == wanted.keys() and all(np.array_equal(seen[i], wanted[i]) for i in wanted)


def files_outside_manifests(store: Store) -> list[str]:
    referenced = {p for v in store.versions() for p in store.manifest(v).all_paths()}
    stray = []
    for prefix in (DATA, DELETES, INDEXES, MANIFESTS, CHANNELS):
        for info in store.backend.list(prefix):
            listed = prefix in (MANIFESTS, CHANNELS) or info.path in referenced
            if STAGING_MARK in info.path or not listed:
                stray.append(info.path)
    return stray


CASES = [("local", step) for step in COMMIT_STEPS] + [
    ("s3", step) for step in COMMIT_STEPS if step not in LOCAL_ONLY
]


@pytest.mark.parametrize(("backend_kind", "step"), CASES, indirect=["backend_kind"])
def test_a_kill_at_any_step_leaves_old_or_new_and_a_rerun_completes(
    step: str, backend_kind: str, store_root: str, endpoint: str | None
) -> None:
    store = small_files_store(store_root, endpoint)
    publish(store, "old", 1)
    old, new = expected("old", 1), expected("new", 2)

    crashed = run_publisher(store_root, endpoint, step)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    reader = small_files_store(store_root, endpoint)
    for ref in ("latest", reader.versions()[-1]):
        seen = content(reader, ref)
        assert same(seen, old) or same(seen, new), f"{ref} shows a mixed snapshot after {step}"
    assert same(content(reader, 1), old)

    rerun = run_publisher(store_root, endpoint, None)
    assert rerun.returncode == 0, rerun.stderr
    assert same(content(reader, "latest"), new)

    report = collect_garbage(reader, keep=1, grace_seconds=0)
    assert files_outside_manifests(reader) == []
    assert reader.versions() == [int(rerun.stdout)]
    # Every crash leaves files for gc, except a half-done upload, which S3 never shows.
    if (backend_kind, step) != ("s3", "data.partial"):
        assert report.deleted_files, f"a crash at {step} should have left files for gc"
    assert same(content(reader, "latest"), new)
