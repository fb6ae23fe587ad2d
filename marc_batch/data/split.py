"""Labels and the train/validation/test split of interactions.

The default holds out each user's most recent ratings: per user, sorted by
time (item id breaks ties), the last ``floor(n * test_fraction)`` go to test
and the ``floor(n * valid_fraction)`` before them to validation, so every
user keeps at least one training rating. The global temporal split cuts the
whole log at two points in time instead; most of its test users then have
no training history, which makes it a cold-start benchmark.
"""

import duckdb
import pyarrow as pa

from marc_batch.config import SplitConfig
from marc_batch.data.validate import canonical_types

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


def split_interactions(
    interactions: pa.Table, split: SplitConfig, positive_rating: float
) -> pa.Table:
    """Add ``label`` (1 if rating >= ``positive_rating``) and ``split`` to accepted interactions."""
    con = duckdb.connect()
    con.register("interactions", interactions)
    table = con.sql(
        f"""
        SELECT *, CAST(rating >= {float(positive_rating)} AS TINYINT) AS label
        FROM ({_assignment_sql(split)})
        ORDER BY user_id, timestamp, item_id
        """
    ).to_arrow_table()
    con.close()
    return canonical_types(table)
