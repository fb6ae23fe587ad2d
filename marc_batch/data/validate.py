"""Vectorised validation: split a raw table into accepted rows and quarantined rows.

The rules are those of :mod:`marc_batch.data.records`. Per-column checks
run as Arrow kernels (UTF-8, blank text, byte size: :mod:`marc_batch.data.columns`)
and DuckDB SQL (typed parsing with ``TRY_CAST``, de-duplication with a window, references with a
semi-join), so the cost is a few passes over columns, never a Python loop
per row. Every input row ends up in exactly one of the two outputs.
"""

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from marc_batch.data.columns import UTC_MICROS, is_text, prepare
from marc_batch.data.records import Reason
from marc_batch.data.rows import records_as_json
from marc_batch.data.specs import EntitySpec
from marc_batch.entities import Entity
from marc_batch.errors import SourceError


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
        return reason_counts(self.quarantine)


def reason_counts(quarantine: pa.Table) -> dict[str, int]:
    """Quarantined rows per reason."""
    if quarantine.num_rows == 0:
        return {}
    counts = pc.value_counts(quarantine["reason"]).to_pylist()
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


def _ident(name: str) -> str:
    """A SQL identifier for any column name: a quote in the name cannot end it."""
    return '"' + name.replace('"', '""') + '"'


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
        condition = f"{_ident(name)} NOT IN (SELECT id FROM {entity.table})"
        rules.append((condition, reason, f"{name} names no accepted {entity}"))
    return rules


def _case(rules: list[tuple[str, Reason, str]], value: int) -> str:
    """A CASE returning element ``value`` (1: reason, 2: detail) of the first matching rule."""
    whens = " ".join(f"WHEN {rule[0]} THEN {_sql_string(str(rule[value]))}" for rule in rules)
    return f"CASE {whens} END"


def validate(
    raw: pa.Table,
    spec: EntitySpec,
    max_text_bytes: int,
    accepted_ids: dict[Entity, pa.Table | ds.Dataset] | None = None,
) -> Validated:
    """Apply ``spec`` to ``raw``; ``accepted_ids`` holds the ids that references must hit.

    A dataset of files serves as well as a table: DuckDB scans it for the
    semi-join instead of holding every id.
    """
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
    prepared = prepare(raw, spec, max_text_bytes)
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
            con.register(entity.table, table)
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
        elif is_text(f.type):
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
