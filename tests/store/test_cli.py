"""The snapshots commands, end to end on a local store, in their --json form."""

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from marc_batch.cli.app import app
from marc_batch.config import StoreConfig
from marc_batch.store import Store, Transaction
from tests.publishing import committed

K = 4


def run(root: Path, *args: str) -> object:
    result = CliRunner().invoke(app, ["snapshots", *args, "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_snapshots_commands(tmp_path: Path) -> None:
    store = Store(StoreConfig(root=str(tmp_path)))
    txn = Transaction(store, model_version="m1", k=K)
    txn.write("item", ["a", "b", "c"], np.eye(3, K), ["1", "2", "3"])
    committed(txn)
    txn = Transaction(store, model_version="m1", k=K, mode="incremental")
    txn.write("item", ["b", "d"], np.ones((2, K)), ["2", "4"])
    txn.delete("item", ["c"])
    committed(txn)

    listed = run(tmp_path, "list")
    assert [(v["version"], v["rows"]["item"], v["channels"]) for v in listed] == [
        (1, 3, []),
        (2, 3, ["latest"]),
    ]
    assert run(tmp_path, "show", "latest")["parent_version"] == 1
    assert run(tmp_path, "diff", "1", "2")["item"] == {
        "added": ["d"],
        "removed": ["c"],
        "changed": ["b"],
    }
    assert run(tmp_path, "validate", "2") == {"ok": True, "problems": [], "version": 2}
    assert run(tmp_path, "promote", "1", "--channel", "prod") == {"channel": "prod", "version": 1}
    assert run(tmp_path, "promote", "2", "--channel", "prod", "--expect", "1")["version"] == 2
    assert run(tmp_path, "rollback", "--channel", "prod") == {"channel": "prod", "version": 1}
    assert run(tmp_path, "compact")["version"] == 3
    gc = run(tmp_path, "gc", "--keep", "1", "--grace-seconds", "0", "--dry-run")
    assert gc["kept_versions"] == [1, 3] and gc["expired_versions"] == [2] and gc["dry_run"]
    gc = run(tmp_path, "gc", "--keep", "1", "--grace-seconds", "0")
    assert store.versions() == [1, 3] and len(gc["deleted_files"]) == 2

    (tmp_path / store.manifest(3).files[0].path).write_bytes(b"not parquet")
    result = CliRunner().invoke(app, ["snapshots", "validate", "--root", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["problems"][0].endswith(
        "size or sha256 differs from the manifest"
    )
