"""Where the store's bytes live: a local directory or an S3-compatible bucket."""

from marc_batch.config.store import StoreConfig
from marc_batch.store.backends.base import Backend, FileInfo, PreconditionFailed


def open_backend(config: StoreConfig) -> Backend:
    """The backend for ``config.root``: ``s3://bucket/prefix`` or a local directory."""
    if config.root.startswith("s3://"):
        from marc_batch.store.backends.s3 import S3Backend

        return S3Backend(config.root, config.s3)
    from marc_batch.store.backends.local import LocalBackend

    return LocalBackend(config.root)


__all__ = ["Backend", "FileInfo", "PreconditionFailed", "open_backend"]
