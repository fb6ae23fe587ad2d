"""Quarantine files land in the store itself, on a local disk and in an S3 bucket alike."""

import io
from pathlib import Path

import pyarrow.parquet as pq

from marc_batch.config import Config, StoreConfig
from marc_batch.data.ingest import ingest
from marc_batch.store import Store


def test_quarantine_is_written_through_the_store_backend(
    tmp_path: Path, store_config: StoreConfig
) -> None:
    (tmp_path / "items.csv").write_text("id,title\n1,Heat\n2,   \n3,Ronin\n")
    (tmp_path / "users.csv").write_text("id,age\nu1,30\n")
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,rating,timestamp\nu1,1,5,881250949\nu1,3,4,881250950\n"
    )
    sources = {
        name: {"format": "csv", "path": str(tmp_path / f"{name}.csv")}
        for name in ("items", "users", "interactions")
    }
    config = Config(
        sources={"dataset": None, "max_quarantine_fraction": 0.5, **sources},
        templates={"item": "{title}", "user": "{age} {history}"},
        store=store_config,
    )
    _, report = ingest(config)
    assert report.tables["items"].reasons == {"EMPTY_TEXT": 1}
    [location] = report.quarantine_files
    backend = Store(store_config).backend
    assert location.startswith(backend.uri)
    path = location.removeprefix(backend.uri + "/")
    table = pq.read_table(io.BytesIO(backend.read_bytes(path)))
    assert table["reason"].to_pylist() == ["EMPTY_TEXT"] and table["source_row"].to_pylist() == [1]
