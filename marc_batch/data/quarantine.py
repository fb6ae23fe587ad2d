"""Quarantine files: every refused row with its reason, one Parquet file per table and run."""

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from marc_batch.data.records import Reason
from marc_batch.data.sources import MalformedRow
from marc_batch.data.validate import QUARANTINE_SCHEMA


def malformed_entries(entity: str, rows: list[MalformedRow]) -> pa.Table:
    """Quarantine rows for lines the parser could not split; the line text is kept."""
    return pa.table(
        {
            "entity": [entity] * len(rows),
            "source_row": [row.line for row in rows],
            "reason": [Reason.MALFORMED_ROW.value] * len(rows),
            "detail": ["wrong number of fields"] * len(rows),
            "record": [row.text for row in rows],
        },
        schema=QUARANTINE_SCHEMA,
    )


def write_quarantine(directory: Path, entity: str, entries: pa.Table) -> Path:
    """Write ``entries`` to ``directory/entity.parquet`` atomically (temp file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{entity}.parquet"
    tmp = directory / f".{entity}.parquet.tmp"
    pq.write_table(entries, tmp, compression="zstd")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path
