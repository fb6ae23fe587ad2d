"""Rendering raw rows for humans: quarantine files keep what was refused, byte for byte."""

import json
import math
from datetime import date, datetime
from typing import Any

import pyarrow as pa


def _plain(value: Any) -> Any:
    """A JSON-safe stand-in: bytes decode with escapes, NaN and infinities become strings."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _temporal(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_timestamp(dtype)
        or pa.types.is_date(dtype)
        or pa.types.is_time(dtype)
        or pa.types.is_duration(dtype)
    )


def records_as_json(table: pa.Table) -> list[str]:
    """One JSON object per row of ``table`` (meant for the few refused rows, not the catalogue).

    Dates and times are written by Arrow, which also prints the values Python
    cannot hold (a year past 9999), so a refused row is always recorded.
    """
    table = pa.table(
        [c.cast(pa.string()) if _temporal(c.type) else c for c in table.columns],
        names=table.column_names,
    )
    return [
        json.dumps(
            {name: _plain(value) for name, value in row.items()}, ensure_ascii=False, default=str
        )
        for row in table.to_pylist()
    ]
