"""Reading a configured table into Arrow without letting the reader judge the data.

Text is read as raw bytes so that invalid UTF-8 reaches the validator (and
the quarantine) instead of failing the whole file. CSV rows with the wrong
number of fields are not skipped silently: they come back as
:class:`MalformedRow` entries for the quarantine.
"""

import csv
import glob
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from marc_batch.config import TableSource
from marc_batch.errors import SourceError


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

    def keep(row: pv.InvalidRow) -> str:
        malformed.append(MalformedRow(row.number, row.text))
        return "skip"

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
    options = {"block_size": block_size} if block_size else {}
    return pv.read_csv(
        source,
        read_options=pv.ReadOptions(column_names=names, skip_rows=skip, **options),
        parse_options=pv.ParseOptions(
            delimiter=delimiter,
            quote_char='"' if quoting else False,
            newlines_in_values=quoting,
            invalid_row_handler=keep,
        ),
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.binary()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    )


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


def read_source(source: TableSource) -> RawTable:
    """Read one configured table and apply its column renames."""
    if source.format == "duckdb":
        try:
            table = duckdb.connect().sql(source.query).to_arrow_table()
        except duckdb.Error as exc:
            raise SourceError(f"duckdb query failed: {' '.join(str(exc).split())}") from None
        raw = RawTable(table, [])
    elif source.format == "parquet":
        try:
            raw = RawTable(pa.concat_tables(pq.read_table(p) for p in _paths(source.path)), [])
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"cannot read parquet {source.path}: {exc}") from None
    else:
        parts = [read_csv_bytes(p, source.delimiter) for p in _paths(source.path)]
        try:
            table = pa.concat_tables([part.table for part in parts])
        except pa.ArrowInvalid:
            raise SourceError(f"CSV files under {source.path} have different headers") from None
        raw = RawTable(table, [row for part in parts for row in part.malformed])
    if source.rename:
        absent = sorted(set(source.rename) - set(raw.table.column_names))
        if absent:
            raise SourceError(f"rename names column(s) the source lacks: {', '.join(absent)}")
        raw.table = raw.table.rename_columns(
            [source.rename.get(name, name) for name in raw.table.column_names]
        )
    return raw
