"""Ingestion by shard: the same validation, split and texts, one part of the catalogue at a time.

A refresh of tens of millions of rows cannot hold its catalogue in memory.
So the sources are first partitioned by the stable hash of each row's key
(an item's or user's id, an interaction's user) into Parquet files in a
local working directory, one per shard, cut into parts of at most about
``sources.part_rows`` rows where a shard is larger (:mod:`marc_batch.data.partition`);
each row keeps its source row number. A duplicate id, a user and their
interactions all land in one part, so each part is then validated,
de-duplicated and rendered on its own with exactly the rules of
:func:`marc_batch.data.ingest.ingest`, and memory follows the part, not the
catalogue. Only two steps look across parts, and DuckDB does both over the
files: an interaction's item must be an accepted item of any shard, and the
train / validation / test split (the global temporal one orders the whole
log, within ``sources.memory_limit``, spilling past it). Each part's texts
are left in the working directory for the run to stage; the quarantine
files are written part by part, and the error budget is applied per table
once every part is counted, as before.
"""

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
from marc_batch.data.partition import cut, partition, parts_for, read_part, shard_rows
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
from marc_batch.entities import Entity
from marc_batch.store.backends import open_backend
from marc_batch.store.paths import check_run_id
from marc_batch.tracing import phase, traced


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
    """A run's validated catalogue, as texts files per entity, shard and part in ``directory``."""

    directory: Path
    shards: int
    report: IngestReport

    def parts(self, entity: Entity, shard: int) -> Iterator[pa.Table]:
        """The texts of one shard (id, text, text_hash, title), a part at a time.

        With one part per shard (up to ``sources.part_rows`` rows) the order is the one
        ``ingest`` gives.
        """
        for path in self._files(entity, shard):
            yield pq.read_table(path)

    def rows(self, entity: Entity, shard: int) -> int:
        """How many texts one shard has, from the files' footers."""
        return sum(pq.ParquetFile(path).metadata.num_rows for path in self._files(entity, shard))

    def _files(self, entity: Entity, shard: int) -> list[Path]:
        return _parts(self.directory / "texts" / entity / str(shard))


def _parts(directory: Path) -> list[Path]:
    """The part files of one shard, in part order."""
    return sorted(directory.glob("*.parquet"), key=lambda path: int(path.stem))


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


def _validate_part(
    directory: Path,
    spec: EntitySpec,
    shard: int,
    part: int,
    config: Config,
    known: dict[Entity, pa.Table | ds.Dataset],
) -> Validated:
    """Validate one part of a table; quarantine entries name the row of the whole source."""
    raw, source_rows = read_part(directory / "raw" / spec.name, shard, part)
    result = validate(raw, spec, config.sources.max_text_bytes, known)
    quarantine = result.quarantine
    position = quarantine.schema.get_field_index("source_row")
    result.quarantine = quarantine.set_column(
        position, "source_row", pc.take(source_rows, quarantine["source_row"])
    )
    return result


def _accepted(directory: Path, table: str, shard: int | str = "*", part: int | str = "*") -> Path:
    """Where one part's accepted rows go (hive-style, for DuckDB); a glob of them by default."""
    return directory / "accepted" / table / f"shard={shard}" / f"part={part}" / "0.parquet"


def _every_accepted(directory: Path, table: str) -> ds.Dataset:
    """Every part's accepted rows of ``table``, read lazily (a reference lookup scans them)."""
    pattern = _accepted(directory, table)
    return ds.dataset(sorted(str(p) for p in directory.glob(str(pattern.relative_to(directory)))))


def _validate_all(
    directory: Path,
    config: Config,
    parts: dict[str, list[int]],
    quarantine: _Quarantine,
    malformed: dict[str, list[MalformedRow]],
) -> dict[str, _Table]:
    """Validate every part of every table, items and users before the interactions naming them."""
    counts = {spec.name: _Table() for spec in TABLES}
    for spec in TABLES:
        entries = malformed_entries(spec.name, malformed[spec.name])
        quarantine.write(spec.name, entries)
        counts[spec.name].add(entries, 0)
        # An interaction is in its user's part; its item may be in any item shard.
        references = [entity for entity, _ in spec.references.values()]
        items = _every_accepted(directory, "items") if Entity.ITEM in references else None
        for shard, count in enumerate(parts[spec.name]):
            for part in range(count):
                known = {
                    entity: pq.read_table(
                        _accepted(directory, entity.table, shard, part), columns=["id"]
                    )
                    if entity is Entity.USER
                    else items
                    for entity in references
                }
                result = _validate_part(directory, spec, shard, part, config, known)
                quarantine.write(spec.name, result.quarantine)
                counts[spec.name].add(result.quarantine, result.accepted.num_rows)
                path = _accepted(directory, spec.name, shard, part)
                path.parent.mkdir(parents=True)
                pq.write_table(result.accepted, path)
    return counts


def _write_texts(directory: Path, entity: Entity, shard: int, part: int, texts: pa.Table) -> None:
    path = directory / "texts" / entity / str(shard) / f"{part}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(texts, path)


def _render(directory: Path, config: Config, parts: dict[str, list[int]]) -> dict[Entity, _Texts]:
    """Each part's item and user texts, written next to its accepted rows.

    A user part's histories need the items its users rated, from any item
    shard: only those are read, by a filtered scan of the accepted items.
    """
    figures = {Entity.ITEM: _Texts(), Entity.USER: _Texts()}
    for shard, count in enumerate(parts["items"]):
        for part in range(count):
            accepted = pq.read_table(_accepted(directory, "items", shard, part))
            texts = item_texts(accepted, config.templates)
            figures[Entity.ITEM].add(texts)
            _write_texts(directory, Entity.ITEM, shard, part, texts)
    items = _every_accepted(directory, "items")
    for shard, count in enumerate(parts["users"]):
        for part in range(count):
            split = directory / "split" / f"shard={shard}" / f"part={part}"
            interactions = (
                canonical_types(ds.dataset(split).to_table())
                if split.is_dir()
                else _no_interactions(directory)
            )
            rated = items.to_table(filter=pc.field("id").isin(pc.unique(interactions["item_id"])))
            texts = user_texts(
                pq.read_table(_accepted(directory, "users", shard, part)),
                interactions,
                rated,
                config.templates,
                bahe_users(config),
            )
            figures[Entity.USER].add(texts)
            _write_texts(directory, Entity.USER, shard, part, texts)
    return figures


def _no_interactions(directory: Path) -> pa.Table:
    schema = pq.read_schema(_accepted(directory, "interactions", 0, 0))
    return schema.empty_table().append_column("split", pa.array([], pa.string()))


def _partition_all(
    config: Config, shards: int, directory: Path
) -> tuple[dict[str, list[int]], dict[str, list[MalformedRow]]]:
    """Every source partitioned by shard and cut into parts; the parts per shard of each table.

    A user's interactions must share the user's part, so users and
    interactions are cut alike, by whichever of the two is larger.
    """
    malformed: dict[str, list[MalformedRow]] = {}
    keys = {spec.name: spec.key[0] for spec in TABLES}  # interactions: by user
    for name, raw in raw_tables(config):
        partition(raw.pieces, keys[name], shards, directory / "raw" / name)
        malformed[name] = raw.malformed
    rows = {name: shard_rows(directory / "raw" / name, shards) for name in keys}
    limit = config.sources.part_rows
    people = [max(u, i) for u, i in zip(rows["users"], rows["interactions"], strict=True)]
    parts = {
        "items": [parts_for(r, limit) for r in rows["items"]],
        "users": [parts_for(r, limit) for r in people],
    }
    parts["interactions"] = parts["users"]
    for name, counts in parts.items():
        for shard, count in enumerate(counts):
            cut(directory / "raw" / name, shard, shards, count)
    return parts, malformed


@traced("ingest")
def _ingest(config: Config, shards: int, run_id: str, directory: Path) -> IngestReport:
    """Partition, validate, split and render into ``directory``; what was read and refused."""
    with phase("ingest_partition"):
        parts, malformed = _partition_all(config, shards, directory)
    with ExitStack() as files, phase("ingest_validate"):
        quarantine = _Quarantine(config, run_id, files)
        counts = _validate_all(directory, config, parts, quarantine, malformed)
    tables = {name: table.report() for name, table in counts.items()}
    check_error_budget(config, run_id, tables)
    with phase("ingest_split"):
        split, positives = split_to_shards(
            directory / "accepted" / "interactions",
            config.sources.split,
            config.sources.positive_rating,
            directory / "split",
            config.sources.memory_limit,
        )
    with phase("ingest_render"):
        texts = _render(directory, config, parts)
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
