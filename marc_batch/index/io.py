"""Index files: plain FAISS files that any process can memory-map read-only."""

from pathlib import Path

import faiss


def write_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read_index(path: Path, mmap: bool = True) -> faiss.Index:
    """Open an index; memory-mapped, so many readers share one copy in the page cache."""
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(str(path), flags)
