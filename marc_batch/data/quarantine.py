"""Quarantine files: every refused row with its reason, one Parquet file per table and run."""

import pyarrow as pa
import pyarrow.parquet as pq

from marc_batch.data.records import Reason
from marc_batch.data.sources import MalformedRow
from marc_batch.data.validate import QUARANTINE_SCHEMA
from marc_batch.store.backends import Backend


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


def write_quarantine(backend: Backend, run_id: str, entity: str, entries: pa.Table) -> str:
    """Write ``entries`` under ``quarantine/<run_id>/`` in the store; returns where it landed.

    Through the store's backend, so an ``s3://`` store gets its quarantine
    files in the bucket, written whole (fsync'd on local disks).
    """
    path = f"quarantine/{run_id}/{entity}.parquet"
    with backend.writing(path) as handle:
        pq.write_table(entries, handle, compression="zstd")
    return f"{backend.uri}/{path}"
