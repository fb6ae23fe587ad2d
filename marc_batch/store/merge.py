"""How the layers of an incremental snapshot collapse into one row per id.

Each data file has a sequence number (the version that added it). For every
id the row from the highest sequence wins; a deletes file of sequence s
removes an id from every row of sequence lower than s, so an id deleted and
later re-added is live again. A snapshot without parent files or deletes
needs none of this and is read as it is stored.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEQ = "_sequence"


def with_sequence(table: pa.Table, sequence: int) -> pa.Table:
    return table.append_column(SEQ, pa.repeat(pa.scalar(sequence, pa.int64()), table.num_rows))


def merge(rows: list[pa.Table], deletes: list[pa.Table]) -> pa.Table:
    """Newest row per id, minus deleted ids; inputs carry a ``_sequence`` column, output not."""
    table = pa.concat_tables(rows).combine_chunks()
    if len({t[SEQ][0].as_py() for t in rows if t.num_rows}) > 1:
        table = _newest_per_id(table)
    if deletes:
        table = _drop_deleted(table, pa.concat_tables(deletes))
    return table.drop_columns([SEQ])


def _newest_per_id(table: pa.Table) -> pa.Table:
    order = pc.sort_indices(table, sort_keys=[("id", "ascending"), (SEQ, "descending")])
    ids = table["id"].take(order).combine_chunks()
    if len(ids) < 2:
        return table.take(order)
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    keep = pa.concat_arrays([pa.array([True]), first])
    return table.take(order.filter(keep))


def _drop_deleted(table: pa.Table, deletes: pa.Table) -> pa.Table:
    newest = deletes.group_by("id").aggregate([(SEQ, "max")]).rename_columns(["id", "_deleted"])
    keys = table.select(["id", SEQ]).append_column("_row", pa.array(np.arange(table.num_rows)))
    joined = keys.join(newest, "id", join_type="left outer")
    deleted = joined["_deleted"]
    live = pc.or_(pc.is_null(deleted), pc.greater(joined[SEQ], deleted.fill_null(0)))
    return table.take(np.sort(joined.filter(live)["_row"].to_numpy()))
