"""A store in a local (or NFS-free network) directory, made crash-safe with POSIX primitives.

A new file is written under a unique staging name, fsynced, then published:
with ``link`` for put-if-absent (it fails if the name exists, so exactly one
publisher wins) and with ``rename`` for a pointer swap (atomic replacement,
serialised by an ``flock`` that dies with its process). The directory is
fsynced after each publication, so a power loss cannot undo a commit that
returned.

A full disk (``ENOSPC``, or ``EDQUOT`` past a quota) is a :class:`StoreError`
naming the file, and the partial file is removed at once to give the space
back: nothing half-written is ever published, and a re-run after space is
freed completes.
"""

import errno
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from marc_batch.errors import StoreError
from marc_batch.store.backends.base import Backend, FileInfo, PreconditionFailed
from marc_batch.store.failpoints import failpoint
from marc_batch.store.paths import check_relative, staging_path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _full(target: Path) -> StoreError:
    return StoreError(f"{target}: no space left on device; nothing was published")


class _Guarded:
    """A file whose writes turn a full disk into a StoreError, wherever they are made.

    Data files are streamed by a writer that holds the file open across calls,
    so the error must be translated at the write, not only when the file closes.
    """

    def __init__(self, handle: BinaryIO, target: Path) -> None:
        self._handle = handle
        self._target = target

    def write(self, data: bytes) -> int:
        try:
            return self._handle.write(data)
        except OSError as exc:
            if _disk_full(exc):
                raise _full(self._target) from exc
            raise

    def __getattr__(self, name: str) -> object:
        return getattr(self._handle, name)


class LocalBackend(Backend):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def _abs(self, path: str) -> Path:
        return self.root / check_relative(path)

    def _create(self, target: Path) -> BinaryIO:
        """A new file open for writing; fails if the name exists."""
        return target.open("xb")

    @contextmanager
    def _new_file(self, target: Path) -> Iterator[BinaryIO]:
        """Write, flush and fsync a new file; on any failure remove what was written."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._create(target) as handle:
                yield _Guarded(handle, target)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException as exc:
            if not isinstance(exc, FileExistsError):
                target.unlink(missing_ok=True)
            if _disk_full(exc):
                raise _full(target) from exc
            raise

    @contextmanager
    def writing(self, path: str) -> Iterator[BinaryIO]:
        target = self._abs(path)
        with self._new_file(target) as handle:
            yield handle
        _fsync_dir(target.parent)

    def open_read(self, path: str) -> BinaryIO:
        return pa.memory_map(str(self._abs(path)), "r")

    def read_bytes(self, path: str) -> bytes:
        return self._abs(path).read_bytes()

    def download(self, path: str, target: Path) -> None:
        shutil.copyfile(self._abs(path), target)

    def _stage(self, path: str, data: bytes, step: str) -> Path:
        staged = self._abs(staging_path(path))
        with self._new_file(staged) as handle:
            handle.write(data)
        failpoint(step)
        return staged

    def put_if_absent(self, path: str, data: bytes) -> None:
        target = self._abs(path)
        staged = self._stage(path, data, "manifest.staged")
        try:
            os.link(staged, target)
        except FileExistsError:
            raise PreconditionFailed(path) from None
        finally:
            staged.unlink()
        _fsync_dir(target.parent)

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        try:
            data = self._abs(path).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def swap(self, path: str, data: bytes, expected: str | None) -> None:
        target = self._abs(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_name(target.name + ".lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_tagged(path)
            if (current[1] if current else None) != expected:
                raise PreconditionFailed(path)
            staged = self._stage(path, data, "channel.staged")
            os.replace(staged, target)
            _fsync_dir(target.parent)

    def list(self, prefix: str) -> Iterator[FileInfo]:
        base = self._abs(prefix)
        for directory, _, names in os.walk(base):
            for name in names:
                full = Path(directory) / name
                try:
                    stat = full.lstat()
                except FileNotFoundError:  # a staged file published or removed meanwhile
                    continue
                relative = full.relative_to(self.root).as_posix()
                yield FileInfo(relative, stat.st_size, stat.st_mtime)

    def delete(self, path: str) -> None:
        self._abs(path).unlink(missing_ok=True)
