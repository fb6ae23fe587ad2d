"""Reading a configured table into Arrow without letting the reader judge the data.

Text is read as raw bytes so that invalid UTF-8 reaches the validator (and
the quarantine) instead of failing the whole file. CSV rows with the wrong
number of fields are not skipped silently: they come back as
:class:`MalformedRow` entries for the quarantine.
"""

import csv
import glob
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from marc_batch.config import TableSource
from marc_batch.errors import SourceError

BATCH_ROWS = 65_536  # rows per piece read from a Parquet file or a query
CSV_BLOCK_BYTES = 16 * 2**20  # bytes of a CSV file parsed per piece


@dataclass(frozen=True)
class MalformedRow:
    """A line the CSV parser could not split into the header's columns."""

    line: int | None
    text: str


@dataclass
class RawTable:
    """A source's rows as read, plus the lines that could not be parsed at all."""

    table: pa.Table
    malformed: list[MalformedRow]


def _paths(pattern: str) -> list[str]:
    paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    missing = [p for p in paths if not Path(p).is_file()]
    if not paths or missing:
        raise SourceError(f"no such file: {missing[0] if missing else pattern}")
    return paths


def read_csv_bytes(
    data: pa.Buffer | str, delimiter: str, quoting: bool = True, names: list[str] | None = None
) -> RawTable:
    """Parse CSV with every column as bytes; bad rows are returned, not dropped."""
    malformed: list[MalformedRow] = []
    keep = _keeper(malformed)

    if names is None:
        names = _header(data, delimiter, quoting)
        skip = 1
    else:
        skip = 0
    try:
        try:
            table = _read_csv(data, names, skip, delimiter, quoting, keep, None)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            # One row is longer than a parse block (1 MiB): read the file as one block,
            # so that the row reaches validation (and TEXT_TOO_LONG) instead of failing
            # the whole file.
            malformed.clear()
            size = data.size if isinstance(data, pa.Buffer) else Path(data).stat().st_size
            block = min(size + 1, 2**31 - 1)
            table = _read_csv(data, names, skip, delimiter, quoting, keep, block)
    except pa.ArrowInvalid as exc:
        raise SourceError(f"cannot parse CSV: {exc}") from None
    return RawTable(table, malformed)


def _keeper(malformed: list[MalformedRow]) -> Callable[[pv.InvalidRow], str]:
    """The parser's handler of a bad line: recorded in ``malformed``, then skipped."""

    def keep(row: pv.InvalidRow) -> str:
        malformed.append(MalformedRow(row.number, row.text))
        return "skip"

    return keep


def _read_csv(
    data: pa.Buffer | str,
    names: list[str],
    skip: int,
    delimiter: str,
    quoting: bool,
    keep,
    block_size: int | None,
) -> pa.Table:
    source = pa.BufferReader(data) if isinstance(data, pa.Buffer) else data
    return pv.read_csv(source, **_csv_options(names, skip, delimiter, quoting, keep, block_size))


def _csv_options(
    names: list[str], skip: int, delimiter: str, quoting: bool, keep, block_size: int | None
) -> dict:
    """Every column as bytes, nothing read as null, bad rows to ``keep``."""
    options = {"block_size": block_size} if block_size else {}
    return {
        "read_options": pv.ReadOptions(column_names=names, skip_rows=skip, **options),
        "parse_options": pv.ParseOptions(
            delimiter=delimiter,
            quote_char='"' if quoting else False,
            newlines_in_values=quoting,
            invalid_row_handler=keep,
        ),
        "convert_options": pv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.binary()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    }


def csv_pieces(path: str, delimiter: str, malformed: list[MalformedRow]) -> Iterator[pa.Table]:
    """A CSV file a block (``CSV_BLOCK_BYTES``) at a time; its bad lines go to ``malformed``.

    A row longer than a block cannot be parsed in pieces: the rest of the
    file is then read as one block (:func:`read_csv_bytes`), so that the row
    reaches validation (and TEXT_TOO_LONG) instead of failing the file.
    """
    names = _header(path, delimiter, True)
    start, done = len(malformed), 0
    options = _csv_options(names, 1, delimiter, True, _keeper(malformed), CSV_BLOCK_BYTES)
    try:
        reader = pv.open_csv(path, **options)
        for batch in reader:
            done += batch.num_rows
            yield pa.Table.from_batches([batch])
        if not done:  # a header and no rows: the columns still count
            yield reader.schema.empty_table()
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise SourceError(f"cannot parse CSV: {exc}") from None
        whole = read_csv_bytes(path, delimiter)
        malformed[start:] = whole.malformed
        yield whole.table.slice(done)


def _header(data: pa.Buffer | str, delimiter: str, quoting: bool) -> list[str]:
    if isinstance(data, pa.Buffer):
        first = data.to_pybytes().split(b"\n", 1)[0]
    else:
        with open(data, "rb") as fh:
            first = fh.readline()
    line = first.decode("utf-8-sig", "replace").rstrip("\r\n")
    quote = csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE
    names = next(csv.reader([line], delimiter=delimiter, quoting=quote), [])
    if not names or any(not name.strip() for name in names):
        raise SourceError(f"CSV header is missing or has an empty column name: {line[:200]!r}")
    if len(set(names)) != len(names):
        raise SourceError(f"CSV header repeats a column name: {line[:200]!r}")
    return names


@dataclass
class RawPieces:
    """A source's rows as read, a piece at a time, and the lines it could not parse.

    ``malformed`` is complete once every piece has been read.
    """

    pieces: Iterator[pa.Table]
    malformed: list[MalformedRow]

    def whole(self) -> RawTable:
        """Every piece in one table."""
        return RawTable(pa.concat_tables(list(self.pieces)), self.malformed)


def _query(query: str) -> Iterator[pa.Table]:
    """A DuckDB query's result, a batch at a time (DuckDB streams it; nothing holds it whole)."""
    try:
        with duckdb.connect() as con:
            batches = con.sql(query).fetch_record_batch(BATCH_ROWS)
            yielded = False
            for batch in batches:
                yielded = True
                yield pa.Table.from_batches([batch])
            if not yielded:
                yield batches.schema.empty_table()
    except duckdb.Error as exc:
        raise SourceError(f"duckdb query failed: {' '.join(str(exc).split())}") from None


def _parquet(path: str, shown: str) -> Iterator[pa.Table]:
    """One Parquet file, a batch at a time; an empty file still yields its (empty) table."""
    try:
        file = pq.ParquetFile(path)
        if not file.metadata.num_rows:
            yield file.schema_arrow.empty_table()
        for batch in file.iter_batches(BATCH_ROWS):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"cannot read parquet {shown}: {exc}") from None


def _files(source: TableSource, malformed: list[MalformedRow]) -> Iterator[pa.Table]:
    """The source's tables as read, a piece at a time: the query's result, each Parquet file
    a batch at a time, each CSV file a block at a time."""
    if source.format == "duckdb":
        yield from _query(source.query)
        return
    for path in _paths(source.path):
        if source.format == "parquet":
            yield from _parquet(path, source.path)
        else:
            yield from csv_pieces(path, source.delimiter, malformed)


def _renamed(tables: Iterator[pa.Table], source: TableSource) -> Iterator[pa.Table]:
    """Each table with the source's renames, refusing a file whose columns differ from the first."""
    first: pa.Schema | None = None
    for table in tables:
        if first is None:
            first = table.schema
            absent = sorted(set(source.rename) - set(table.column_names))
            if absent:
                raise SourceError(f"rename names column(s) the source lacks: {', '.join(absent)}")
        elif not table.schema.equals(first):
            if source.format == "csv":
                raise SourceError(f"CSV files under {source.path} have different headers")
            raise SourceError(
                f"cannot read parquet {source.path}: files differ in schema: {table.schema}"
            )
        yield table.rename_columns([source.rename.get(n, n) for n in table.column_names])


def read_pieces(source: TableSource) -> RawPieces:
    """Read one configured table file by file, applying its column renames."""
    malformed: list[MalformedRow] = []
    return RawPieces(_renamed(_files(source, malformed), source), malformed)


def read_source(source: TableSource) -> RawTable:
    """Read one configured table whole and apply its column renames."""
    return read_pieces(source).whole()
