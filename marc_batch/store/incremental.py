"""Planning a backfill: which rows need encoding, which ids disappeared.

A backfill re-encodes only rows whose id is new or whose ``text_hash``
changed, so its GPU time and the bytes it writes are proportional to the
change. The comparison is one DuckDB join of the catalogue's (id, text_hash)
against the same two narrow columns of the parent snapshot.
"""

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import merged_table
from marc_batch.store.store import Store
from marc_batch.tracing import traced


@dataclass
class ChangePlan:
    """What a backfill does to one entity."""

    encode: pa.Table  # the catalogue rows (id, text, text_hash) that are new or changed
    removed: pa.Array  # ids live in the parent that the catalogue no longer has
    added: int
    changed: int
    unchanged: int


@traced("plan_change")
def plan_change(
    store: Store, parent: Manifest, entity: str, texts: pa.Table, complete: bool
) -> ChangePlan:
    """Compare ``texts`` (id, text, text_hash) with ``parent``'s rows of ``entity``.

    With ``complete``, ``texts`` is the whole catalogue and ids it lacks are
    removed; otherwise it is a delta and nothing is removed.
    """
    con = duckdb.connect()
    # A BAHE model reads users as a profile and behaviours: those travel with the rows.
    bahe = [name for name in ("profile", "behaviours") if name in texts.column_names]
    con.register("catalogue", texts.select(["id", "text", "text_hash", *bahe]))
    con.register("parent", merged_table(store, parent, entity, ("id", "text_hash")))
    encode = con.sql(
        """
        SELECT c.* EXCLUDE (id, text, text_hash), c.id, c.text, c.text_hash,
            p.id IS NULL AS is_new
        FROM catalogue c LEFT JOIN parent p ON p.id = c.id
        WHERE p.id IS NULL OR p.text_hash IS DISTINCT FROM c.text_hash
        ORDER BY c.id
        """
    ).to_arrow_table()
    removed = (
        con.sql(
            "SELECT p.id FROM parent p ANTI JOIN catalogue c ON c.id = p.id ORDER BY p.id"
        ).to_arrow_table()["id"]
        if complete
        else pa.chunked_array([], pa.string())
    )
    con.close()
    added = sum(encode["is_new"].to_pylist())
    return ChangePlan(
        encode=encode.drop_columns(["is_new"]),
        removed=removed.combine_chunks().cast(pa.string()),
        added=added,
        changed=encode.num_rows - added,
        unchanged=texts.num_rows - encode.num_rows,
    )
