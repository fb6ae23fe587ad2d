"""Apply a backfill's change to its parent's index in place.

A backfill touches a few rows of a large catalogue. Building the index anew
assigns every live vector to a list again (minutes at a million rows), while
the parent's lists stay right for every untouched row. So the touched ids are
removed from the parent's index, the re-encoded rows are added to its already
trained lists, and recall is proved again against exact search over every
live vector, as for a fresh build: the published index is held to the same
gate whichever way it was made.

In place needs the untouched rows to keep their FAISS ids, that is the same
id scheme before and after (see :mod:`marc_batch.index.ids`), and lists that
still reach the recall target; otherwise :func:`update_index` answers None
and the caller builds a fresh index, retraining k-means.
"""

import time
from dataclasses import dataclass

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.config import IndexConfig
from marc_batch.errors import IndexBuildError, IndexRecallError
from marc_batch.index.build import BuiltIndex, normalised, report_for
from marc_batch.index.ids import IdMap


@dataclass
class ParentIndex:
    """The parent snapshot's index with the ids it was built over and what changed since."""

    index: faiss.Index
    ids: pa.ChunkedArray
    touched: pa.Array  # catalogue ids removed or re-encoded since the parent


def update_index(
    parent: ParentIndex, vectors: np.ndarray, ids: pa.Array | pa.ChunkedArray, config: IndexConfig
) -> BuiltIndex | None:
    """The parent's index changed to hold exactly ``vectors`` labelled by ``ids``.

    ``parent.index`` is changed, not copied. Rows of ``ids`` listed in
    ``parent.touched`` are the ones added; every other row must already be in
    the parent's index, which is checked by count.
    """
    started = time.perf_counter()
    before, after = IdMap.for_ids(parent.ids), IdMap.for_ids(ids)
    if before.native != after.native:
        return None
    index = parent.index
    removed = before.to_faiss(parent.touched.to_pylist())
    index.remove_ids(removed[removed >= 0])
    added = np.flatnonzero(pc.is_in(ids, value_set=parent.touched).to_numpy(zero_copy_only=False))
    if index.ntotal != len(ids) - len(added):
        raise IndexBuildError(
            f"the parent's index holds {index.ntotal} untouched vectors, its snapshot "
            f"{len(ids) - len(added)}; rebuild the index with a full refresh"
        )
    vectors = normalised(vectors)
    index.add_with_ids(vectors[added], after.faiss_ids[added])
    rng = np.random.default_rng(config.seed)
    queries = np.sort(rng.permutation(len(ids))[: config.tuning_queries])
    try:
        report = report_for(index, vectors, after, config, started, queries, updated=True)
    except IndexRecallError:
        return None
    return BuiltIndex(index, after, report)
