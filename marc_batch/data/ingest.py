"""Ingestion: read the sources, validate them, quarantine what fails, split and render.

This is the first step of every run. Its invariant is conservation: for
each table, rows in = rows accepted + rows quarantined. The error budget is
checked only after the quarantine files are written, so a failed run still
leaves the evidence behind.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from marc_batch.clock import utc_now
from marc_batch.config import Config
from marc_batch.config.sources import TableSource
from marc_batch.data.movielens import read_movielens
from marc_batch.data.quarantine import malformed_entries, write_quarantine
from marc_batch.data.sources import RawPieces, RawTable, read_pieces, read_source
from marc_batch.data.specs import INTERACTIONS, ITEMS, USERS, EntitySpec
from marc_batch.data.split import SPLITS, split_interactions
from marc_batch.data.texts import item_texts, user_texts
from marc_batch.data.validate import Validated, validate
from marc_batch.entities import ENTITIES, Entity
from marc_batch.errors import ErrorBudgetExceeded, SourceError
from marc_batch.store.backends import open_backend
from marc_batch.store.paths import check_run_id
from marc_batch.tracing import traced

TABLES: tuple[EntitySpec, ...] = (ITEMS, USERS, INTERACTIONS)


class TableReport(BaseModel):
    rows_in: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]


class TextReport(BaseModel):
    count: int
    mean_chars: float
    max_chars: int
    example: str


class IngestReport(BaseModel):
    """What a run read and what it refused; ``--json`` prints exactly this."""

    run_id: str
    items: int
    users: int
    interactions: int
    quarantined: int
    tables: dict[str, TableReport]
    split: dict[str, int]
    positive_rate: float
    texts: dict[str, TextReport]
    quarantine_files: list[str]

    def entity_tables(self) -> dict[Entity, TableReport]:
        """Counts of the embedded entities."""
        return {entity: self.tables[entity.table] for entity in ENTITIES}


@dataclass
class Catalogue:
    """Accepted, canonical tables plus the texts the encoder will read."""

    items: pa.Table
    users: pa.Table
    interactions: pa.Table
    item_texts: pa.Table
    user_texts: pa.Table

    def texts(self) -> dict[Entity, pa.Table]:
        """The texts the encoder reads, per embedded entity."""
        return {Entity.ITEM: self.item_texts, Entity.USER: self.user_texts}


def new_run_id() -> str:
    return utc_now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def raw_tables(config: Config) -> Iterator[tuple[str, RawPieces]]:
    """Each table as it is read: explicit sources win, the dataset supplies the rest."""
    sources = config.sources
    explicit = {
        spec.name: getattr(sources, spec.name)
        for spec in TABLES
        if getattr(sources, spec.name) is not None
    }
    if len(explicit) < len(TABLES):
        dataset = read_movielens(sources.dataset)
        for name in [name for name in dataset if name not in explicit]:
            raw = dataset.pop(name)
            yield name, RawPieces(iter([raw.table]), raw.malformed)
        del dataset
    for name, source in explicit.items():
        yield name, read_pieces(source)


def read_raw(config: Config) -> dict[str, RawTable]:
    """Every table, whole."""
    return {name: raw.whole() for name, raw in raw_tables(config)}


def validate_all(
    raw: dict[str, RawTable], config: Config, specs: tuple[EntitySpec, ...] = TABLES
) -> dict[str, Validated]:
    """Validate items and users first: interactions must reference accepted ones."""
    results: dict[str, Validated] = {}
    for spec in specs:
        known = {
            entity: results[entity.table].accepted.select(["id"])
            for entity, _ in spec.references.values()
        }
        result = validate(raw[spec.name].table, spec, config.sources.max_text_bytes, known)
        if raw[spec.name].malformed:
            entries = malformed_entries(spec.name, raw[spec.name].malformed)
            result.quarantine = pa.concat_tables([entries, result.quarantine])
        results[spec.name] = result
    return results


def _text_report(texts: pa.Table) -> TextReport:
    lengths = pc.utf8_length(texts["text"])
    count = texts.num_rows
    return TextReport(
        count=count,
        mean_chars=round(pc.mean(lengths).as_py() or 0.0, 1),
        max_chars=pc.max(lengths).as_py() or 0,
        example=texts["text"][0].as_py() if count else "",
    )


def quarantine_and_check(config: Config, run_id: str, results: dict[str, Validated]) -> list[str]:
    """Write every refused row to quarantine, then enforce the error budget per table."""
    backend = open_backend(config.store)
    files = [
        write_quarantine(backend, run_id, name, result.quarantine)
        for name, result in results.items()
        if result.quarantine.num_rows
    ]
    check_error_budget(config, run_id, {name: table_report(r) for name, r in results.items()})
    return files


def check_error_budget(config: Config, run_id: str, tables: dict[str, TableReport]) -> None:
    """Fail the run if a table quarantined more than its share; its quarantine is written."""
    budget = config.sources.max_quarantine_fraction
    for name, table in tables.items():
        if table.rows_in and table.quarantined / table.rows_in > budget:
            raise ErrorBudgetExceeded(
                f"{name}: {table.quarantined} of {table.rows_in} rows quarantined "
                f"({table.quarantined / table.rows_in:.1%}), over the error budget "
                f"of {budget:.1%}; see {open_backend(config.store).uri}/quarantine/{run_id}"
            )


def table_report(result: Validated) -> TableReport:
    return TableReport(
        rows_in=result.rows_in,
        accepted=result.accepted.num_rows,
        quarantined=result.quarantine.num_rows,
        reasons=result.reason_counts(),
    )


def bahe_users(config: Config) -> bool:
    """Whether user texts carry the profile and behaviour list that BAHE users are read from."""
    return config.model.user_encoder == "bahe"


@traced("ingest")
def ingest(config: Config, run_id: str | None = None) -> tuple[Catalogue, IngestReport]:
    """Run ingestion end to end; raises ErrorBudgetExceeded after writing quarantine."""
    run_id = check_run_id(run_id or new_run_id())
    results = validate_all(read_raw(config), config)
    files = quarantine_and_check(config, run_id, results)
    interactions = split_interactions(
        results["interactions"].accepted, config.sources.split, config.sources.positive_rating
    )
    items, users = results["items"].accepted, results["users"].accepted
    catalogue = Catalogue(
        items=items,
        users=users,
        interactions=interactions,
        item_texts=item_texts(items, config.templates),
        user_texts=user_texts(users, interactions, items, config.templates, bahe_users(config)),
    )
    split_counts = {
        entry["values"]: entry["counts"]
        for entry in pc.value_counts(interactions["split"]).to_pylist()
    }
    report = IngestReport(
        run_id=run_id,
        items=items.num_rows,
        users=users.num_rows,
        interactions=interactions.num_rows,
        quarantined=sum(result.quarantine.num_rows for result in results.values()),
        tables={name: table_report(result) for name, result in results.items()},
        split={name: split_counts.get(name, 0) for name in SPLITS},
        positive_rate=round(pc.mean(interactions["label"]).as_py() or 0.0, 4),
        texts={
            "items": _text_report(catalogue.item_texts),
            "users": _text_report(catalogue.user_texts),
        },
        quarantine_files=files,
    )
    return catalogue, report


@traced("ingest")
def ingest_items(
    config: Config, path: Path, run_id: str | None = None
) -> tuple[pa.Table, TableReport, list[str]]:
    """Validate a file of new or changed items on its own and render their texts.

    The file has the items table's columns (and the configured items
    source's renames apply); ``.parquet`` and ``.csv`` are read.
    """
    formats = {".parquet": "parquet", ".csv": "csv"}
    if path.suffix.lower() not in formats:
        raise SourceError(f"{path}: items must be a .parquet or .csv file")
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    configured = config.sources.items
    source = TableSource(
        format=formats[path.suffix.lower()],
        path=str(path),
        rename=configured.rename if configured else {},
        delimiter=configured.delimiter if configured and configured.format == "csv" else ",",
    )
    run_id = check_run_id(run_id or new_run_id())
    raw = {"items": read_source(source)}
    results = {"items": validate_all(raw, config, (ITEMS,))["items"]}
    files = quarantine_and_check(config, run_id, results)
    items = results["items"].accepted
    return item_texts(items, config.templates), table_report(results["items"]), files
