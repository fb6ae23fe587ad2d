"""Shard checkpoints: how shard tasks get their texts and hand back their rows.

Before encoding, the driver stages each shard's texts (id, text, text_hash)
under ``_checkpoints/`` in the store; a shard task, on this machine or on a
cluster worker that sees the same store, reads them, encodes them and saves
the resulting rows (id, embedding, text_hash, updated_at) next to them; the
index of a shard's vectors travels the same way (``.faiss``), and so do the
BAHE behaviour vectors a user shard reads (``.vectors``). Rows and texts
are keyed by a hash of everything that determines the rows: the model
version, the entity, the shard and every (id, text_hash) pair in it.

That key is also what makes a crashed run resumable: a re-run whose shard
has the same key finds the saved rows and does not run the encoder, and the
driver hands the store the very same rows, so the snapshot's files come out
byte for byte as an uninterrupted run would have written them. A file that
cannot be read (a crash mid-write) counts as absent, and so do saved rows
that are not exactly the staged ids and text hashes (an encoder that lost a
row): their shard is encoded again rather than poisoning every re-run. A
successful commit deletes the run's checkpoints.
"""

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path

import faiss
import pyarrow as pa
import pyarrow.parquet as pq

from marc_batch.index.io import index_from_bytes, write_index
from marc_batch.store.backends import Backend
from marc_batch.store.paths import CHECKPOINTS as PREFIX


def shard_key(model_version: str, entity: str, shard: int, parts: Iterable[pa.Table]) -> str:
    """A digest of the inputs that determine a shard's embeddings (its texts, part by part)."""
    digest = hashlib.sha256(f"{model_version}\x00{entity}\x00{shard}\x00".encode())
    for part in parts:
        for identifier, text_hash in zip(
            part["id"].to_pylist(), part["text_hash"].to_pylist(), strict=True
        ):
            digest.update(f"{identifier}\x00{text_hash}\x00".encode())
    return digest.hexdigest()[:32]


class Checkpoints:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _path(self, key: str, kind: str) -> str:
        return f"{PREFIX}/{key}.{kind}.parquet"

    def _read(self, path: str) -> pa.Table | None:
        try:
            return pq.read_table(io.BytesIO(self.backend.read_bytes(path)))
        except (FileNotFoundError, OSError, pa.ArrowInvalid):
            return None

    def _write(self, path: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self.backend.delete(path)  # a partial file left by a crash mid-write
        with self.backend.writing(path) as handle:
            handle.write(buffer.getvalue())

    def stage(self, key: str, parts: Iterable[pa.Table]) -> None:
        """Leave a shard's texts where its task will look for them, streamed part by part."""
        path = self._path(key, "input")
        self.backend.delete(path)  # a partial file left by a crash mid-write
        with self.backend.writing(path) as handle:
            writer: pq.ParquetWriter | None = None
            for part in parts:
                writer = writer or pq.ParquetWriter(handle, part.schema)
                writer.write_table(part)
            if writer is not None:
                writer.close()

    def texts(self, key: str) -> pa.Table:
        found = self._read(self._path(key, "input"))
        if found is None:
            raise FileNotFoundError(f"{self.backend.uri}/{self._path(key, 'input')}")
        return found

    def load(self, key: str) -> pa.Table | None:
        """The rows a task saved under ``key``, as saved, or None if it has not finished."""
        return self._read(self._path(key, "rows"))

    def finished(self, key: str) -> bool:
        """Whether rows are saved under ``key`` for exactly the ids and texts staged there."""
        rows = self.load(key)
        if rows is None:
            return False
        texts = self._read(self._path(key, "input"))
        return (
            texts is not None
            and rows.num_rows == texts.num_rows
            and rows["id"].equals(texts["id"])
            and rows["text_hash"].equals(texts["text_hash"])
        )

    def save(self, key: str, rows: pa.Table) -> None:
        self._write(self._path(key, "rows"), rows)

    def stage_vectors(self, key: str, vectors: pa.Table) -> None:
        """Leave the BAHE behaviour vectors (key, vector) that a user shard's sequences hold."""
        self._write(self._path(key, "vectors"), vectors)

    def vectors(self, key: str) -> pa.Table | None:
        """The behaviour vectors staged for ``key``, or None if none were."""
        return self._read(self._path(key, "vectors"))

    def _index_path(self, name: str) -> str:
        return f"{PREFIX}/{name}.faiss"

    def save_index(self, name: str, index: faiss.Index) -> None:
        """Leave an index (a trained empty one, or one shard's) under ``name``, streamed."""
        path = self._index_path(name)
        self.backend.delete(path)  # a partial file left by a crash mid-write
        with self.backend.writing(path) as handle:
            write_index(index, handle)

    def load_index(self, name: str) -> faiss.Index:
        return index_from_bytes(self.backend.read_bytes(self._index_path(name)))

    def copy_index(self, name: str, target: Path) -> None:
        """Download the index saved under ``name`` into the local file ``target``."""
        self.backend.download(self._index_path(name), target)

    def drop_index(self, name: str) -> None:
        self.backend.delete(self._index_path(name))

    def clear(self, keys: list[str]) -> None:
        """Drop a run's checkpoints once its snapshot is committed."""
        for key in keys:
            for kind in ("input", "rows", "vectors"):
                self.backend.delete(self._path(key, kind))
