"""Labels and the train/validation/test split of interactions.

The default holds out each user's most recent ratings: per user, sorted by
time (item id breaks ties), the last ``floor(n * test_fraction)`` go to test
and the ``floor(n * valid_fraction)`` before them to validation, so every
user keeps at least one training rating. The global temporal split cuts the
whole log at two points in time instead; most of its test users then have
no training history, which makes it a cold-start benchmark.
"""

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

from marc_batch.config import SplitConfig
from marc_batch.data.validate import canonical_types
from marc_batch.errors import ConfigError

SPLITS = ("train", "valid", "test")


def _assignment_sql(split: SplitConfig) -> str:
    """SQL for (position from the end, group size) -> split name."""
    if split.kind == "per-user-temporal":
        window = "PARTITION BY user_id ORDER BY timestamp, item_id"
    else:
        window = "ORDER BY timestamp, user_id, item_id"
    partition = "PARTITION BY user_id" if split.kind == "per-user-temporal" else ""
    return f"""
        WITH ranked AS (
            SELECT *, count(*) OVER ({partition}) - row_number() OVER ({window}) AS from_end,
                   count(*) OVER ({partition}) AS n
            FROM interactions)
        SELECT * EXCLUDE (from_end, n), CASE
            WHEN from_end < floor(n * {split.test_fraction}) THEN 'test'
            WHEN from_end < floor(n * {split.test_fraction}) + floor(n * {split.valid_fraction})
                THEN 'valid'
            ELSE 'train' END AS split
        FROM ranked
    """


def _labelled_sql(split: SplitConfig, positive_rating: float) -> str:
    return f"""
        SELECT *, CAST(rating >= {float(positive_rating)} AS TINYINT) AS label
        FROM ({_assignment_sql(split)})
    """


def split_interactions(
    interactions: pa.Table, split: SplitConfig, positive_rating: float
) -> pa.Table:
    """Add ``label`` (1 if rating >= ``positive_rating``) and ``split`` to accepted interactions."""
    con = duckdb.connect()
    con.register("interactions", interactions)
    table = con.sql(
        f"{_labelled_sql(split, positive_rating)} ORDER BY user_id, timestamp, item_id"
    ).to_arrow_table()
    con.close()
    return canonical_types(table)


def split_to_shards(
    accepted: Path, split: SplitConfig, positive_rating: float, out: Path, memory_limit: str
) -> tuple[dict[str, int], int]:
    """Split interactions stored as ``accepted/shard=<n>/part=<p>/*.parquet`` into ``out`` alike.

    The same SQL as :func:`split_interactions`, run by DuckDB over the files
    within ``memory_limit`` (past it, DuckDB spills to disk rather than hold
    the log), so a per-user split and a global temporal one come out exactly
    as in memory. Returns the rows per split and the number of positive
    labels; with no interactions ``out`` is not created.
    """
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {_quoted(str(out.parent / 'duckdb-spill'))}")
    try:
        con.execute("SET memory_limit = ?", [memory_limit])
    except duckdb.Error as exc:
        raise ConfigError(f"sources.memory_limit {memory_limit!r}: {exc}") from None
    con.execute(
        "CREATE VIEW interactions AS SELECT * FROM read_parquet("
        f"{_quoted(str(accepted / '*' / '*' / '*.parquet'))}, hive_partitioning = true)"
    )
    labelled = _labelled_sql(split, positive_rating)
    copy = f"COPY ({labelled}) TO {_quoted(str(out))} (FORMAT parquet, PARTITION_BY (shard, part))"
    (written,) = con.execute(copy).fetchone()
    if not written:  # DuckDB leaves an empty directory; no directory is what means "no rows"
        con.close()
        shutil.rmtree(out, ignore_errors=True)
        return {}, 0
    counts = con.execute(
        "SELECT split, count(*), sum(label) FROM read_parquet(?) GROUP BY split",
        [str(out / "*" / "*" / "*.parquet")],
    ).fetchall()
    con.close()
    return {name: rows for name, rows, _ in counts}, sum(int(p or 0) for *_, p in counts)


def _quoted(path: str) -> str:
    """A path as a SQL string literal (paths here are the run's own working files)."""
    return "'" + path.replace("'", "''") + "'"
