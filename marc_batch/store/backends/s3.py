"""A store in an S3-compatible bucket, through fsspec's ``s3fs``.

S3 has no rename, so nothing is staged: data files stream up as multipart
uploads that become visible only when completed; manifests are created with
``If-None-Match: *`` (the server admits one writer per key); channel
pointers are replaced with ``If-Match: <etag>`` (the server refuses the
write if another publisher replaced the object since it was read). Both
are answered with HTTP 412 by a losing writer. Listings are strongly
consistent on AWS S3 since 2020; caches in s3fs are switched off so that
every read sees the latest committed state.

Transient failures are retried by the client (botocore's standard mode: 500,
502, 503, 504, throttling such as 503 SlowDown, timeouts and dropped
connections, with exponential back-off and jitter), ``s3.retries`` attempts
per request, each bounded by ``s3.connect_timeout`` and ``s3.read_timeout``.
A retried conditional write may find that its own first attempt landed (the
response was lost); the commit protocol recognises its own manifest and
pointer, so such a retry is not mistaken for a lost race. A failure that
outlasts the retries is a :class:`StoreUnavailable` naming the key and the
server's reason on one line; what was committed before it stays published.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

import s3fs

from marc_batch.config.store import S3Config
from marc_batch.errors import StoreUnavailable
from marc_batch.store.backends.base import Backend, FileInfo, PreconditionFailed
from marc_batch.store.paths import check_relative

_CONFLICT_STATUS = (409, 412)  # 409: a concurrent conditional write is still in flight


def _lost_condition(exc: OSError) -> bool:
    if isinstance(exc, FileExistsError):
        return True
    response = getattr(exc.__cause__, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode") in _CONFLICT_STATUS


@contextmanager
def _reachable(uri: str) -> Iterator[None]:
    """Turn the client's last error into a one-line StoreUnavailable (a missing key stays as is)."""
    try:
        yield
    except (FileNotFoundError, PreconditionFailed):
        raise
    except OSError as exc:
        reason = " ".join(str(exc).split())
        raise StoreUnavailable(f"{uri}: {reason}; the object store kept failing") from exc


class S3Backend(Backend):
    def __init__(self, uri: str, config: S3Config) -> None:
        self.uri = uri.rstrip("/")
        self.base = self.uri.removeprefix("s3://")
        client_kwargs = {"region_name": config.region} if config.region else {}
        self.fs = s3fs.S3FileSystem(
            endpoint_url=config.endpoint_url,
            client_kwargs=client_kwargs,
            config_kwargs={
                "retries": {"max_attempts": config.retries, "mode": "standard"},
                "connect_timeout": config.connect_timeout,
                "read_timeout": config.read_timeout,
            },
            use_listings_cache=False,
            skip_instance_cache=True,
        )
        # s3fs re-issues a call once more when the client gave up or a body was cut short.
        self.fs.retries = 2

    def _key(self, path: str) -> str:
        return f"{self.base}/{check_relative(path)}"

    def _on(self, path: str) -> AbstractContextManager[None]:
        return _reachable(f"{self.uri}/{path}")

    @contextmanager
    def writing(self, path: str) -> Iterator[BinaryIO]:
        with self._on(path):
            handle = self.fs.open(self._key(path), "wb")
            try:
                yield handle
            except BaseException:
                handle.discard()
                raise
            handle.close()

    def open_read(self, path: str) -> BinaryIO:
        with self._on(path):
            return self.fs.open(self._key(path), "rb")

    def read_bytes(self, path: str) -> bytes:
        with self._on(path):
            return self.fs.cat_file(self._key(path))

    def download(self, path: str, target: Path) -> None:
        with self._on(path):
            self.fs.get_file(self._key(path), str(target))
            expected = self.fs.size(self._key(path))
        if target.stat().st_size != expected:
            raise StoreUnavailable(f"{self.uri}/{path}: the download was cut short")

    def put_if_absent(self, path: str, data: bytes) -> None:
        with self._on(path):
            try:
                self.fs.pipe_file(self._key(path), data, mode="create")
            except OSError as exc:
                if _lost_condition(exc):
                    raise PreconditionFailed(path) from None
                raise

    def read_tagged(self, path: str) -> tuple[bytes, str] | None:
        # The tag is read before the content: a replacement in between makes the
        # later If-Match fail, never succeed on stale content.
        key = self._key(path)
        try:
            with self._on(path):
                etag = self.fs.info(key)["ETag"]
                return self.fs.cat_file(key), etag
        except FileNotFoundError:
            return None

    def swap(self, path: str, data: bytes, expected: str | None) -> None:
        condition = {"mode": "create"} if expected is None else {"IfMatch": expected}
        with self._on(path):
            try:
                self.fs.pipe_file(self._key(path), data, **condition)
            except OSError as exc:
                if _lost_condition(exc):
                    raise PreconditionFailed(path) from None
                raise

    def list(self, prefix: str) -> Iterator[FileInfo]:
        with self._on(prefix):
            found = self.fs.find(self._key(prefix), detail=True)
        for key, info in found.items():
            yield FileInfo(
                key.removeprefix(self.base + "/"), info["size"], info["LastModified"].timestamp()
            )

    def delete(self, path: str) -> None:
        try:
            with self._on(path):
                self.fs.rm_file(self._key(path))
        except FileNotFoundError:
            return
