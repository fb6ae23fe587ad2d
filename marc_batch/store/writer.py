"""Streaming Parquet writers for embedding rows and deleted ids.

Rows arrive in batches of any size and leave in row groups of about
``row_group_bytes``; a file is closed and a new one opened past
``file_bytes``. Memory therefore stays at one row group per open shard,
whatever the catalogue size. Each file's size and sha256 are computed while
its bytes stream out, so publishing a checksummed manifest costs no second
read.

The layout is chosen for the readers: embeddings are
``fixed_size_list<float32>[k]`` (or float16) so that DuckDB sees ``FLOAT[k]``
and numpy gets one contiguous matrix; they are stored with
BYTE_STREAM_SPLIT (floats compress poorly as bytes, well as byte planes) and
no dictionary; every page carries a CRC so that readers can catch a
flipped bit before it reaches a model.
"""

import hashlib
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marc_batch.clock import utc_now
from marc_batch.errors import StoreError
from marc_batch.store.backends import Backend
from marc_batch.store.failpoints import failpoint
from marc_batch.store.manifest import DataFile, Dtype
from marc_batch.store.paths import new_data_path, new_deletes_path

_ROW_OVERHEAD_BYTES = 96  # id, text hash, model version and timestamp, before compression
DELETES_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False)])


def row_schema(k: int, dtype: Dtype) -> pa.Schema:
    value_type = pa.float16() if dtype == "float16" else pa.float32()
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.field("element", value_type), k), nullable=False),
            pa.field("text_hash", pa.string(), nullable=False),
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("title", pa.string()),
        ]
    )


def legacy_row_schema(k: int, dtype: Dtype) -> pa.Schema:
    """The row schema before ``title`` was added; files written with it stay readable."""
    return row_schema(k, dtype).remove(row_schema(k, dtype).get_field_index("title"))


def _parquet_options(schema: pa.Schema) -> dict:
    options: dict = {"compression": "zstd", "write_page_checksum": True}
    if "embedding" in schema.names:
        options["use_dictionary"] = [n for n in schema.names if n != "embedding"]
        options["column_encoding"] = {"embedding.list.element": "BYTE_STREAM_SPLIT"}
    return options


def _ids(values: object, what: str) -> pa.Array:
    try:
        array = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StoreError(f"{what} must be strings: {exc}") from None
    if array.null_count or (len(array) and pc.min(pc.utf8_length(array)).as_py() == 0):
        raise StoreError(f"{what} must not be null or empty")
    return array


def build_rows(
    schema: pa.Schema,
    ids: object,
    embeddings: np.ndarray,
    text_hash: object,
    model_version: str,
    updated_at: datetime | np.ndarray | None,
    titles: object | None = None,
) -> pa.Table:
    """Validate one batch from the encoder and turn it into rows of ``schema``.

    ``titles`` (optional, nullable) are what people read beside a result.
    """
    id_array = _ids(ids, "ids")
    n = len(id_array)
    embedding_type = schema.field("embedding").type
    k = embedding_type.list_size
    matrix = np.asarray(embeddings)
    if matrix.ndim != 2 or matrix.shape != (n, k):
        raise StoreError(f"embeddings must have shape ({n}, {k}), got {matrix.shape}")
    if not np.issubdtype(matrix.dtype, np.floating):
        raise StoreError(f"embeddings must be floating point, got {matrix.dtype}")
    if not np.isfinite(matrix).all():
        raise StoreError("embeddings contain NaN or infinite values")
    values = np.ascontiguousarray(matrix, dtype=embedding_type.value_type.to_pandas_dtype())
    hashes = _ids(text_hash, "text_hash")
    if len(hashes) != n:
        raise StoreError(f"text_hash has {len(hashes)} values for {n} ids")
    return pa.table(
        [
            id_array,
            pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), k),
            hashes,
            pa.repeat(pa.scalar(model_version, pa.string()), n),
            _timestamps(updated_at, n),
            _titles(titles, n),
        ],
        schema=schema,
    )


def _titles(titles: object | None, n: int) -> pa.Array:
    if titles is None:
        return pa.nulls(n, pa.string())
    if isinstance(titles, pa.ChunkedArray):
        titles = titles.combine_chunks()
    try:
        array = titles if isinstance(titles, pa.Array) else pa.array(titles, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StoreError(f"titles must be strings: {exc}") from None
    if len(array) != n:
        raise StoreError(f"titles has {len(array)} values for {n} ids")
    return array.cast(pa.string())


def _timestamps(updated_at: datetime | np.ndarray | None, n: int) -> pa.Array:
    """One timestamp for the batch (default: now) or one per row; naive values are UTC."""
    utc = pa.timestamp("us", tz="UTC")
    if updated_at is None or isinstance(updated_at, datetime):
        stamp = updated_at or utc_now()
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return pa.repeat(pa.scalar(stamp, utc), n)
    stamps = np.asarray(updated_at)
    if stamps.shape != (n,) or not np.issubdtype(stamps.dtype, np.datetime64):
        raise StoreError(f"updated_at must be a datetime or {n} datetime64 values")
    return pa.array(stamps.astype("datetime64[us]")).cast(utc)


class HashingSink:
    """Passes bytes through to the backend while counting them and hashing them."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")  # counted in bytes whatever the buffer's item size
        self.digest.update(view)
        self.stream.write(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class _OpenFile:
    path: str
    stack: ExitStack
    sink: HashingSink
    writer: pq.ParquetWriter
    rows: int = 0
    input_bytes: int = 0
    id_min: str | None = None
    id_max: str | None = None


class PartitionWriter:
    """Streams the rows (or deleted ids) of one ``entity=.../shard=...`` partition."""

    def __init__(
        self,
        backend: Backend,
        schema: pa.Schema,
        entity: str,
        shard: int,
        row_group_bytes: int,
        file_bytes: int,
    ) -> None:
        self.backend = backend
        self.schema = schema
        self.entity = entity
        self.shard = shard
        self.kind = "rows" if "embedding" in schema.names else "deletes"
        row_bytes = _ROW_OVERHEAD_BYTES
        if self.kind == "rows":
            embedding = schema.field("embedding").type
            row_bytes += embedding.list_size * embedding.value_type.bit_width // 8
        self.row_bytes = row_bytes
        self.group_rows = max(1, row_group_bytes // row_bytes)
        self.file_bytes = file_bytes
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.current: _OpenFile | None = None
        self.done: list[DataFile] = []

    def write(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows < self.group_rows:
            return
        while self.pending_rows >= self.group_rows:
            self._flush_group(self.group_rows)
        # What is left is a slice, which keeps the whole batch alive: copy it out,
        # or each open partition would hold the last batch it was given.
        self.pending = [table.take(np.arange(table.num_rows)) for table in self.pending]

    def _flush_group(self, rows: int) -> None:
        buffered = pa.concat_tables(self.pending)
        group, rest = buffered.slice(0, rows), buffered.slice(rows)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows
        handle = self.current or self._open()
        handle.writer.write_table(group, row_group_size=rows)
        handle.rows += rows
        bounds = pc.min_max(group["id"])
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        handle.id_min = low if handle.id_min is None else min(handle.id_min, low)
        handle.id_max = high if handle.id_max is None else max(handle.id_max, high)
        handle.input_bytes += rows * self.row_bytes
        failpoint("data.partial")
        if handle.input_bytes >= self.file_bytes:
            self._close_file()

    def _open(self) -> _OpenFile:
        path = (
            new_data_path(self.entity, self.shard)
            if self.kind == "rows"
            else new_deletes_path(self.entity)
        )
        stack = ExitStack()
        sink = HashingSink(stack.enter_context(self.backend.writing(path)))
        writer = pq.ParquetWriter(sink, self.schema, **_parquet_options(self.schema))
        self.current = _OpenFile(path, stack, sink, writer)
        return self.current

    def _close_file(self) -> None:
        handle = self.current
        assert handle is not None
        handle.writer.close()
        handle.stack.close()
        self.done.append(
            DataFile(
                path=handle.path,
                kind=self.kind,
                entity=self.entity,
                shard=self.shard,
                rows=handle.rows,
                size=handle.sink.size,
                sha256=handle.sink.digest.hexdigest(),
                sequence=1,  # provisional: the commit assigns the version
                id_min=handle.id_min,
                id_max=handle.id_max,
            )
        )
        self.current = None
        failpoint("data.written")

    @property
    def pending_bytes(self) -> int:
        return self.pending_rows * self.row_bytes

    def flush(self) -> None:
        """Write the buffered rows now, as a smaller row group, to free their memory."""
        if self.pending_rows:
            self._flush_group(self.pending_rows)

    def close(self) -> list[DataFile]:
        """Finish every file and describe them for the manifest."""
        self.flush()
        if self.current is not None:
            self._close_file()
        return self.done

    def abort(self) -> None:
        """Drop the open file; on object stores its upload never becomes visible."""
        if self.current is not None:
            self.current.stack.__exit__(StoreError, StoreError("aborted"), None)
            self.current = None
