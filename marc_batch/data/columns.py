"""The Arrow half of validation: per-column checks that need no SQL.

UTF-8 validity, blank text, byte size and out-of-range timestamps are
checked column by column with Arrow kernels (and numpy masks), and their
verdicts become boolean columns (``_invalid_*``, ``_blank_*``, ``_too_long``,
``_outside_*``) that the SQL half (:mod:`marc_batch.data.validate`) turns into
quarantine reasons in the order the record models define.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.data.specs import EntitySpec
from marc_batch.errors import SourceError

_UTF8_LEAF_ROWS = 64
UTC_MICROS = pa.timestamp("us", tz="UTC")
# The years a record's datetime can hold (Python's, so every accepted value converts).
_FIRST_MICROS = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_LAST_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_MICROS_PER = {"s": 1_000_000, "ms": 1_000, "us": 1}


_TEXT_TYPES = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_string_view,
    pa.types.is_binary_view,
)


def is_text(dtype: pa.DataType) -> bool:
    """Strings or bytes in any Arrow layout: the columns whose UTF-8 and size are checked."""
    return any(check(dtype) for check in _TEXT_TYPES)


def _utf8_valid(binary: pa.ChunkedArray) -> np.ndarray:
    """Per-row UTF-8 validity: Arrow checks whole slices, and failing slices are bisected.

    A clean column costs one C++ pass; b bad rows cost about log2(n / b)
    passes plus a Python decode of at most ``_UTF8_LEAF_ROWS`` rows around each.
    """
    valid = np.ones(len(binary), dtype=bool)
    offset = 0
    for chunk in binary.chunks:
        _mark_invalid(chunk, offset, valid)
        offset += len(chunk)
    return valid


def _mark_invalid(piece: pa.Array, offset: int, valid: np.ndarray) -> None:
    try:
        piece.cast(pa.string())
        return
    except pa.ArrowInvalid:
        pass
    if len(piece) <= _UTF8_LEAF_ROWS:
        valid[offset : offset + len(piece)] = [
            value is None or _decodes(value) for value in piece.to_pylist()
        ]
        return
    half = len(piece) // 2
    _mark_invalid(piece.slice(0, half), offset, valid)
    _mark_invalid(piece.slice(half), offset + half, valid)


def _decodes(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _micros(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """A timestamp or date column at microsecond precision, and the rows outside years 1..9999.

    Those rows become null here (and are quarantined as BAD_TYPE): converting
    them as they are overflows, in Arrow, in DuckDB or in Python.
    """
    dtype = column.type
    if pa.types.is_date32(dtype):
        values, per = column.cast(pa.int32()).cast(pa.int64()), 86_400_000_000
    elif pa.types.is_date64(dtype):
        values, per = column.cast(pa.int64()), 1_000
    else:
        values, per = column.cast(pa.int64()), _MICROS_PER.get(dtype.unit, 1)
    null = pc.is_null(values).to_numpy(zero_copy_only=False)
    raw = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_timestamp(dtype) and dtype.unit == "ns":
        raw = raw // 1_000
    outside = ~null & ((raw < _FIRST_MICROS // per) | (raw > _LAST_MICROS // per))
    micros = np.where(null | outside, 0, raw) * per
    tz = dtype.tz if pa.types.is_timestamp(dtype) else None
    array = pa.array(micros, pa.int64(), mask=null | outside).cast(pa.timestamp("us", tz=tz))
    return pa.chunked_array([array]), outside


def prepare(raw: pa.Table, spec: EntitySpec, max_text_bytes: int) -> pa.Table:
    """Decode text columns and compute the Arrow-side masks the SQL rules read.

    Columns whose names start with ``_`` are the validator's own; a source's
    columns of that kind are kept in quarantine records but never accepted.
    """
    n = raw.num_rows
    bad_utf8 = np.zeros(n, dtype=bool)
    text_bytes = np.zeros(n, dtype=np.int64)
    columns: dict[str, pa.ChunkedArray | np.ndarray] = {}
    outside: dict[str, np.ndarray] = {}
    for name in raw.column_names:
        if name.startswith("_"):
            continue
        column = raw[name]
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_null(column.type) and name in (*spec.key, *spec.nonblank_text):
            column = column.cast(pa.large_string())
        if is_text(column.type):
            binary = column.cast(pa.large_binary())
            ok = _utf8_valid(binary)
            bad_utf8 |= ~ok
            text_bytes += pc.fill_null(pc.binary_length(binary), 0).to_numpy()
            column = pc.if_else(pa.array(ok), binary, None).cast(pa.large_string())
        elif name in spec.key and pa.types.is_integer(column.type):
            column = column.cast(pa.large_string())
        elif name in spec.key:
            raise SourceError(
                f"{spec.name}: key column '{name}' has type {column.type}; use strings or integers"
            )
        elif name in spec.nonblank_text:
            raise SourceError(
                f"{spec.name}: text column '{name}' has type {column.type}; use strings"
            )
        elif name in spec.timestamps and (
            pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)
        ):
            column, outside[name] = _micros(column)
        elif pa.types.is_float16(column.type):
            column = column.cast(pa.float32())  # DuckDB has no half precision
        columns[name] = column
    columns["_row"] = np.arange(n, dtype=np.int64)
    columns["_bad_utf8"] = bad_utf8
    columns["_blank_key"] = _blank(columns, spec.key, n)
    columns["_blank_text"] = _blank(columns, spec.nonblank_text, n)
    columns["_too_long"] = text_bytes > max_text_bytes
    for name in spec.timestamps:
        columns[f"_outside_{name}"] = outside.get(name, np.zeros(n, dtype=bool))
    return pa.table(columns)


def _blank(columns: dict, names: tuple[str, ...], n: int) -> np.ndarray:
    """Rows where any of ``names`` is null or only (Unicode) whitespace."""
    blank = np.zeros(n, dtype=bool)
    for name in names:
        trimmed = pc.utf8_length(pc.utf8_trim_whitespace(columns[name]))
        blank |= pc.fill_null(pc.equal(trimmed, 0), True).to_numpy(zero_copy_only=False)
    return blank
