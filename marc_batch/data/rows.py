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


def records_as_json(table: pa.Table) -> list[str]:
    """One JSON object per row of ``table`` (meant for the few refused rows, not the catalogue)."""
    return [
        json.dumps(
            {name: _plain(value) for name, value in row.items()}, ensure_ascii=False, default=str
        )
        for row in table.to_pylist()
    ]
