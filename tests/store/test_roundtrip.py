"""What ranking teams read is what the publisher wrote, on every backend and through every API."""

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marc_batch.config import StoreConfig
from marc_batch.errors import StoreError
from marc_batch.store import Store, Transaction, open_snapshot
from marc_batch.store.compact import compact
from marc_batch.store.diff import diff
from marc_batch.store.incremental import plan_change
from marc_batch.store.reader import live_pieces, merged_table
from tests.publishing import committed

K = 8


def rows(prefix: str, n: int, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    return ids, rng.standard_normal((n, K)).astype(np.float32), [f"h-{i}" for i in ids]


def full_snapshot(store: Store, n: int = 3000, dtype: str | None = None) -> dict:
    ids, vectors, hashes = rows("item", n, 1)
    txn = Transaction(store, model_version="m1", model_sha256="a" * 64, k=K, dtype=dtype)
    for start in range(0, n, 700):  # batches that do not line up with row groups
        stop = start + 700
        shard = (start // 700) % 3
        txn.write("item", ids[start:stop], vectors[start:stop], hashes[start:stop], shard=shard)
    txn.write("user", ["u1", "u2"], vectors[:2], ["x", "y"])
    committed(txn, "latest", "prod")
    return dict(zip(ids, vectors, strict=True))


def test_written_rows_read_back_through_every_api(store: Store) -> None:
    written = full_snapshot(store)
    snapshot = open_snapshot(store, "latest", verify=True)
    ids, matrix = snapshot.matrix("item")
    assert matrix.dtype == np.float32 and matrix.shape == (len(written), K)
    assert not matrix.flags.owndata  # a view of the Arrow buffer
    got = dict(zip(ids.tolist(), matrix, strict=True))
    assert got.keys() == written.keys()
    assert all(np.array_equal(got[i], written[i]) for i in written)

    found, looked_up = snapshot.lookup("item", ["item00007", "nope", "item00002"])
    assert found.tolist() == [True, False, True]
    assert np.array_equal(looked_up[0], written["item00007"]) and np.isnan(looked_up[1]).all()

    con = snapshot.duckdb()
    kind, count = con.execute("SELECT any_value(typeof(embedding)), count(*) FROM item").fetchone()
    assert (kind, count) == (f"FLOAT[{K}]", len(written))
    similarity = con.execute(
        "SELECT array_cosine_similarity(a.embedding, b.embedding) FROM item a, item b "
        "WHERE a.id = 'item00001' AND b.id = 'item00002'"
    ).fetchone()[0]
    a, b = written["item00001"], written["item00002"]
    assert similarity == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-5)
    assert snapshot.table("user").num_rows == 2
    assert store.head().rows == {"item": len(written), "user": 2}


def test_parquet_layout_follows_the_contract(tmp_path) -> None:
    store = Store(StoreConfig(root=str(tmp_path), row_group_bytes=2**16))
    full_snapshot(store)
    entry = store.head().data_files("item")[0]
    meta = pq.ParquetFile(tmp_path / entry.path).metadata
    assert meta.num_row_groups > 1  # rows are streamed in byte-sized groups
    column = meta.row_group(0).column(1)
    assert column.path_in_schema == "embedding.list.element"
    assert column.compression == "ZSTD"
    assert "BYTE_STREAM_SPLIT" in column.encodings
    assert not column.has_dictionary_page
    assert entry.path.startswith("data/entity=item/shard=")


def test_a_closed_partition_keeps_its_rows_and_takes_more_in_a_new_file(store: Store) -> None:
    ids, vectors, hashes = rows("item", 300, 2)
    txn = Transaction(store, model_version="m1", model_sha256="a" * 64, k=K)
    txn.write("item", ids[:200], vectors[:200], hashes[:200], shard=1)
    txn.close_partition("item", 1)
    assert txn.writers[("rows", "item", 1)].current is None  # nothing of it left open
    txn.close_partition("user", 0)  # never written: nothing to close
    txn.write("item", ids[200:], vectors[200:], hashes[200:], shard=1)
    committed(txn, "latest", "prod")
    manifest = store.head()
    assert len(manifest.data_files("item")) == 2 and manifest.rows["item"] == 300
    got_ids, matrix = open_snapshot(store, "latest", verify=True).matrix("item")
    got = dict(zip(got_ids.tolist(), matrix, strict=True))
    assert got.keys() == set(ids)
    assert all(np.array_equal(got[i], v) for i, v in zip(ids, vectors, strict=True))


def test_float16_snapshots_read_as_float16(store_config: StoreConfig) -> None:
    store = Store(store_config)
    written = full_snapshot(store, n=50, dtype="float16")
    ids, matrix = open_snapshot(store).matrix("item")
    assert matrix.dtype == np.float16
    assert np.allclose(matrix[0], written[ids[0]], atol=1e-2)
    view = open_snapshot(store).duckdb()
    (kind,) = view.execute("SELECT any_value(typeof(embedding)) FROM item").fetchone()
    assert kind == f"FLOAT[{K}]"


def test_incremental_snapshot_merges_to_the_newest_row_per_id(store: Store) -> None:
    written = full_snapshot(store)
    ids, _vectors, hashes = rows("item", 3000, 1)
    hashes[5] = "edited"
    catalogue = pa.table(
        {"id": [*ids[2:], "fresh"], "text": ["t"] * 2999, "text_hash": [*hashes[2:], "h"]}
    )
    plan = plan_change(store, store.head(), "item", catalogue, complete=True)
    assert plan.encode["id"].to_pylist() == ["fresh", "item00005"]
    assert (plan.added, plan.changed, plan.unchanged) == (1, 1, 2997)
    gone = plan.removed
    assert gone.to_pylist() == ["item00000", "item00001"]
    delta = plan_change(store, store.head(), "item", catalogue.slice(0, 10), complete=False)
    assert len(delta.removed) == 0 and delta.encode["id"].to_pylist() == ["item00005"]

    txn = Transaction(store, model_version="m1", model_sha256="a" * 64, k=K, mode="incremental")
    new_vectors = np.ones((2, K), np.float32)
    txn.write("item", ["item00005", "fresh"], new_vectors, ["edited", "h"], datetime.now(UTC))
    txn.delete("item", gone)
    manifest = committed(txn)
    assert manifest.parent_version == 1
    assert len([f for f in manifest.files if f.sequence == 2]) == 2  # cost of the change only
    assert manifest.rows["item"] == 3000 + 1 - 2

    latest = open_snapshot(store, "latest", verify=True)
    got_ids, matrix = latest.matrix("item")
    got = dict(zip(got_ids.tolist(), matrix, strict=True))
    assert len(got_ids) == len(set(got_ids.tolist())) == manifest.rows["item"]
    assert np.array_equal(got["item00005"], new_vectors[0]) and "item00000" not in got
    assert np.array_equal(got["item00009"], written["item00009"])

    assert open_snapshot(store, 1).table("item").num_rows == 3000  # time travel
    assert open_snapshot(store, "prod").version == 1  # prod was not moved
    changes = diff(store, store.manifest(1), manifest)["item"]
    assert changes == {
        "added": ["fresh"],
        "removed": ["item00000", "item00001"],
        "changed": ["item00005"],
    }

    compacted = compact(store)
    assert compacted.operation == "compaction" and compacted.rows == manifest.rows
    assert all(f.sequence == compacted.version for f in compacted.files)
    again = open_snapshot(store, compacted.version, verify=True).table("item")
    assert again.sort_by("id").equals(latest.table("item").sort_by("id"))


def test_bad_batches_are_refused_with_one_line(store: Store) -> None:
    txn = Transaction(store, model_version="m1", k=K)
    ids, vectors, hashes = rows("x", 3, 1)
    with pytest.raises(StoreError, match="shape"):
        txn.write("item", ids, vectors[:, :4], hashes)
    vectors[1, 2] = np.nan
    with pytest.raises(StoreError, match="NaN"):
        txn.write("item", ids, vectors, hashes)
    with pytest.raises(StoreError, match="null or empty"):
        txn.write("item", ["a", "", "c"], np.zeros((3, K)), hashes)
    with pytest.raises(StoreError, match="shard"):
        txn.write("item", ids, np.zeros((3, K)), hashes, shard=10_000)
    txn.write("item", ids, np.zeros((3, K)), hashes)
    txn.write("item", ids[:1], np.zeros((1, K)), hashes[:1])
    with pytest.raises(StoreError, match="twice"):
        committed(txn)
    assert store.versions() == []


def test_live_rows_read_one_file_at_a_time_are_the_merged_rows(store: Store) -> None:
    full_snapshot(store)
    for change, (ids, deleted) in enumerate(
        [
            (["item00005", "fresh"], ["item00000", "item00001"]),
            (["item00000", "item00005"], ["fresh"]),
        ]
    ):
        txn = Transaction(store, model_version="m1", model_sha256="a" * 64, k=K, mode="incremental")
        vectors = np.full((len(ids), K), change + 2.0, np.float32)
        txn.write("item", ids, vectors, [f"h{change}"] * len(ids), datetime.now(UTC))
        txn.delete("item", pa.array(deleted))
        committed(txn)
    head = store.head()
    pieces = list(live_pieces(store, head, "item", ("id", "embedding")))
    assert len(pieces) == len(head.data_files("item"))  # one data file per piece
    streamed = pa.concat_tables(pieces).sort_by("id")
    assert streamed.equals(merged_table(store, head, "item", ("id", "embedding")).sort_by("id"))
    assert streamed.num_rows == head.rows["item"] == 2999
    assert "fresh" not in streamed["id"].to_pylist()
