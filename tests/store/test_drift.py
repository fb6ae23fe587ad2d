"""Statistics recorded with each snapshot, alignment across a model change, no silent mixing."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import ortho_group
from typer.testing import CliRunner

from marc_batch.cli.app import app
from marc_batch.config import StoreConfig
from marc_batch.encode.shards import shard_of
from marc_batch.errors import CorruptFile, SpaceMismatch
from marc_batch.store import Store, Transaction, open_snapshot
from marc_batch.store.attachments import load_alignment, read_statistics
from marc_batch.store.compact import compact
from marc_batch.store.gc import collect_garbage
from marc_batch.store.spaces import Vectors, same_space, scores
from marc_batch.store.validate import validate

K, SHARDS = 8, 3


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(StoreConfig(root=str(tmp_path / "store"), shards=SHARDS, row_group_bytes=2**16))


def _vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, K))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _commit(store: Store, model: str, items: np.ndarray, users: np.ndarray, hashes: list[str]):
    """A full snapshot; every id in the shard a stable hash of it names, as a refresh writes it."""
    txn = Transaction(store, model_version=model, k=K)
    for entity, matrix, texts in (("item", items, hashes), ("user", users, None)):
        ids = np.array([f"{entity}{i:04d}" for i in range(len(matrix))])
        shards = shard_of(ids.tolist(), SHARDS)
        for shard in range(SHARDS):
            mine = shards == shard
            own = texts if texts is not None else [f"u-{i}" for i in ids]
            hashed = np.asarray(own)[mine]
            txn.write(entity, ids[mine], matrix[mine], hashed, shard=shard)
    return txn.commit(describe=True)


def _diff(store: Store, *args: str) -> str:
    result = CliRunner().invoke(app, ["snapshots", "diff", *args, "--root", store.config.root])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_same_model_refresh_keeps_every_unchanged_vector_exactly(store: Store) -> None:
    items, users = _vectors(600, 0), _vectors(40, 1)
    hashes = [f"h{i}" for i in range(600)]
    first = _commit(store, "m1", items, users, hashes)
    assert read_statistics(store, first)["parent"] is None
    moved = items.copy()
    moved[:30] = _vectors(30, 2)  # 30 texts changed, and so did their vectors
    second = _commit(
        store, "m1", moved, users, [f"new{i}" if i < 30 else h for i, h in enumerate(hashes)]
    )
    figures = read_statistics(store, second)
    assert second.alignment is None
    item = figures["entities"]["item"]
    assert item["rows"] == 600 and len(item["dim_mean"]) == K == len(item["dim_std"])
    assert item["norm"]["min"] == pytest.approx(1.0, abs=1e-5) == item["norm"]["max"]
    drift = figures["parent"]
    assert drift["same_model"] and drift["from_version"] == first.version
    assert drift["cosine"]["item"]["unchanged_text"] == 570
    assert drift["cosine"]["item"]["cosine_min"] == pytest.approx(1.0, abs=1e-6)
    assert drift["cosine"]["item"]["below_0_9999"] == 0
    assert drift["cosine"]["user"]["unchanged_text"] == 40
    neighbours = drift["neighbours"]
    assert neighbours["sampled"] == 200 and neighbours["k"] == 10
    assert 0 < neighbours["overlap_min"] <= neighbours["overlap_mean"] < 1  # 30 items moved
    assert [m["overlap"] for m in neighbours["moved_most"]] == sorted(
        m["overlap"] for m in neighbours["moved_most"]
    )

    shown = _diff(store, "1", "2", "--json")
    assert json.loads(shown)["statistics"] == {**figures, "recorded": True}
    assert json.loads(shown)["item"]["changed"] == [f"item{i:04d}" for i in range(30)]
    text = _diff(store, "1", "2")
    assert "statistics (recorded with version 2):" in text and "0 below 0.9999" in text
    assert "neighbour overlap@10 on 200 items" in text

    compacted = compact(store)
    again = read_statistics(store, compacted)["parent"]
    assert (
        again["cosine"]["item"]["below_0_9999"] == 0 and again["neighbours"]["overlap_min"] == 1.0
    )
    assert validate(store, compacted) == []
    computed = json.loads(_diff(store, "1", str(compacted.version), "--json"))["statistics"]
    assert (
        not computed["recorded"] and computed["parent"]["cosine"]["item"]["unchanged_text"] == 570
    )


def test_a_model_change_publishes_a_map_back_into_the_parent_space(store: Store) -> None:
    items, users = _vectors(500, 3), _vectors(50, 4)
    hashes = [f"h{i}" for i in range(500)]
    first = _commit(store, "m1", items, users, hashes)
    rotation = ortho_group.rvs(K, random_state=5)
    second = _commit(store, "m2", items @ rotation.T, users @ rotation.T, hashes)
    assert second.alignment is not None and second.alignment.to_version == first.version
    mapped = load_alignment(store, second)
    assert mapped.fitted_on == 550 and mapped.residual < 1e-5  # items and users, one map
    assert np.allclose(mapped.weights, rotation, atol=1e-5)
    figures = read_statistics(store, second)
    assert not figures["parent"]["same_model"] and figures["alignment"]["fitted_on"] == 550
    # A rotation keeps every neighbourhood: the new space is the old one, turned.
    assert figures["parent"]["neighbours"]["overlap_min"] == 1.0

    old, new = open_snapshot(store, first.version), open_snapshot(store, second.version)
    with pytest.raises(SpaceMismatch, match=r"^vectors of model versions 'm1' and 'm2' cannot"):
        same_space(old, new)
    with pytest.raises(SpaceMismatch):
        scores(new.table("user"), old.table("item"))
    aligned = open_snapshot(store, second.version, space="m1")
    assert same_space(old, aligned) == "m1"
    ids, back = aligned.matrix("item")
    old_ids, before = old.matrix("item")
    assert ids.tolist() == old_ids.tolist() and np.allclose(back, before, atol=1e-5)
    found, looked_up = new.lookup("user", ["user0003", "nobody"], space="m1")
    assert found.tolist() == [True, False] and np.allclose(looked_up[0], users[3], atol=1e-5)

    def order(table: pa.Table) -> list[int]:  # ids are "item0042", "user0007"
        return [int(i[4:]) for i in table["id"].to_pylist()]

    expected = users[order(aligned.table("user"))] @ items[order(old.table("item"))].T
    assert np.allclose(scores(aligned.table("user"), old.table("item")), expected, atol=1e-4)
    assert aligned.table("item").schema.metadata[b"marc_batch.space"] == b"m1"
    with pytest.raises(SpaceMismatch, match="index of version 2 is in the space of 'm2'"):
        aligned.index("item")

    con = old.duckdb(prefix="old_")
    with pytest.raises(SpaceMismatch, match="holds vectors of model 'm1'"):
        new.duckdb(con, prefix="new_")
    aligned.duckdb(con, prefix="new_")
    space, cosine = con.execute(
        "SELECT any_value(n.space), min(array_cosine_similarity(o.embedding, n.embedding)) "
        "FROM old_item o JOIN new_item n USING (id)"
    ).fetchone()
    assert space == "m1" and cosine > 0.9999

    query = Vectors(items[:1], "m2")
    with pytest.raises(SpaceMismatch):
        same_space(query, old)
    with pytest.raises(SpaceMismatch, match="no chain of alignment maps leads from version 1"):
        old.aligned("m2")
    table = pa.table({"embedding": [[0.0] * K], "model_version": ["m1"]})
    assert same_space(table, old) == "m1"


def test_a_tampered_alignment_map_is_refused_on_read_by_validate_and_kept_by_gc(
    store: Store,
) -> None:
    items, users = _vectors(100, 6), _vectors(10, 7)
    hashes = [f"h{i}" for i in range(100)]
    _commit(store, "m1", items, users, hashes)
    second = _commit(store, "m2", items[:, ::-1].copy(), users[:, ::-1].copy(), hashes)
    assert collect_garbage(store, grace_seconds=0).deleted_files == []
    weights = Path(store.config.root) / second.alignment.weights.path
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(
        CorruptFile, match=r"^meta/alignment-\w+\.safetensors: size or sha256"
    ) as refused:
        open_snapshot(store, second.version, space="m1").matrix("item")
    assert "\n" not in str(refused.value)
    assert any("alignment" in problem for problem in validate(store, second))
    stats = json.loads((Path(store.config.root) / second.statistics.path).read_text())
    assert stats["alignment"]["to_model_version"] == "m1"
