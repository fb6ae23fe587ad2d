"""Corrupt files and hostile or wrong manifests are caught, each with a one-line error."""

import json
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from marc_batch.config import StoreConfig
from marc_batch.errors import CorruptFile, ManifestError
from marc_batch.index.io import index_from_bytes, write_index
from marc_batch.store import Store, Transaction, open_snapshot
from marc_batch.store.backends.local import LocalBackend
from marc_batch.store.paths import manifest_path
from marc_batch.store.validate import validate
from tests.publishing import committed

K = 4


def snapshot_with_index(store: Store) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, K)).astype(np.float32)
    txn = Transaction(store, model_version="m1", k=K)
    txn.write("item", [f"i{n}" for n in range(500)], vectors, ["h"] * 500)
    index = faiss.IndexFlatIP(K)
    index.add(vectors)
    file = txn.write_index(
        "item", lambda stream: write_index(index, stream), "Flat", "inner_product", 500
    )
    committed(txn, indexes=[file])


def overwrite(store: Store, path: str, data: bytes) -> None:
    """Change bytes behind the store's back, as a disk or a careless tool would."""
    backend = store.backend
    if isinstance(backend, LocalBackend):
        (backend.root / path).write_bytes(data)
    else:
        backend.fs.pipe_file(f"{backend.base}/{path}", data)


def flip_byte(store: Store, path: str) -> None:
    data = bytearray(store.backend.read_bytes(path))
    data[len(data) // 3] ^= 0x40
    overwrite(store, path, bytes(data))


def test_a_flipped_byte_in_a_data_file_is_caught(store: Store) -> None:
    snapshot_with_index(store)
    assert validate(store, store.head()) == []
    flip_byte(store, store.head().files[0].path)
    problems = validate(store, store.head())
    assert len(problems) == 1 and "sha256 differs" in problems[0]
    with pytest.raises(CorruptFile, match="sha256 differs"):
        open_snapshot(store, verify=True).table("item")
    with pytest.raises(CorruptFile):  # even unverified reads check every page's CRC
        open_snapshot(store).table("item")


def test_a_flipped_byte_in_an_index_file_is_caught(store: Store) -> None:
    snapshot_with_index(store)
    good = open_snapshot(store).index_bytes("item")
    assert index_from_bytes(good).ntotal == 500
    flip_byte(store, store.head().indexes[0].path)
    assert any("sha256 differs" in p for p in validate(store, store.head()))
    with pytest.raises(CorruptFile, match="sha256 differs"):
        open_snapshot(store, verify=True).index_bytes("item")


def test_a_missing_file_is_caught(store: Store) -> None:
    snapshot_with_index(store)
    store.backend.delete(store.head().files[0].path)
    assert "missing" in validate(store, store.head())[0]
    with pytest.raises(CorruptFile, match="missing"):
        open_snapshot(store).table("item")


def forged(store: Store, change: dict) -> None:
    """Publish version 2: version 1's manifest with some fields replaced."""
    manifest = json.loads(store.manifest(1).to_json())
    manifest.update(version=2, parent_version=1, parent_snapshot_id=manifest["snapshot_id"])
    manifest.update(change)
    store.backend.put_if_absent(manifest_path(2), json.dumps(manifest).encode())


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "absolute"),
        ("../outside.parquet", "leaves the store root"),
        ("data/../../outside.parquet", "leaves the store root"),
        ("C:/data/x.parquet", "absolute"),
        ("data\\x.parquet", "backslash"),
    ],
)
def test_manifests_naming_paths_outside_the_root_are_refused(
    store: Store, path: str, message: str
) -> None:
    snapshot_with_index(store)
    files = json.loads(store.manifest(1).to_json())["files"]
    files[0]["path"] = path
    forged(store, {"files": files})
    with pytest.raises(ManifestError, match=message):
        store.manifest(2)


def test_a_manifest_with_the_wrong_k_is_refused(store: Store) -> None:
    snapshot_with_index(store)
    forged(store, {"k": K * 2})
    with pytest.raises(CorruptFile, match="schema differs"):
        open_snapshot(store, 2).table("item")
    assert "schema differs" in validate(store, store.manifest(2))[0]


def test_manifest_errors_reach_the_cli_as_one_line(tmp_path: Path) -> None:
    store = Store(StoreConfig(root=str(tmp_path)))
    snapshot_with_index(store)
    files = json.loads(store.manifest(1).to_json())["files"]
    files[0]["path"] = "../../etc/passwd"
    forged(store, {"files": files})
    marc_batch = Path(sys.executable).with_name("marc-batch")
    for args, message in (
        (["show", "2"], "leaves the store root"),
        (["validate", "7"], "no version 7"),
    ):
        result = subprocess.run(
            [str(marc_batch), "snapshots", *args, "--root", str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
        assert message in result.stderr
