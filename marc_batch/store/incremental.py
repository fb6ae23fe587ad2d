"""Planning a backfill: which rows need encoding, which ids disappeared.

A backfill re-encodes only rows whose id is new or whose ``text_hash``
changed, so its GPU time and the bytes it writes are proportional to the
change. Deciding that reads just two narrow columns of the parent.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import merged_table
from marc_batch.store.store import Store


def rows_to_encode(
    store: Store, parent: Manifest, entity: str, ids: object, text_hash: object
) -> np.ndarray:
    """Boolean mask over the given rows: True where the id is new or its text changed."""
    known = merged_table(store, parent, entity, ("id", "text_hash"))
    keys = pa.array(ids, pa.string())
    hashes = pa.array(text_hash, pa.string())
    position = pc.index_in(keys, value_set=known["id"])
    previous = known["text_hash"].take(position)
    unchanged = pc.fill_null(pc.equal(previous, hashes), False)
    return pc.invert(unchanged).to_numpy(zero_copy_only=False)


def removed_ids(store: Store, parent: Manifest, entity: str, current_ids: object) -> pa.Array:
    """Ids live in ``parent`` that the current catalogue no longer has (to delete)."""
    known = merged_table(store, parent, entity)["id"]
    gone = pc.invert(pc.is_in(known, value_set=pa.array(current_ids, pa.string())))
    return known.filter(gone).combine_chunks()
