"""The point-in-time export: intervals that tile time, and joins that agree with the reader."""

import itertools
import json
import re
import sys
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from marc_batch.cli.app import app, main
from marc_batch.config import StoreConfig
from marc_batch.errors import SnapshotNotFound, StoreError
from marc_batch.store import Manifest, Store, Transaction, open_snapshot
from marc_batch.store.compact import compact
from marc_batch.store.history import export_history
from tests.publishing import committed

K = 4
DOC = Path(__file__).parents[2] / "docs" / "feature-store.md"
(ASOF_RECIPE,) = re.findall(r"```python asof-join\n(.*?)```", DOC.read_text(), re.DOTALL)
ITEMS = ("a", "b", "c", "d", "e", "f")


def vectors(ids: list[str], model: str, revisions: list[int] | None = None) -> np.ndarray:
    """A distinct, reproducible vector per (id, model, text revision)."""
    revisions = revisions or [0] * len(ids)
    seeds = [zlib.crc32(f"{i}/{model}/{r}".encode()) for i, r in zip(ids, revisions, strict=True)]
    return np.stack([np.random.default_rng(s).normal(size=K) for s in seeds]).astype(np.float32)


def put(
    store: Store,
    mode: str,
    model: str,
    items: dict[str, int],
    deleted: tuple[str, ...] = (),
    channel: str = "latest",
) -> Manifest:
    """Commit ``items`` (id -> text revision, which its vector follows), delete ``deleted``.

    The manifest records ``channel`` as the one its run publishes to.
    """
    txn = Transaction(store, model_version=model, k=K, mode=mode)
    ids, revisions = list(items), list(items.values())
    if ids:
        texts = [f"{i}-text{r}" for i, r in items.items()]
        txn.write("item", ids, vectors(ids, model, revisions), texts)
    if mode == "overwrite":
        txn.write("user", ["u1", "u2"], vectors(["u1", "u2"], model), ["u1", "u2"])
    if deleted:
        txn.delete("item", list(deleted))
    return committed(txn, channel=channel)


def history_store(root: Path | str, config: StoreConfig | None = None) -> Store:
    """Six versions: a text change, a delete, later additions, a no-op rewrite, a new model."""
    store = Store(config or StoreConfig(root=str(root)))
    put(store, "overwrite", "m1", {"a": 0, "b": 0, "c": 0, "d": 0})  # v1
    put(store, "incremental", "m1", {"b": 1, "e": 0}, deleted=("c",))  # v2
    put(store, "incremental", "m1", {"a": 0, "f": 0}, channel="staging")  # v3: a unchanged
    compact(store, "latest")  # v4: same content, fresh files
    put(store, "overwrite", "m2", {i: 0 for i in ("a", "b", "c", "d", "e", "f")})  # v5
    put(store, "incremental", "m2", {}, deleted=("d",))  # v6
    return store


def read_export(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def commit_times(store: Store) -> dict[int, datetime]:
    return {v: store.manifest(v).created_at for v in store.versions()}


def live_version(times: dict[int, datetime], at: datetime) -> int | None:
    """The version a reader got at ``at``: the newest committed by then."""
    live = [v for v, t in times.items() if t <= at]
    return max(live) if live else None


def test_intervals_merge_unchanged_versions_and_close_on_delete(tmp_path: Path) -> None:
    store = history_store(tmp_path / "store")
    report = export_history(store, tmp_path / "history.parquet", ["item"])
    times = commit_times(store)
    assert report.versions == [1, 2, 3, 4, 5, 6]
    rows = read_export(tmp_path / "history.parquet")
    assert report.files == {str(tmp_path / "history.parquet"): len(rows)}
    at_version = {t: v for v, t in times.items()}
    spans: dict[str, list[tuple[int, int | None, str]]] = {}
    for row in rows:
        end = None if row["valid_to"] is None else at_version[row["valid_to"]]
        assert at_version[row["valid_from"]] == row["snapshot_version"]
        spans.setdefault(row["id"], []).append((row["snapshot_version"], end, row["model_version"]))
    assert spans == {
        "a": [(1, 5, "m1"), (5, None, "m2")],  # v3's unchanged rewrite and v4 merge in
        "b": [(1, 2, "m1"), (2, 5, "m1"), (5, None, "m2")],
        "c": [(1, 2, "m1"), (5, None, "m2")],  # deleted in v2, added again in v5
        "d": [(1, 5, "m1"), (5, 6, "m2")],
        "e": [(2, 5, "m1"), (5, None, "m2")],
        "f": [(3, 5, "m1"), (5, None, "m2")],
    }


def test_intervals_tile_time_exactly_where_the_reader_has_the_id(tmp_path: Path) -> None:
    store = history_store(tmp_path / "store")
    export_history(store, tmp_path / "out", ["item", "user"])
    rows = read_export(tmp_path / "out" / "item.parquet")
    users = read_export(tmp_path / "out" / "user.parquet")
    assert {r["entity"] for r in rows} == {"item"} and {r["entity"] for r in users} == {"user"}
    times = commit_times(store)
    for row in rows + users:
        assert row["valid_to"] is None or row["valid_from"] < row["valid_to"]
    # At every commit time and between them, an id is covered by exactly one interval
    # if the live version has it, by none otherwise.
    instants = sorted(times.values())
    probes = instants + [a + (b - a) / 2 for a, b in itertools.pairwise(instants)]
    for at in probes:
        snapshot = open_snapshot(store, live_version(times, at))
        for entity, history in (("item", rows), ("user", users)):
            live = set(snapshot.table(entity)["id"].to_pylist())
            for name in {r["id"] for r in history}:
                covering = [
                    r
                    for r in history
                    if r["id"] == name
                    and r["valid_from"] <= at
                    and (r["valid_to"] is None or at < r["valid_to"])
                ]
                assert len(covering) == (name in live), (entity, name, at)
    # Adjacent intervals of one id hold different vectors (or models): nothing repeated.
    by_id: dict[str, list[dict]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    for spans in by_id.values():
        for before, after in itertools.pairwise(spans):
            if before["valid_to"] == after["valid_from"]:
                assert (before["embedding"], before["model_version"]) != (
                    after["embedding"],
                    after["model_version"],
                )


def test_point_in_time_join_returns_what_the_reader_returned(
    tmp_path: Path, store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ASOF recipe of docs/feature-store.md, run on impressions between commits."""
    store = history_store(store_config.root, store_config)
    export_history(store, tmp_path / "features")
    times = commit_times(store)
    instants = sorted(times.values())
    moments = [instants[0] - timedelta(seconds=1), instants[-1] + timedelta(days=1)]
    moments += instants + [a + (b - a) / 3 for a, b in itertools.pairwise(instants)]
    shown = [(at, item) for at in moments for item in (*ITEMS, "unknown")]
    impressions = pa.table(
        {
            "impression": pa.array(range(len(shown)), pa.int64()),
            "ts": pa.array([at for at, _ in shown], pa.timestamp("us", "UTC")),
            "item_id": [item for _, item in shown],
        }
    )
    pq.write_table(impressions, tmp_path / "impressions.parquet")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(ASOF_RECIPE, namespace)
    joined = namespace["joined"]
    assert joined["impression"].to_pylist() == impressions["impression"].to_pylist()
    for (at, item), embedding in zip(shown, joined["item_embedding"].to_pylist(), strict=True):
        version = live_version(times, at)
        found, expected = (
            open_snapshot(store, version).lookup("item", [item])
            if version is not None
            else ([False], None)
        )
        if not found[0]:
            assert embedding is None, (item, version)
        else:
            assert embedding is not None and np.array_equal(
                np.array(embedding, np.float32), expected[0]
            ), (item, version)


def test_since_until_and_channel_bound_the_export(tmp_path: Path) -> None:
    store = history_store(tmp_path / "store")
    report = export_history(store, tmp_path / "mid.parquet", ["item"], since="2", until="4")
    assert report.versions == [2, 3, 4]
    times = commit_times(store)
    rows = read_export(tmp_path / "mid.parquet")
    assert {r["valid_from"] for r in rows} <= {times[2], times[3]}
    assert all(r["valid_to"] is None for r in rows)  # open as of --until
    assert sorted(r["id"] for r in rows) == ["a", "b", "d", "e", "f"]  # c was deleted by v2
    # Version 3 was committed for 'staging': its changes show from version 4 on.
    latest = export_history(store, tmp_path / "c.parquet", ["item"], channel="latest")
    assert latest.versions == [1, 2, 4, 5, 6]
    f_rows = [r for r in read_export(tmp_path / "c.parquet") if r["id"] == "f"]
    assert [r["snapshot_version"] for r in f_rows] == [4, 5]
    with pytest.raises(SnapshotNotFound, match="channel 'prod'"):
        export_history(store, tmp_path / "p.parquet", channel="prod")
    with pytest.raises(SnapshotNotFound, match="no version 9"):
        export_history(store, tmp_path / "x.parquet", since="9")
    with pytest.raises(StoreError, match="after --until"):
        export_history(store, tmp_path / "x.parquet", since="4", until="2")
    with pytest.raises(StoreError, match="exists; pass --overwrite"):
        export_history(store, tmp_path / "mid.parquet")
    export_history(store, tmp_path / "mid.parquet", ["item"], overwrite=True)
    assert len(read_export(tmp_path / "mid.parquet")) == 13
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet", "mid.parquet", "store"]


def test_cli_exports_and_reports_bad_input_on_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = history_store(tmp_path / "store")
    out = tmp_path / "features"
    args = ["snapshots", "export-history", "--root", str(tmp_path / "store"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--entity", "user", "--verify", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "files": {str(out / "user.parquet"): 4},  # two users, each under m1 then m2
        "versions": store.versions(),
    }
    damaged = tmp_path / "store" / store.manifest(1).files[0].path
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"x")
    for extra, message in (
        (["--overwrite", "--verify"], "size or sha256 differs from the manifest"),
        ([], "exists; pass --overwrite"),
        (["--overwrite", "--until", "12"], "no version 12"),
        (["--overwrite", "--memory-limit", "lots"], "memory limit 'lots'"),
    ):
        monkeypatch.setattr(sys, "argv", ["marc-batch", *args, *extra])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 1
        stderr = capsys.readouterr().err
        assert stderr.count("\n") == 1 and stderr.startswith("error: ")
        assert message in stderr
