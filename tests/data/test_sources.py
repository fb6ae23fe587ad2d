from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marc_batch.config import TableSource
from marc_batch.data import sources
from marc_batch.data.sources import read_source
from marc_batch.errors import SourceError


def test_csv_keeps_bytes_and_returns_malformed_rows(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(b'item,name\n1,"Heat, 1995"\n2,caf\xe9\n3,too,many\n4,ok\n')
    raw = read_source(
        TableSource(format="csv", path=str(path), rename={"item": "id", "name": "title"})
    )
    assert raw.table.column_names == ["id", "title"]
    assert raw.table["title"].to_pylist() == [b"Heat, 1995", b"caf\xe9", b"ok"]
    assert [row.text for row in raw.malformed] == ["3,too,many"]


def test_parquet_glob_and_duckdb_query(tmp_path: Path) -> None:
    for n in range(2):
        pq.write_table(
            pa.table({"id": [f"{n}"], "title": [f"t{n}"]}), tmp_path / f"part-{n}.parquet"
        )
    raw = read_source(TableSource(format="parquet", path=str(tmp_path / "part-*.parquet")))
    assert raw.table["id"].to_pylist() == ["0", "1"]
    query = f"SELECT id, upper(title) AS title FROM '{tmp_path}/part-*.parquet' ORDER BY id"
    assert read_source(TableSource(format="duckdb", query=query)).table["title"].to_pylist() == [
        "T0",
        "T1",
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (TableSource(format="csv", path="/nonexistent.csv"), "no such file"),
        (TableSource(format="parquet", path="/nonexistent/*.parquet"), "no such file"),
        (TableSource(format="duckdb", query="SELECT * FROM missing_table"), "duckdb query failed"),
    ],
)
def test_unreadable_sources_are_one_line_errors(source: TableSource, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        read_source(source)
    assert "\n" not in str(info.value)


def test_rename_of_an_absent_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("id,age\n1,30\n")
    with pytest.raises(SourceError, match="lacks: user"):
        read_source(TableSource(format="csv", path=str(path), rename={"user": "id"}))


def test_a_row_longer_than_a_parse_block_is_read_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    big = b"x" * (3 * 2**20)
    path.write_bytes(b"id,title\n1,short\n2," + big + b"\n3,too,many\n4,ok\n")
    raw = read_source(TableSource(format="csv", path=str(path)))
    assert raw.table["id"].to_pylist() == [b"1", b"2", b"4"]
    assert raw.table["title"][1].as_py() == big
    assert [row.text for row in raw.malformed] == ["3,too,many"]


def test_a_csv_file_is_read_block_by_block_as_it_reads_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces of a few rows each; a row longer than a block, after pieces were already read,
    sends the rest of the file through whole without repeating or losing a row."""
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 64)
    rows = [f"{n},title {n}" for n in range(40)]
    rows[3] = "3,too,many"
    rows[25] = "25," + "x" * 500
    rows[31] = "31,also,too,many"
    path = tmp_path / "items.csv"
    path.write_text("id,title\n" + "\n".join(rows) + "\n")
    malformed: list[sources.MalformedRow] = []
    pieces = list(sources.csv_pieces(str(path), ",", malformed))
    whole = sources.read_csv_bytes(str(path), ",")
    assert len(pieces) > 3
    assert pa.concat_tables(pieces).equals(whole.table)
    assert whole.table.num_rows == 38
    assert malformed == whole.malformed
    assert [row.text for row in malformed] == ["3,too,many", "31,also,too,many"]
