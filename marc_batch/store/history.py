"""Point-in-time history of a store's embeddings: when each vector was live.

Ranking teams join embeddings against impression logs as of each
impression's time, so they need every vector an id has had with the interval
during which it was the one a reader got. This module reads the version log
(each committed manifest and the data files it lists) into a disk-backed
DuckDB database and writes one row per ``(entity, id, interval)``.

Time is the commit time each manifest records (``created_at``, taken when the
manifest is built, just before it is published with put-if-absent). Version
*v* is live from its commit time until the next exported version's. Clocks of
different publishers may disagree, so a version's time is the latest commit
time of it and every version before it; a version whose time equals its
successor's was superseded at the instant it appeared and is left out.

Consecutive versions in which an id kept the same model version and the same
embedding (every float equal) are one interval: a full refresh or compaction
that rewrites an unchanged vector does not start a new one, while a re-encoded
vector that differs in any float does, so a point-in-time join returns exactly
what ``open_snapshot`` of the live version returns. Data files are read with
the reader's checks (page CRCs, schema, model version), one at a time; every
path comes from a manifest, which refuses paths outside the store root.
"""

import os
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from marc_batch.entities import ENTITIES
from marc_batch.errors import SnapshotNotFound, StoreError
from marc_batch.store.manifest import DataFile, Manifest
from marc_batch.store.reader import read_data_file
from marc_batch.store.store import Store

# The export's columns, in order: each interval with its row's vector and model.
EXPORT_COLUMNS = (
    "h.entity, h.id, r.embedding, r.model_version, h.snapshot_version, h.valid_from, h.valid_to"
)

MEMORY_LIMIT = "512MB"  # DuckDB's working memory; past it, it spills to disk

SCHEMA_SQL = """
CREATE TABLE versions (version BIGINT, pos BIGINT, valid_from TIMESTAMPTZ);
CREATE TABLE files (file_id BIGINT, entity VARCHAR, kind VARCHAR, sequence BIGINT);
CREATE TABLE listing (version BIGINT, file_id BIGINT);
CREATE TABLE rows (file_id BIGINT, row_id BIGINT, id VARCHAR, model_version VARCHAR,
                   embedding FLOAT[]);
CREATE TABLE deletes (file_id BIGINT, id VARCHAR);
"""

# The live row of every id at every exported version, merged as the reader merges:
# the row of the highest sequence wins, and a deletes file of a sequence at least as
# high removes it.
LIVE_SQL = """
CREATE TABLE live AS
WITH newest AS (
    SELECT l.version, f.entity, r.id, r.row_id, f.sequence
    FROM listing l JOIN files f USING (file_id) JOIN rows r USING (file_id)
    QUALIFY row_number() OVER (PARTITION BY l.version, f.entity, r.id
                               ORDER BY f.sequence DESC) = 1
), deleted AS (
    SELECT l.version, f.entity, d.id, max(f.sequence) AS sequence
    FROM listing l JOIN files f USING (file_id) JOIN deletes d USING (file_id)
    GROUP BY l.version, f.entity, d.id
)
SELECT n.version, n.entity, n.id, n.row_id
FROM newest n LEFT JOIN deleted d USING (version, entity, id)
WHERE d.sequence IS NULL OR d.sequence < n.sequence
"""

# Gaps and islands: an interval starts where an id appears, reappears after a
# version without it, or its model version or embedding differs from the version
# before; it ends at the next exported version's time, or stays open (NULL).
HISTORY_SQL = """
CREATE TABLE history AS
WITH ordered AS (
    SELECT s.entity, s.id, s.row_id, s.version, v.pos,
           lag(v.pos) OVER w AS prev_pos, lag(s.row_id) OVER w AS prev_row
    FROM live s JOIN versions v USING (version)
    WINDOW w AS (PARTITION BY s.entity, s.id ORDER BY v.pos)
), pairs AS (
    -- Each pair of physical rows an id moved between, compared once.
    SELECT DISTINCT row_id, prev_row FROM ordered WHERE prev_row <> row_id
), changes AS (
    SELECT p.row_id, p.prev_row,
           a.model_version IS DISTINCT FROM b.model_version
           OR a.embedding IS DISTINCT FROM b.embedding AS differs
    FROM pairs p JOIN rows a ON a.row_id = p.row_id JOIN rows b ON b.row_id = p.prev_row
), flagged AS (
    SELECT o.entity, o.id, o.row_id, o.version, o.pos,
           (o.prev_pos IS NULL OR o.prev_pos <> o.pos - 1 OR coalesce(c.differs, false))::INTEGER
               AS starts
    FROM ordered o LEFT JOIN changes c ON c.row_id = o.row_id AND c.prev_row = o.prev_row
), numbered AS (
    SELECT *, sum(starts) OVER (PARTITION BY entity, id ORDER BY pos) AS interval_no
    FROM flagged
), intervals AS (
    SELECT entity, id, min(pos) AS first_pos, max(pos) AS last_pos,
           arg_min(row_id, pos) AS row_id, arg_min(version, pos) AS snapshot_version
    FROM numbered GROUP BY entity, id, interval_no
)
SELECT i.entity, i.id, i.row_id, i.snapshot_version, f.valid_from, t.valid_from AS valid_to
FROM intervals i
JOIN versions f ON f.pos = i.first_pos
LEFT JOIN versions t ON t.pos = i.last_pos + 1
"""


@dataclass(frozen=True)
class HistoryExport:
    """What an export wrote: the versions it covers and the intervals in each output file."""

    versions: list[int]
    files: dict[str, int]


def select_versions(
    store: Store,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
) -> list[Manifest]:
    """The committed versions to export, oldest first.

    By default every retained version in version order; ``since`` and
    ``until`` (a version number, snapshot id or channel name) bound it, both
    included; ``channel`` keeps only the versions committed for that channel
    (the ``channel`` their manifest records).
    """
    versions = store.versions()
    if not versions:
        raise StoreError(f"{store.backend.uri} has no committed version")
    low = store.resolve(since).version if since is not None else versions[0]
    high = store.resolve(until).version if until is not None else versions[-1]
    if low > high:
        raise StoreError(f"--since version {low} is after --until version {high}")
    chosen = [store.manifest(v) for v in versions if low <= v <= high]
    if channel is not None:
        chosen = [m for m in chosen if m.channel == channel]
        if not chosen:
            raise SnapshotNotFound(
                f"no version from {low} to {high} was committed for channel {channel!r}"
            )
    return chosen


def live_from(manifests: Sequence[Manifest]) -> list[tuple[Manifest, datetime]]:
    """Each version with the time it became live, strictly increasing.

    A version's time is the latest commit time up to it (clocks may disagree);
    one whose time its successor shares was never live on its own.
    """
    timed, latest = [], None
    for manifest in manifests:
        latest = manifest.created_at if latest is None else max(latest, manifest.created_at)
        timed.append((manifest, latest))
    successors = [at for _, at in timed[1:]]
    return [
        pair
        for pair, nxt in zip(timed, [*successors, None], strict=True)
        if nxt is None or nxt > pair[1]
    ]


def export_history(
    store: Store,
    out: Path,
    entities: Iterable[str] = ENTITIES,
    *,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
    overwrite: bool = False,
    verify: bool = False,
    memory_limit: str = MEMORY_LIMIT,
) -> HistoryExport:
    """Write the history of ``entities`` to ``out``: one Parquet file, or a directory of them.

    A path ending in ``.parquet`` (or an existing file) gets every entity in
    one file; any other path is a directory with one ``<entity>.parquet`` per
    entity, since a feature store declares one source per entity. Each file
    is written under a temporary name and renamed into place, so a failed
    export never leaves a partial file. DuckDB keeps to ``memory_limit`` (a
    DuckDB size such as ``512MB``) and spills the rest to a temporary
    directory, so memory does not grow with the catalogue. ``verify`` also
    checks each data file's size and sha256 against its manifest.
    """
    entities = list(entities)
    targets = _targets(out, entities, overwrite)
    timed = live_from(select_versions(store, since, until, channel))
    with tempfile.TemporaryDirectory(prefix="marc-history-") as scratch:
        con = duckdb.connect(str(Path(scratch) / "history.duckdb"))
        try:
            con.execute(f"SET temp_directory = '{_quoted(str(Path(scratch) / 'spill'))}'")
            try:
                con.execute("SET memory_limit = ?", [memory_limit])
            except duckdb.Error as exc:
                raise StoreError(f"memory limit {memory_limit!r}: {exc}") from None
            con.execute(SCHEMA_SQL)
            _load(con, store, timed, entities, verify)
            con.execute(LIVE_SQL)
            con.execute(HISTORY_SQL)
            files = {str(path): _write(con, path, chosen) for path, chosen in targets.items()}
        finally:
            con.close()
    return HistoryExport(versions=[m.version for m, _ in timed], files=files)


def _targets(out: Path, entities: list[str], overwrite: bool) -> dict[Path, list[str]]:
    """Output file -> the entities it holds; refuses to replace anything without ``overwrite``."""
    single = out.is_file() or (not out.exists() and out.suffix == ".parquet")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} exists; pass --overwrite to replace it")
    if single:
        return {out: entities}
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out} exists and is not a directory")
    return {out / f"{entity}.parquet": [entity] for entity in entities}


def _load(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    timed: list[tuple[Manifest, datetime]],
    entities: list[str],
    verify: bool,
) -> None:
    """Fill the scratch tables: versions, the files they list, and each file's rows once."""
    con.executemany(
        "INSERT INTO versions VALUES (?, ?, ?)",
        [(m.version, pos, at) for pos, (m, at) in enumerate(timed)],
    )
    first: dict[str, tuple[int, Manifest, DataFile]] = {}
    listing = []
    for manifest, _ in timed:
        for entry in manifest.files:
            if entry.entity not in entities:
                continue
            if entry.path not in first:
                first[entry.path] = (len(first), manifest, entry)
            listing.append((manifest.version, first[entry.path][0]))
    con.executemany("INSERT INTO listing VALUES (?, ?)", listing)
    con.executemany(
        "INSERT INTO files VALUES (?, ?, ?, ?)",
        [(i, e.entity, e.kind, e.sequence) for i, _, e in first.values()],
    )
    next_row = 0
    for file_id, manifest, entry in first.values():
        if entry.kind == "deletes":
            piece = read_data_file(store, manifest, entry, ["id"], verify)
            con.register("piece", piece)
            con.execute("INSERT INTO deletes SELECT ?, id FROM piece", [file_id])
        else:
            table = read_data_file(
                store, manifest, entry, ["id", "model_version", "embedding"], verify
            )
            # DuckDB has no half-precision type: vectors are widened to float32.
            widened = table["embedding"].cast(pa.list_(pa.float32(), manifest.k))
            widened = widened.cast(pa.list_(pa.float32()))
            piece = pa.table(
                {
                    "row_id": np.arange(next_row, next_row + table.num_rows, dtype=np.int64),
                    "id": table["id"],
                    "model_version": table["model_version"],
                    "embedding": widened,
                }
            )
            next_row += table.num_rows
            con.register("piece", piece)
            con.execute(
                "INSERT INTO rows SELECT ?, row_id, id, model_version, embedding FROM piece",
                [file_id],
            )
        con.unregister("piece")


def _write(con: duckdb.DuckDBPyConnection, path: Path, entities: list[str]) -> int:
    """Copy the intervals of ``entities`` to ``path`` (via a temporary name); their count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    names = ", ".join(f"'{_quoted(e)}'" for e in entities)
    try:
        con.execute(
            f"COPY (SELECT {EXPORT_COLUMNS} FROM history h JOIN rows r USING (row_id) "
            f"WHERE h.entity IN ({names}) ORDER BY h.entity, h.id, h.valid_from) "
            f"TO '{_quoted(str(staging))}' (FORMAT parquet, COMPRESSION zstd)"
        )
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    (count,) = con.execute(f"SELECT count(*) FROM history WHERE entity IN ({names})").fetchone()
    return count


def _quoted(text: str) -> str:
    return text.replace("'", "''")
