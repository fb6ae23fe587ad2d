"""What changed between two versions: ids added, removed, and re-embedded."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.entities import ENTITIES
from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import embedding_matrix, merged_table
from marc_batch.store.store import Store

COLUMNS = ("id", "text_hash", "embedding")


def diff(store: Store, old: Manifest, new: Manifest) -> dict[str, dict[str, list[str]]]:
    """Per entity, sorted ids ``added``, ``removed`` and ``changed`` (text or embedding)."""
    result = {}
    for entity in ENTITIES:
        before = merged_table(store, old, entity, COLUMNS)
        after = merged_table(store, new, entity, COLUMNS)
        kept = pc.is_in(after["id"], value_set=before["id"])
        common = after.filter(kept).combine_chunks()
        previous = before.take(pc.index_in(common["id"], value_set=before["id"])).combine_chunks()
        changed = pc.not_equal(common["text_hash"], previous["text_hash"]).to_numpy(
            zero_copy_only=False
        )
        if old.k != new.k:
            changed[:] = True
        elif common.num_rows:
            moved = embedding_matrix(common, new.k).astype(np.float32) != embedding_matrix(
                previous, old.k
            ).astype(np.float32)
            changed |= moved.any(axis=1)
        result[entity] = {
            "added": _sorted(after["id"].filter(pc.invert(kept))),
            "removed": _sorted(
                before["id"].filter(pc.invert(pc.is_in(before["id"], value_set=after["id"])))
            ),
            "changed": _sorted(common["id"].filter(pa.array(changed))),
        }
    return result


def _sorted(ids: pa.ChunkedArray | pa.Array) -> list[str]:
    return sorted(ids.to_pylist())
