"""The sparse features an id-based CTR model reads: the id itself plus categorical side columns.

A ranking team's model already knows who the user is and what the item is
(ids, age, occupation, genres, year); the lift evaluation asks what z adds
to that. Every feature is categorical by its string value (ages and years
have few distinct values on the catalogues we read); a multi-valued column
(genres) becomes a bag of codes. Rows follow the rendered text tables, so a
feature row is an embedding row. No labels are involved in building them.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from marc_batch.config import LiftConfig
from marc_batch.data.ingest import Catalogue
from marc_batch.entities import Entity
from marc_batch.errors import ConfigError

MISSING = 0


@dataclass
class SparseField:
    """Codes per row, padded with ``MISSING`` to the widest row; codes run 1 .. vocabulary-1."""

    name: str
    codes: np.ndarray  # (rows, width), int64
    vocabulary: int


def _encode(values: list[list[str]], name: str) -> SparseField:
    distinct = sorted({value for row in values for value in row})
    code = {value: index + 1 for index, value in enumerate(distinct)}
    width = max(1, max((len(row) for row in values), default=1))
    codes = np.full((len(values), width), MISSING, dtype=np.int64)
    for index, row in enumerate(values):
        codes[index, : len(row)] = [code[value] for value in row]
    return SparseField(name, codes, len(distinct) + 1)


def _column(
    table: pa.Table, rows: np.ndarray, name: str, separator: str | None, entity: Entity
) -> SparseField:
    if name not in table.column_names:
        raise ConfigError(
            f"evaluate.lift.{entity}_features: the {entity} table has no column {name!r}"
        )
    values: list[list[str]] = []
    for raw in table[name].take(pa.array(rows)).to_pylist():
        text = "" if raw is None else str(raw)
        parts = text.split(separator) if separator else [text]
        values.append([part.strip() for part in parts if part.strip()])
    return _encode(values, name)


def side_features(catalogue: Catalogue, config: LiftConfig) -> dict[Entity, list[SparseField]]:
    """Per entity: the id field, then each configured column, aligned to the text tables."""
    out: dict[Entity, list[SparseField]] = {}
    tables = {
        "user": (catalogue.users, catalogue.user_texts, config.user_features),
        "item": (catalogue.items, catalogue.item_texts, config.item_features),
    }
    for entity, (table, texts, columns) in tables.items():
        position = {key: row for row, key in enumerate(table["id"].to_pylist())}
        rows = np.array([position[key] for key in texts["id"].to_pylist()], dtype=np.int64)
        ids = np.arange(1, len(rows) + 1, dtype=np.int64)[:, None]
        fields = [SparseField("id", ids, len(rows) + 1)]
        fields += [
            _column(table, rows, name, config.multi_valued.get(name), entity) for name in columns
        ]
        out[entity] = fields
    return out
