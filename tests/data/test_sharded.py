"""Ingestion by shard gives what whole-catalogue ingestion gives, shard for shard."""

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from marc_batch.config import Config, load_config
from marc_batch.data.ingest import ingest
from marc_batch.data.sharded import ingest_by_shard
from marc_batch.encode.shards import shard_of
from marc_batch.errors import ErrorBudgetExceeded
from tests.test_ingest_cli import corrupt
from tests.tiny import write_catalogue

SHARDS = 4


def quarantined(path: str) -> list[dict]:
    rows = pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda row: (row["source_row"] is None, row["source_row"] or 0))


def assert_same(config: Config, cut: bool = False) -> None:
    """The same texts shard for shard (in the same order unless shards are ``cut`` into parts)."""
    catalogue, whole = ingest(config, run_id="whole")
    with ingest_by_shard(config, SHARDS, run_id="sharded") as sharded:
        for entity, texts in catalogue.texts().items():
            assignment = pa.array(shard_of(texts["id"], SHARDS))
            for shard in range(SHARDS):
                expected = texts.filter(pc.equal(assignment, shard))
                mine = pa.concat_tables(sharded.parts(entity, shard))
                if cut:
                    mine, expected = mine.sort_by("id"), expected.sort_by("id")
                    parts = sharded.directory / "texts" / entity / str(shard)
                    assert entity == "item" or len(list(parts.iterdir())) > 1
                assert mine.equals(expected), (entity, shard)
        report = sharded.report
    different = {"run_id", "quarantine_files", "texts"}
    assert report.model_dump(exclude=different) == whole.model_dump(exclude=different)
    for name in ("items", "users"):
        mine, theirs = report.texts[name], whole.texts[name]
        assert mine.model_dump(exclude={"example"}) == theirs.model_dump(exclude={"example"})
    # The same rows refused for the same reasons, each named by its row in the source.
    assert [Path(p).name for p in report.quarantine_files] == [
        Path(p).name for p in whole.quarantine_files
    ]
    for mine, theirs in zip(report.quarantine_files, whole.quarantine_files, strict=True):
        assert quarantined(mine) == quarantined(theirs)


def configured(monkeypatch: pytest.MonkeyPatch, store: Path, **settings: str) -> Config:
    monkeypatch.setenv("MARC_BATCH_STORE__ROOT", str(store))
    for name, value in settings.items():
        monkeypatch.setenv(f"MARC_BATCH_SOURCES__{name.upper()}", value)
    return load_config()


@pytest.mark.parametrize("kind", ["per-user-temporal", "global-temporal"])
def test_a_clean_dataset_ingests_the_same_by_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    assert_same(configured(monkeypatch, tmp_path / "store", split__kind=kind))


def test_bad_rows_are_refused_the_same_by_shard(
    tmp_path: Path, ml100k_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrupt(ml100k_copy)
    assert_same(configured(monkeypatch, tmp_path / "store", dataset=str(ml100k_copy)))


def test_shards_cut_into_parts_ingest_the_same_rows_and_refuse_the_same_ones(
    tmp_path: Path, ml100k_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user, their interactions and an id's duplicates share a part, so nothing changes."""
    corrupt(ml100k_copy)
    settings = {"dataset": str(ml100k_copy), "part_rows": "4000", "split__kind": "global-temporal"}
    config = configured(monkeypatch, tmp_path / "store", **settings)
    assert_same(config, cut=True)


def test_the_error_budget_applies_per_table_after_every_shard_is_counted(
    tmp_path: Path, ml100k_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrupt(ml100k_copy)
    budget = {"dataset": str(ml100k_copy), "max_quarantine_fraction": "0.002"}
    config = configured(monkeypatch, tmp_path / "store", **budget)
    over = pytest.raises(ErrorBudgetExceeded, match=r"^items: 5 of 1684 rows quarantined")
    with over, ingest_by_shard(config, SHARDS, run_id="over"):
        pass
    written = sorted(p.name for p in (tmp_path / "store" / "quarantine" / "over").iterdir())
    assert written == ["interactions.parquet", "items.parquet", "users.parquet"]


def test_a_source_of_several_files_is_read_file_by_file_with_its_rows_numbered_across_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "catalogue"
    write_catalogue(data)
    header, *rows = (data / "items.csv").read_text().splitlines()
    (data / "items.csv").unlink()
    (data / "items-1.csv").write_text("\n".join([header, *rows[:30]]) + "\n")
    # The second file repeats an id of the first, and has a line with too many fields.
    late = [*rows[30:], "3,a later copy of three,1999,drama", "61,too,many,fields,here"]
    (data / "items-2.csv").write_text("\n".join([header, *late]) + "\n")
    for name in ("items", "users", "interactions"):
        pattern = "items-*.csv" if name == "items" else f"{name}.csv"
        monkeypatch.setenv(f"MARC_BATCH_SOURCES__{name.upper()}__FORMAT", "csv")
        monkeypatch.setenv(f"MARC_BATCH_SOURCES__{name.upper()}__PATH", str(data / pattern))
    config = configured(monkeypatch, tmp_path / "store")
    assert_same(config)
    with ingest_by_shard(config, SHARDS, run_id="files") as sharded:
        assert sharded.report.tables["items"].reasons == {"DUPLICATE_ID": 1, "MALFORMED_ROW": 1}
