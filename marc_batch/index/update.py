"""Apply a backfill's change to its parent's index in place.

A backfill touches a few rows of a large catalogue. Building the index anew
assigns every live vector to a list again (minutes at a million rows), while
the parent's lists stay right for every untouched row. So the touched ids are
removed from the parent's index and the re-encoded rows added to its already
trained lists: only the inverted lists those ids fall in change, and an IVF
index's lists are copied on disk, never read into memory whole
(:mod:`marc_batch.index.ondisk`). Recall is
then proved again against exact search, on queries drawn from the new rows
(near the change) as well as from every live row (globally), the exact
neighbours computed one piece at a time: the published index is held to the
same gate whichever way it was made.

In place needs the untouched rows to keep their FAISS ids, that is the same
id scheme before and after (see :mod:`marc_batch.index.ids`), and lists that
still reach the recall target; otherwise :func:`update_index` answers None
and the caller builds a fresh index, retraining k-means.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa

from marc_batch.config import IndexConfig
from marc_batch.errors import IndexBuildError, IndexRecallError
from marc_batch.index.build import BuiltIndex, report_for
from marc_batch.index.ids import removable_ids
from marc_batch.index.ondisk import changed
from marc_batch.index.vectors import Vectors, survey


@dataclass
class ParentIndex:
    """The parent snapshot's index, its id scheme, and the ids changed since the parent."""

    index: faiss.Index
    native: bool
    touched: pa.Array  # catalogue ids removed or re-encoded since the parent


def update_index(
    parent: ParentIndex, live: Vectors, added: Vectors, config: IndexConfig, directory: Path
) -> BuiltIndex | None:
    """The parent's index changed to hold exactly the ``live`` vectors.

    ``added`` are the re-encoded rows (a part of ``live``); every other live
    row must already be in the parent's index, which is checked by count.
    A Flat ``parent.index`` is changed in place; an IVF one is left as it
    is and the changed index has its lists in ``directory``
    (:func:`marc_batch.index.ondisk.changed`).
    """
    started = time.perf_counter()
    near = config.tuning_queries // 2
    everywhere = survey(live, config.tuning_queries - near, config.seed)
    if everywhere.native != parent.native:
        return None
    removed = removable_ids(parent.touched, parent.native)
    index = changed(parent.index, removed, added.labelled(parent.native), directory)
    if index.ntotal != live.rows:
        raise IndexBuildError(
            f"the parent's index holds {index.ntotal - added.rows} untouched vectors, its "
            f"snapshot {live.rows - added.rows}; rebuild the index with a full refresh"
        )
    changed_rows = survey(added, near, config.seed).sample
    queries = np.concatenate([changed_rows, everywhere.sample])
    try:
        report = report_for(index, live, parent.native, config, started, queries, updated=True)
    except IndexRecallError:
        return None
    return BuiltIndex(index, report)
