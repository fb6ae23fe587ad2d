"""Inverted lists on local disk: how an index larger than memory is merged and changed.

An IVF index's memory is its inverted lists (every vector's code and id);
the coarse quantizer is small. So a large index is never assembled in
memory: each part of it is an index file on local disk, opened
memory-mapped, and FAISS's ``OnDiskInvertedLists.merge_from_multiple``
concatenates their lists, list by list, into one file of on-disk lists
(the method of ``faiss.contrib.ondisk.merge_ondisk``). The recall proof
searches those lists in place, and :func:`marc_batch.index.io.write_index`
streams them out as a standard FAISS file. Anonymous memory holds the
quantizer; the lists' pages are file-backed, and count in RSS only until
the kernel writes them back and reclaims them.

A change (a backfill's removals and additions) is made the same way: a
range of lists at a time is copied into memory (``copy_subset_to``),
changed with FAISS's ``remove_ids`` and the new vectors' lists, and saved
as a part; the parts are merged. On-disk lists are never changed in place:
``OnDiskInvertedLists`` can move a list that grows or shrinks onto a slot
overlapping the one it leaves (a test here caught it corrupting lists).

``merge_ondisk`` itself is not called because it disowns the parts' lists,
which are then never freed: each part's mapping, and its disk space, would
outlive the merge until the process exits. FAISS also prints a line to the
C stdout each time it grows a lists file, which would corrupt the output of
a command that prints JSON; merges run under :func:`printing_to_stderr`.
"""

import ctypes
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from marc_batch.index.io import lists_swapped

CHUNK_BYTES = 64 * 2**20  # lists held in memory at once while an index is changed


@contextmanager
def printing_to_stderr() -> Iterator[None]:
    """Send what native code prints to stdout to stderr instead, for the duration."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        libc.fflush(None)  # what printf buffered goes out before stdout is restored
        os.dup2(saved, 1)
        os.close(saved)


def empty_copy(index: faiss.IndexIVF) -> faiss.IndexIVF:
    """A copy of ``index`` with its trained quantizer and no vectors; its lists are not read."""
    empty = faiss.ArrayInvertedLists(index.nlist, index.code_size)
    with lists_swapped(index, empty):
        copy = faiss.clone_index(index)
    copy.ntotal = 0
    return copy


def merge_on_disk(trained: faiss.Index, parts: list[Path], lists: Path) -> faiss.Index:
    """A copy of the empty ``trained`` index holding every ``parts`` file's vectors, in order.

    Each part is an index made from a copy of ``trained``; its ids are kept
    as they are. The merged lists are written to ``lists``.
    """
    opened = [faiss.read_index(str(part), faiss.IO_FLAG_MMAP) for part in parts]
    index = faiss.clone_index(trained)
    ivf = faiss.extract_index_ivf(index)
    merged = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(lists))
    pointers = faiss.InvertedListsPtrVector()
    for part in opened:
        pointers.push_back(faiss.extract_index_ivf(part).invlists)
    with printing_to_stderr():
        ntotal = merged.merge_from_multiple(pointers.data(), pointers.size(), False)
    ivf.replace_invlists(merged, True)  # frees the copy's empty lists
    merged.this.disown()  # the index owns them now
    index.ntotal = ivf.ntotal = ntotal
    return index


def open_stored(path: Path) -> faiss.Index:
    """A stored index to change: IVF lists stay in the file, mapped read-only.

    Any other index (a Flat one, at most ``flat_max_rows`` vectors) is read
    into memory, where :func:`changed` changes it in place.
    """
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    if faiss.try_extract_index_ivf(index) is None:
        return faiss.read_index(str(path))
    return index


def changed(
    index: faiss.Index,
    removed: np.ndarray,
    added: Iterable[tuple[np.ndarray, np.ndarray]],
    directory: Path,
) -> faiss.Index:
    """``index`` without the FAISS ids ``removed`` and with the ``added`` (ids, vectors).

    An index in memory is changed in place; an IVF index comes back as a new
    index with its lists in ``directory``, the same vectors in the same order
    as FAISS's ``remove_ids`` then ``add_with_ids`` would leave in memory.
    """
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        index.remove_ids(removed)
        for labels, vectors in added:
            index.add_with_ids(vectors, labels)
        return index
    new = empty_copy(ivf)
    for labels, vectors in added:
        new.add_with_ids(vectors, labels)
    entry = ivf.code_size + np.dtype(np.int64).itemsize
    step = max(1, ivf.nlist * CHUNK_BYTES // max(1, ivf.ntotal * entry))
    parts = []
    for first in range(0, ivf.nlist, step):
        last = min(first + step, ivf.nlist)
        chunk = empty_copy(ivf)
        ivf.copy_subset_to(chunk, faiss.InvertedLists.SUBSET_TYPE_INVLIST, first, last)
        chunk.remove_ids(removed)
        new.copy_subset_to(chunk, faiss.InvertedLists.SUBSET_TYPE_INVLIST, first, last)
        parts.append(directory / f"changed-{first}.faiss")
        faiss.write_index(chunk, str(parts[-1]))
    result = merge_on_disk(empty_copy(ivf), parts, directory / "changed.ivfdata")
    for part in parts:
        part.unlink()
    return result
