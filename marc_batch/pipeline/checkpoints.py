"""Shard checkpoints: what lets a crashed refresh resume without re-encoding finished shards.

When a shard is encoded, its rows (id, embedding, text_hash, updated_at) are
saved under ``_checkpoints/`` in the store, keyed by a hash of everything that
determines them: the model version, the entity, the shard and every
(id, text_hash) pair in it. A re-run whose shard has the same key reads the
rows back instead of running the encoder, and hands the store the very same
rows, so the snapshot's files come out byte for byte as an uninterrupted run
would have written them. A checkpoint that cannot be read (a crash mid-write)
is treated as absent. A successful commit deletes the run's checkpoints.
"""

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq

from marc_batch.store.backends import Backend

PREFIX = "_checkpoints"


def shard_key(model_version: str, entity: str, shard: int, part: pa.Table) -> str:
    """A digest of the inputs that determine a shard's embeddings."""
    digest = hashlib.sha256(f"{model_version}\x00{entity}\x00{shard}\x00".encode())
    for identifier, text_hash in zip(
        part["id"].to_pylist(), part["text_hash"].to_pylist(), strict=True
    ):
        digest.update(f"{identifier}\x00{text_hash}\x00".encode())
    return digest.hexdigest()[:32]


class Checkpoints:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.saved: list[str] = []

    def _path(self, key: str) -> str:
        return f"{PREFIX}/{key}.parquet"

    def load(self, key: str) -> pa.Table | None:
        """The rows a previous run saved under ``key``, or None."""
        try:
            table = pq.read_table(io.BytesIO(self.backend.read_bytes(self._path(key))))
        except (FileNotFoundError, OSError, pa.ArrowInvalid):
            return None
        self.saved.append(key)
        return table

    def save(self, key: str, rows: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(rows, buffer)
        path = self._path(key)
        self.backend.delete(path)  # a partial file left by a crash mid-write
        with self.backend.writing(path) as handle:
            handle.write(buffer.getvalue())
        self.saved.append(key)

    def clear(self) -> None:
        """Drop this run's checkpoints once its snapshot is committed."""
        for key in self.saved:
            self.backend.delete(self._path(key))
        self.saved.clear()
