"""The one way FAISS indexes are written and read: plain FAISS files, streamed.

Indexes are written through FAISS's own callback writer into any binary
stream (the store hashes and counts the bytes on their way out, so no
serialised copy is ever held in memory) and read back with FAISS's reader
from bytes or a file. A stored index is an ordinary FAISS file, so any
process can also open it with plain ``faiss.read_index``, memory-mapped.
"""

from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np


def write_index(index: faiss.Index, stream: BinaryIO) -> None:
    """Serialise ``index`` into ``stream`` piece by piece."""
    faiss.write_index(index, faiss.PyCallbackIOWriter(stream.write))


def index_from_bytes(data: bytes) -> faiss.Index:
    """An index from the bytes of a stored index file (already checked against its sha256)."""
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


def read_index(path: Path, mmap: bool = True) -> faiss.Index:
    """Open an index file; memory-mapped, so many readers share one copy in the page cache."""
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(str(path), flags)
