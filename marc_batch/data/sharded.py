"""Ingestion by shard: the same validation, split and texts, one shard of the catalogue at a time.

A refresh of tens of millions of rows cannot hold its catalogue in memory.
So the sources are first partitioned by the stable shard hash of each row's
key (an item's or user's id, an interaction's user) into one Parquet file
per shard in a local working directory, each row keeping its source row
number. A duplicate id, a user and their interactions all land in one
shard, so each shard is then validated, de-duplicated and rendered on its
own with exactly the rules of :func:`marc_batch.data.ingest.ingest`. Only
two steps look across shards, and DuckDB does both over the files: an
interaction's item must be an accepted item of any shard, and the train /
validation / test split (the global temporal one orders the whole log).
Each shard's texts are left in the working directory for the run to stage;
the quarantine files are written shard by shard, and the error budget is
applied per table once every shard is counted, as before.
"""

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from marc_batch.config import Config
from marc_batch.data.ingest import (
    TABLES,
    IngestReport,
    TableReport,
    TextReport,
    bahe_users,
    check_error_budget,
    new_run_id,
    raw_tables,
)
from marc_batch.data.quarantine import malformed_entries
from marc_batch.data.sources import MalformedRow
from marc_batch.data.specs import EntitySpec
from marc_batch.data.split import SPLITS, split_to_shards
from marc_batch.data.texts import item_texts, user_texts
from marc_batch.data.validate import (
    QUARANTINE_SCHEMA,
    Validated,
    canonical_types,
    reason_counts,
    validate,
)
from marc_batch.encode.shards import shard_of
from marc_batch.entities import Entity
from marc_batch.store.backends import open_backend
from marc_batch.store.paths import check_run_id
from marc_batch.tracing import traced

SOURCE_ROW = "__marc_batch_source_row"
BATCH_ROWS = 65_536


def _shards_of(key: pa.ChunkedArray | pa.Array, shards: int) -> np.ndarray:
    """The shard of each raw key, computed on the id it will validate to.

    Text keys are hashed as the string they decode to and integer keys as
    their decimal string, so the shard is that of the accepted id; an
    undecodable or missing key (quarantined whatever its shard) hashes as
    whatever it decodes to with replacement characters, or as "".
    """
    values = [
        v.decode("utf-8", "replace") if isinstance(v, bytes) else "" if v is None else str(v)
        for v in key.to_pylist()
    ]
    return shard_of(values, shards)


def _partition(pieces: Iterator[pa.Table], key: str, shards: int, directory: Path) -> None:
    """Write the rows of ``pieces`` into one file per shard of ``key``, with their source rows.

    Batch by batch: each batch is ordered by shard (stably, so rows keep
    their source order within a shard) and cut into runs, one per shard.
    """
    directory.mkdir(parents=True)
    writers: list[pq.ParquetWriter] = []
    seen = 0
    try:
        for piece in pieces:
            numbers = pa.array(np.arange(seen, seen + piece.num_rows, dtype=np.int64))
            table = piece.append_column(SOURCE_ROW, numbers)
            seen += piece.num_rows
            if not writers:
                writers = [
                    pq.ParquetWriter(directory / f"{s}.parquet", table.schema)
                    for s in range(shards)
                ]
            for batch in table.to_batches(BATCH_ROWS):
                assignment = (
                    _shards_of(batch[key], shards)
                    if key in batch.schema.names
                    else np.zeros(batch.num_rows, np.int32)  # refused as a missing column anyway
                )
                order = np.argsort(assignment, kind="stable")
                bounds = np.searchsorted(assignment[order], np.arange(shards + 1))
                ordered = batch.take(pa.array(order))
                for s in range(shards):
                    if bounds[s + 1] > bounds[s]:
                        writers[s].write_batch(ordered.slice(bounds[s], bounds[s + 1] - bounds[s]))
    finally:
        for writer in writers:
            writer.close()


@dataclass
class _Table:
    """One table's running counts across shards."""

    rows_in: int = 0
    accepted: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, quarantine: pa.Table, accepted: int) -> None:
        self.rows_in += quarantine.num_rows + accepted
        self.accepted += accepted
        self.reasons.update(reason_counts(quarantine))

    def report(self) -> TableReport:
        return TableReport(
            rows_in=self.rows_in,
            accepted=self.accepted,
            quarantined=self.rows_in - self.accepted,
            reasons=dict(self.reasons),
        )


@dataclass
class _Texts:
    """One entity's text figures across shards (the in-memory report's, summed)."""

    count: int = 0
    chars: int = 0
    longest: int = 0
    example: str = ""

    def add(self, texts: pa.Table) -> None:
        lengths = pc.utf8_length(texts["text"])
        if texts.num_rows and not self.count:
            self.example = texts["text"][0].as_py()
        self.count += texts.num_rows
        self.chars += pc.sum(lengths).as_py() or 0
        self.longest = max(self.longest, pc.max(lengths).as_py() or 0)

    def report(self) -> TextReport:
        mean = round(self.chars / self.count, 1) if self.count else 0.0
        return TextReport(
            count=self.count, mean_chars=mean, max_chars=self.longest, example=self.example
        )


@dataclass
class ShardedCatalogue:
    """A run's validated catalogue, as one texts file per entity and shard in ``directory``."""

    directory: Path
    shards: int
    report: IngestReport

    def texts(self, entity: Entity, shard: int) -> pa.Table:
        """The texts of one shard (id, text, text_hash, title), in the order ``ingest`` gives."""
        return pq.read_table(self.directory / "texts" / entity / f"{shard}.parquet")


class _Quarantine:
    """One quarantine file per table, written shard by shard as rows are refused."""

    def __init__(self, config: Config, run_id: str, files: ExitStack) -> None:
        self.backend = open_backend(config.store)
        self.run_id = run_id
        self.files = files
        self.written: dict[str, str] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, table: str, entries: pa.Table) -> None:
        if not entries.num_rows:
            return
        if table not in self.writers:
            path = f"quarantine/{self.run_id}/{table}.parquet"
            stream = self.files.enter_context(self.backend.writing(path))
            writer = pq.ParquetWriter(stream, QUARANTINE_SCHEMA, compression="zstd")
            self.files.callback(writer.close)
            self.writers[table] = writer
            self.written[table] = f"{self.backend.uri}/{path}"
        self.writers[table].write_table(entries)


def _validate_shard(
    directory: Path,
    spec: EntitySpec,
    shard: int,
    config: Config,
    known: dict[Entity, pa.Table | ds.Dataset],
) -> Validated:
    """Validate one shard of a table; quarantine entries name the row of the whole source."""
    # Not read as a dataset: a source may repeat a column name, which validate() refuses.
    raw = pq.ParquetFile(directory / "raw" / spec.name / f"{shard}.parquet").read()
    source_rows = raw[SOURCE_ROW]
    result = validate(raw.drop_columns([SOURCE_ROW]), spec, config.sources.max_text_bytes, known)
    quarantine = result.quarantine
    position = quarantine.schema.get_field_index("source_row")
    result.quarantine = quarantine.set_column(
        position, "source_row", pc.take(source_rows, quarantine["source_row"])
    )
    return result


def _accepted(directory: Path, table: str, shard: int) -> Path:
    return directory / "accepted" / table / f"shard={shard}" / "0.parquet"


def _validate_all(
    directory: Path,
    config: Config,
    shards: int,
    quarantine: _Quarantine,
    malformed: dict[str, list[MalformedRow]],
) -> dict[str, _Table]:
    """Validate every shard of every table, items and users before the interactions naming them."""
    counts = {spec.name: _Table() for spec in TABLES}
    for spec in TABLES:
        entries = malformed_entries(spec.name, malformed[spec.name])
        quarantine.write(spec.name, entries)
        counts[spec.name].add(entries, 0)
        for shard in range(shards):
            # An interaction is in its user's shard; its item may be in any item shard.
            known = {
                entity: pq.read_table(_accepted(directory, entity.table, shard), columns=["id"])
                if entity is Entity.USER
                else ds.dataset([str(_accepted(directory, entity.table, s)) for s in range(shards)])
                for entity, _ in spec.references.values()
            }
            result = _validate_shard(directory, spec, shard, config, known)
            quarantine.write(spec.name, result.quarantine)
            counts[spec.name].add(result.quarantine, result.accepted.num_rows)
            path = _accepted(directory, spec.name, shard)
            path.parent.mkdir(parents=True)
            pq.write_table(result.accepted, path)
    return counts


def _render(directory: Path, config: Config, shards: int) -> dict[Entity, _Texts]:
    """Each shard's item and user texts, written next to its accepted rows.

    A user shard's histories need the items its users rated, from any item
    shard: only those are read, by a filtered scan of the accepted items.
    """
    figures = {Entity.ITEM: _Texts(), Entity.USER: _Texts()}
    items = ds.dataset([str(_accepted(directory, "items", s)) for s in range(shards)])
    for shard in range(shards):
        split = directory / "split" / f"shard={shard}"
        interactions = (
            canonical_types(ds.dataset(split).to_table())
            if split.is_dir()
            else _no_interactions(directory)
        )
        rated = items.to_table(filter=pc.field("id").isin(pc.unique(interactions["item_id"])))
        texts = {
            Entity.ITEM: item_texts(
                pq.read_table(_accepted(directory, "items", shard)), config.templates
            ),
            Entity.USER: user_texts(
                pq.read_table(_accepted(directory, "users", shard)),
                interactions,
                rated,
                config.templates,
                bahe_users(config),
            ),
        }
        for entity, table in texts.items():
            figures[entity].add(table)
            path = directory / "texts" / entity / f"{shard}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
    return figures


def _no_interactions(directory: Path) -> pa.Table:
    schema = pq.read_schema(_accepted(directory, "interactions", 0))
    return schema.empty_table().append_column("split", pa.array([], pa.string()))


@traced("ingest")
def _ingest(config: Config, shards: int, run_id: str, directory: Path) -> IngestReport:
    """Partition, validate, split and render into ``directory``; what was read and refused."""
    malformed: dict[str, list[MalformedRow]] = {}
    keys = {spec.name: spec.key[0] for spec in TABLES}  # interactions: by user
    for name, raw in raw_tables(config):
        _partition(raw.pieces, keys[name], shards, directory / "raw" / name)
        malformed[name] = raw.malformed
    with ExitStack() as files:
        quarantine = _Quarantine(config, run_id, files)
        counts = _validate_all(directory, config, shards, quarantine, malformed)
    tables = {name: table.report() for name, table in counts.items()}
    check_error_budget(config, run_id, tables)
    split, positives = split_to_shards(
        directory / "accepted" / "interactions",
        config.sources.split,
        config.sources.positive_rating,
        directory / "split",
    )
    texts = _render(directory, config, shards)
    interactions = tables["interactions"].accepted
    return IngestReport(
        run_id=run_id,
        items=tables["items"].accepted,
        users=tables["users"].accepted,
        interactions=interactions,
        quarantined=sum(table.quarantined for table in tables.values()),
        tables=tables,
        split={name: split.get(name, 0) for name in SPLITS},
        positive_rate=round(positives / interactions, 4) if interactions else 0.0,
        texts={"items": texts[Entity.ITEM].report(), "users": texts[Entity.USER].report()},
        quarantine_files=list(quarantine.written.values()),
    )


@contextmanager
def ingest_by_shard(
    config: Config, shards: int, run_id: str | None = None
) -> Iterator[ShardedCatalogue]:
    """Ingest the configured sources shard by shard into a working directory kept for the block.

    Raises ErrorBudgetExceeded after writing quarantine, as :func:`ingest` does.
    """
    run_id = check_run_id(run_id or new_run_id())
    with tempfile.TemporaryDirectory(prefix="marc-batch-ingest-") as workdir:
        directory = Path(workdir)
        yield ShardedCatalogue(directory, shards, _ingest(config, shards, run_id, directory))
