"""The few primitives the commit protocol needs from storage, and nothing more.

Data files are written once under fresh names (:meth:`Backend.writing`), so
they need no coordination. Coordination happens on two kinds of small file:
manifests, published with :meth:`Backend.put_if_absent` (one winner per
name), and channel pointers, updated with :meth:`Backend.swap` (a
compare-and-swap on the tag returned by :meth:`Backend.read_tagged`). A
backend that offers these atomically gives the whole store its guarantees.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class PreconditionFailed(Exception):
    """A conditional write lost: the file exists, or changed since it was read."""


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime: float


class Backend(ABC):
    """A store root; every path argument is relative to it and checked to stay inside."""

    uri: str

    @abstractmethod
    def writing(self, path: str) -> AbstractContextManager[BinaryIO]:
        """A stream for a new file; visible and durable only if the block exits cleanly."""

    @abstractmethod
    def open_read(self, path: str) -> BinaryIO:
        """A seekable stream, for Parquet readers that fetch only the pages they need."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """The whole file; raises FileNotFoundError."""

    @abstractmethod
    def download(self, path: str, target: Path) -> None:
        """Copy the file, streamed, into the local file ``target``; raises FileNotFoundError."""

    @abstractmethod
    def put_if_absent(self, path: str, data: bytes) -> None:
        """Publish ``data`` under ``path`` unless it exists (then PreconditionFailed)."""

    @abstractmethod
    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        """The content and a tag that changes whenever the content is replaced."""

    @abstractmethod
    def swap(self, path: str, data: bytes, expected: str | None) -> None:
        """Replace ``path`` if its tag is still ``expected`` (None: must not exist)."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[FileInfo]:
        """Every file under ``prefix`` (recursive), in no particular order."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove a file; a missing file is not an error (gc may race with itself)."""
