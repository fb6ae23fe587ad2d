"""Vectorised validation: split a raw table into accepted rows and quarantined rows.

The rules are those of :mod:`marc_batch.data.records`. Per-column checks
run as Arrow kernels (UTF-8, blank text, byte size) and DuckDB SQL (typed
parsing with ``TRY_CAST``, de-duplication with a window, references with a
semi-join), so the cost is a few passes over columns, never a Python loop
per row. Every input row ends up in exactly one of the two outputs.
"""

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.data.records import Reason
from marc_batch.data.rows import records_as_json
from marc_batch.errors import SourceError

_UTF8_LEAF_ROWS = 64
UTC_MICROS = pa.timestamp("us", tz="UTC")
# The years a record's datetime can hold (Python's, so every accepted value converts).
_FIRST_MICROS = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_LAST_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_MICROS_PER = {"s": 1_000_000, "ms": 1_000, "us": 1}


@dataclass(frozen=True)
class EntitySpec:
    """The validation rules of one entity, mirroring its record model."""

    name: str
    key: tuple[str, ...]
    required: tuple[str, ...]
    nonblank_text: tuple[str, ...] = ()
    timestamps: dict[str, bool] = field(default_factory=dict)  # column -> required
    numbers: tuple[str, ...] = ()
    recency: str | None = None
    references: dict[str, tuple[str, Reason]] = field(default_factory=dict)


ITEMS = EntitySpec(
    "items",
    key=("id",),
    required=("id", "title"),
    nonblank_text=("title",),
    timestamps={"updated_at": False},
    recency="updated_at",
)
USERS = EntitySpec(
    "users", key=("id",), required=("id",), timestamps={"updated_at": False}, recency="updated_at"
)
INTERACTIONS = EntitySpec(
    "interactions",
    key=("user_id", "item_id"),
    required=("user_id", "item_id", "rating", "timestamp"),
    timestamps={"timestamp": True},
    numbers=("rating",),
    recency="timestamp",
    references={
        "user_id": ("users", Reason.UNKNOWN_USER),
        "item_id": ("items", Reason.UNKNOWN_ITEM),
    },
)


@dataclass
class Validated:
    """The outcome for one table: accepted rows (canonical types) and quarantine entries."""

    entity: str
    accepted: pa.Table
    quarantine: pa.Table

    @property
    def rows_in(self) -> int:
        return self.accepted.num_rows + self.quarantine.num_rows

    def reason_counts(self) -> dict[str, int]:
        if self.quarantine.num_rows == 0:
            return {}
        counts = pc.value_counts(self.quarantine["reason"]).to_pylist()
        return {entry["values"]: entry["counts"] for entry in counts}


QUARANTINE_SCHEMA = pa.schema(
    [
        ("entity", pa.string()),
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("record", pa.string()),
    ]
)


def _is_text(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_binary(dtype)
        or pa.types.is_large_binary(dtype)
        or pa.types.is_string_view(dtype)
        or pa.types.is_binary_view(dtype)
    )


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


def _ident(name: str) -> str:
    """A SQL identifier for any column name: a quote in the name cannot end it."""
    return '"' + name.replace('"', '""') + '"'


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


def _prepare(raw: pa.Table, spec: EntitySpec, max_text_bytes: int) -> pa.Table:
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
        if _is_text(column.type):
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


def _timestamp_sql(column: str, dtype: pa.DataType) -> str:
    """Parse epoch seconds (numbers or digit strings) or ISO-8601 text to TIMESTAMPTZ, else NULL."""
    quoted = _ident(column)
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return f"CAST({quoted} AS TIMESTAMPTZ)"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return f"try(to_timestamp(CAST({quoted} AS DOUBLE)))"
    return (
        f"COALESCE(try(to_timestamp(TRY_CAST({quoted} AS DOUBLE))), "
        f"TRY_CAST({quoted} AS TIMESTAMPTZ))"
    )


def _number_sql(column: str, dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return f"CAST({_ident(column)} AS DOUBLE)"
    return f"TRY_CAST({_ident(column)} AS DOUBLE)"


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parsed_sql(spec: EntitySpec, schema: pa.Schema) -> dict[str, str]:
    """Column -> SQL parsing it to its canonical type; computed once, read by rules and output."""
    parsed = {}
    for name in spec.timestamps:
        parsed[name] = (
            _timestamp_sql(name, schema.field(name).type)
            if name in schema.names
            else "CAST(NULL AS TIMESTAMPTZ)"
        )
    for name in spec.numbers:
        parsed[name] = _number_sql(name, schema.field(name).type)
    return parsed


_FIRST = "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
_LAST = "TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"


def _rules(
    spec: EntitySpec, schema: pa.Schema, max_text_bytes: int
) -> list[tuple[str, Reason, str]]:
    """(SQL condition, reason, detail) in precedence order; the first true condition wins."""
    keys = ", ".join(spec.key)
    rules = [
        ("_bad_utf8", Reason.INVALID_UTF8, "a text field is not valid UTF-8"),
        ("_blank_key", Reason.NULL_ID, f"{keys}: missing or blank"),
    ]
    for name, required in spec.timestamps.items():
        if name in schema.names:
            column, value = _ident(name), _ident(f"_p_{name}")
            missing = f"{column} IS NULL OR " if required else ""
            condition = (
                f"{_ident(f'_outside_{name}')} OR {missing}({column} IS NOT NULL AND "
                f"{value} IS NULL) OR {value} < {_FIRST} OR {value} > {_LAST}"
            )
            rules.append((condition, Reason.BAD_TYPE, f"{name} is not a timestamp"))
    for name in spec.numbers:
        value = _ident(f"_p_{name}")
        rules.append((f"{value} IS NULL", Reason.BAD_TYPE, f"{name} is not a number"))
        rules.append((f"NOT isfinite({value})", Reason.NON_FINITE, f"{name} is NaN or infinite"))
    if spec.nonblank_text:
        fields = ", ".join(spec.nonblank_text)
        rules.append(("_blank_text", Reason.EMPTY_TEXT, f"{fields} is empty or whitespace only"))
    rules.append(("_too_long", Reason.TEXT_TOO_LONG, f"text fields exceed {max_text_bytes} bytes"))
    for name, (entity, reason) in spec.references.items():
        condition = f"{_ident(name)} NOT IN (SELECT id FROM {entity})"
        rules.append((condition, reason, f"{name} names no accepted {entity[:-1]}"))
    return rules


def _case(rules: list[tuple[str, Reason, str]], value: int) -> str:
    """A CASE returning element ``value`` (1: reason, 2: detail) of the first matching rule."""
    whens = " ".join(f"WHEN {rule[0]} THEN {_sql_string(str(rule[value]))}" for rule in rules)
    return f"CASE {whens} END"


def validate(
    raw: pa.Table,
    spec: EntitySpec,
    max_text_bytes: int,
    accepted_ids: dict[str, pa.Table] | None = None,
) -> Validated:
    """Apply ``spec`` to ``raw``; ``accepted_ids`` holds the id tables that references must hit."""
    names = raw.column_names
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SourceError(f"{spec.name}: column(s) {', '.join(twice)} appear more than once")
    missing = [name for name in spec.required if name not in names]
    if missing:
        raise SourceError(
            f"{spec.name}: missing column(s) {', '.join(missing)}; "
            f"found: {', '.join(names) or 'none'}"
        )
    prepared = _prepare(raw, spec, max_text_bytes)
    data_columns = [name for name in prepared.column_names if not name.startswith("_")]
    parsed = _parsed_sql(spec, prepared.schema)
    output = data_columns + [name for name in parsed if name not in data_columns]
    rules = _rules(spec, prepared.schema, max_text_bytes)
    keys = ", ".join(_ident(name) for name in spec.key)
    recency = f"{_ident(f'_p_{spec.recency}')} DESC NULLS LAST, " if spec.recency in parsed else ""
    duplicate = _sql_string(f"{', '.join(spec.key)}: duplicate; the newest row was kept")
    parsing = ", ".join(f"{expr} AS {_ident(f'_p_{name}')}" for name, expr in parsed.items())
    selected = ", ".join(
        f"{_ident(f'_p_{n}')} AS {_ident(n)}" if n in parsed else _ident(n) for n in output
    )
    con = duckdb.connect()
    try:
        con.register("prepared", prepared)
        for entity, table in (accepted_ids or {}).items():
            con.register(entity, table)
        checked = con.sql(
            f"""
            WITH parsed AS (SELECT *, {parsing} FROM prepared),
            ruled AS (
                SELECT *, {_case(rules, 1)} AS _reason, {_case(rules, 2)} AS _detail FROM parsed),
            ranked AS (
                SELECT *, _reason IS NULL AND row_number() OVER (
                    PARTITION BY {keys}, _reason IS NULL ORDER BY {recency}_row) > 1 AS _dup
                FROM ruled)
            SELECT {selected},
                _row,
                CASE WHEN _dup THEN '{Reason.DUPLICATE_ID.value}' ELSE _reason END AS _why,
                CASE WHEN _dup THEN {duplicate} ELSE _detail END AS _why_detail
            FROM ranked
            ORDER BY _row
            """
        ).to_arrow_table()
    except duckdb.Error as exc:
        detail = " ".join(str(exc).split())[:300]
        raise SourceError(f"{spec.name}: a column cannot be read: {detail}") from None
    finally:
        con.close()
    ok = pc.is_null(checked["_why"])
    accepted = checked.filter(ok).select(output)
    refused = checked.filter(pc.invert(ok)).select(["_row", "_why", "_why_detail"])
    return Validated(
        spec.name, canonical_types(accepted), quarantine_entries(spec.name, raw, refused)
    )


def canonical_types(table: pa.Table) -> pa.Table:
    """One Arrow type per logical type, whatever DuckDB or the source produced."""
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, UTC_MICROS))
        elif _is_text(f.type):
            fields.append(pa.field(f.name, pa.string()))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields))


def quarantine_entries(entity: str, raw: pa.Table, refused: pa.Table) -> pa.Table:
    """Quarantine rows for the refused ``_row`` indices, with the original values as JSON."""
    rows = refused["_row"]
    return pa.table(
        {
            "entity": pa.array([entity] * len(rows), pa.string()),
            "source_row": rows.cast(pa.int64()),
            "reason": refused["_why"].cast(pa.string()),
            "detail": refused["_why_detail"].cast(pa.string()),
            "record": pa.array(records_as_json(raw.take(rows)), pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
