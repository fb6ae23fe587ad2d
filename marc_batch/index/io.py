"""The one way FAISS indexes are written and read: plain FAISS files, streamed.

Indexes are written into any binary stream (the store hashes and counts the
bytes on their way out, so no serialised copy is ever held in memory) and
read back with FAISS's reader from bytes or a file. A stored index is an
ordinary FAISS file, so any process can also open it with plain
``faiss.read_index``, memory-mapped.

An index whose inverted lists live on local disk (:mod:`marc_batch.index.ondisk`)
is written in the same standard layout as an in-memory one, not as FAISS's
on-disk format (which names a second file by its path on the machine that
wrote it): FAISS writes the index's head with empty lists, and the lists
follow one at a time, read from disk, in FAISS's own ``ilar`` layout. A test
holds the result byte for byte equal to ``faiss.write_index`` of the same
index in memory.
"""

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np


def write_index(index: faiss.Index, stream: BinaryIO) -> None:
    """Serialise ``index`` into ``stream`` piece by piece."""
    ivf = faiss.try_extract_index_ivf(index)
    lists = None if ivf is None else faiss.downcast_InvertedLists(ivf.invlists)
    if lists is None or isinstance(lists, faiss.ArrayInvertedLists):
        faiss.write_index(index, faiss.PyCallbackIOWriter(stream.write))
    else:
        _write_list_by_list(index, ivf, stream)


@contextmanager
def lists_swapped(ivf: faiss.IndexIVF, lists: faiss.InvertedLists) -> Iterator[None]:
    """``ivf`` holding ``lists`` for the duration; its own lists are kept, not freed."""
    own, owned = ivf.invlists, ivf.own_invlists
    ivf.own_invlists = False  # replace_invlists would otherwise delete its own lists
    ivf.replace_invlists(lists, False)
    try:
        yield
    finally:
        ivf.replace_invlists(own, owned)


def _head(index: faiss.Index, ivf: faiss.IndexIVF) -> bytes:
    """``index`` serialised up to its inverted lists (which FAISS writes last)."""
    empty = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    with lists_swapped(ivf, empty):
        whole = faiss.serialize_index(index).tobytes()
    tail = faiss.VectorIOWriter()
    faiss.write_InvertedLists(empty, tail)
    empty_lists = faiss.vector_to_array(tail.data).tobytes()
    if not whole.endswith(empty_lists):
        raise TypeError(f"{type(index).__name__}: FAISS writes its inverted lists elsewhere")
    return whole[: -len(empty_lists)]


def _write_list_by_list(index: faiss.Index, ivf: faiss.IndexIVF, stream: BinaryIO) -> None:
    """FAISS's ``ilar`` layout: list sizes (dense or sparse), then each list's codes and ids."""
    lists, nlist, code_size = ivf.invlists, ivf.nlist, ivf.code_size
    stream.write(_head(index, ivf))
    sizes = np.array([lists.list_size(i) for i in range(nlist)], dtype=np.uint64)
    filled = np.flatnonzero(sizes)
    stream.write(b"ilar" + struct.pack("<QQ", nlist, code_size))
    if len(filled) > nlist // 2:
        stream.write(b"full" + struct.pack("<Q", nlist) + sizes.tobytes())
    else:
        pairs = np.column_stack([filled.astype(np.uint64), sizes[filled]]).ravel()
        stream.write(b"sprs" + struct.pack("<Q", len(pairs)) + pairs.tobytes())
    for i in filled:
        n = int(sizes[i])
        codes = lists.get_codes(int(i))
        stream.write(faiss.rev_swig_ptr(codes, n * code_size))
        lists.release_codes(int(i), codes)
        ids = lists.get_ids(int(i))
        stream.write(faiss.rev_swig_ptr(ids, n).view(np.uint8))
        lists.release_ids(int(i), ids)


def index_from_bytes(data: bytes) -> faiss.Index:
    """An index from the bytes of a stored index file (already checked against its sha256)."""
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


def read_index(path: Path, mmap: bool = True) -> faiss.Index:
    """Open an index file; memory-mapped, so many readers share one copy in the page cache."""
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(str(path), flags)
