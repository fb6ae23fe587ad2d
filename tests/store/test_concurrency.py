"""Four processes committing twenty times each to one channel: nothing lost, history linear."""

import subprocess
import sys
from pathlib import Path

from marc_batch.store import open_snapshot
from marc_batch.store.channels import read_channel
from tests.store.publisher import publish, small_files_store

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
COMMITS = {"local": 20, "s3": 10}  # each commit on S3 is several round trips to the server


def test_concurrent_publishers_never_lose_a_commit(store_root: str, endpoint: str | None) -> None:
    store = small_files_store(store_root, endpoint)
    first = publish(store, "base", 1)
    commits = COMMITS["s3" if endpoint else "local"]
    extra = ["--commits", str(commits), *(["--endpoint", endpoint] if endpoint else [])]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store.publisher",
                store_root,
                "append",
                "--worker",
                str(w),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    committed = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        committed += [int(line) for line in out.split()]

    total = WORKERS * commits
    assert sorted(committed) == list(range(first + 1, first + total + 1))
    versions = store.versions()
    assert versions == list(range(first, first + total + 1))
    for version in versions[1:]:
        manifest = store.manifest(version)
        assert manifest.parent_version == version - 1
        added = [f for f in manifest.files if f.sequence == version]
        assert len(added) == 1 and added[0].rows == 1
    pointer, _ = read_channel(store.backend, "latest")
    assert pointer.version == versions[-1]

    ids, _ = open_snapshot(store, "latest").matrix("item")
    appended = {i for i in ids.tolist() if i.startswith("w")}
    assert appended == {f"w{w}-{i}" for w in range(WORKERS) for i in range(commits)}
    assert store.manifest(versions[-1]).rows["item"] == len(ids) == 1000 + total
