"""Reading a snapshot's files: exactly the ones its manifest lists, each checked against it.

Readers (:mod:`marc_batch.store.snapshot`, validation, diffs, statistics)
read exactly the files a manifest lists, never a directory listing, so
files of other snapshots and leftovers of crashed runs are invisible to
them. Every Parquet page is checked against its CRC; with
``verify=True`` each file's size and sha256 are also checked against the
manifest before any byte of it is used. A file whose embedding width,
dtype or model version differs from the manifest is refused, so a snapshot
can never mix embeddings of two models.
"""

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marc_batch.errors import CorruptFile
from marc_batch.store.manifest import AttachedFile, BehaviourFile, DataFile, IndexFile, Manifest
from marc_batch.store.merge import merge, with_sequence
from marc_batch.store.paths import check_entity
from marc_batch.store.store import Store
from marc_batch.store.writer import DELETES_SCHEMA, legacy_row_schema, row_schema

WHOLE_FILE_BYTES = 8 * 2**20  # smaller files are fetched in one request, not page by page
READ_THREADS = 8


def read_data_file(
    store: Store, manifest: Manifest, entry: DataFile, columns: Sequence[str], verify: bool
) -> pa.Table:
    """One file's rows, checked against the manifest; any mismatch is :class:`CorruptFile`."""
    backend = store.backend
    try:
        if verify or entry.size <= WHOLE_FILE_BYTES:
            data = backend.read_bytes(entry.path)
            if verify and (
                len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256
            ):
                raise CorruptFile(f"{entry.path}: size or sha256 differs from the manifest")
            source = pa.BufferReader(data)
        else:
            source = backend.open_read(entry.path)
        parquet = pq.ParquetFile(source, page_checksum_verification=True)
        expected = (
            row_schema(manifest.k, manifest.dtype) if entry.kind == "rows" else DELETES_SCHEMA
        )
        legacy = entry.kind == "rows" and parquet.schema_arrow.equals(
            legacy_row_schema(manifest.k, manifest.dtype)
        )
        if not (legacy or parquet.schema_arrow.equals(expected)):
            raise CorruptFile(
                f"{entry.path}: schema differs from the manifest's (k={manifest.k}, "
                f"dtype={manifest.dtype}): {parquet.schema_arrow}"
            )
        if parquet.metadata.num_rows != entry.rows:
            raise CorruptFile(
                f"{entry.path}: {parquet.metadata.num_rows} rows, manifest says {entry.rows}"
            )
        table = parquet.read(columns=[c for c in columns if not (legacy and c == "title")])
        if legacy and "title" in columns:
            table = table.append_column("title", pa.nulls(table.num_rows, pa.string()))
    except FileNotFoundError:
        raise CorruptFile(
            f"{entry.path}: listed in version {manifest.version} but missing"
        ) from None
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFile(f"{entry.path}: unreadable: {' '.join(str(exc).split())}") from None
    if "model_version" in columns and table.num_rows:
        versions = pc.unique(table["model_version"]).to_pylist()
        if versions != [manifest.model.version]:
            raise CorruptFile(
                f"{entry.path}: model version {versions} differs from the snapshot's "
                f"{manifest.model.version!r}; snapshots of different models cannot be mixed"
            )
    return table


def read_index_file(store: Store, manifest: Manifest, entry: IndexFile) -> bytes:
    return read_verified(store, manifest, entry)


def _missing(manifest: Manifest, path: str) -> CorruptFile:
    return CorruptFile(f"{path}: listed in version {manifest.version} but missing")


def _differs(path: str) -> CorruptFile:
    return CorruptFile(f"{path}: size or sha256 differs from the manifest")


def read_verified(
    store: Store, manifest: Manifest, entry: IndexFile | BehaviourFile | AttachedFile
) -> bytes:
    """A listed file's bytes, refused unless its size and sha256 are the manifest's."""
    try:
        data = store.backend.read_bytes(entry.path)
    except FileNotFoundError:
        raise _missing(manifest, entry.path) from None
    if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise _differs(entry.path)
    return data


def copy_verified(store: Store, manifest: Manifest, entry: IndexFile, target: Path) -> None:
    """Download a listed file into the local file ``target``, streamed.

    Refused (and ``target`` deleted) unless its size and sha256 are the manifest's.
    """
    try:
        store.backend.download(entry.path, target)
    except FileNotFoundError:
        raise _missing(manifest, entry.path) from None
    with target.open("rb") as copy:
        digest = hashlib.file_digest(copy, "sha256").hexdigest()
    if target.stat().st_size != entry.size or digest != entry.sha256:
        target.unlink()
        raise _differs(entry.path)


def merged_table(
    store: Store,
    manifest: Manifest,
    entity: str,
    columns: Sequence[str] = ("id",),
    verify: bool = False,
    with_shard: bool = False,
    id_range: tuple[str, str] | None = None,
    shard: int | None = None,
) -> pa.Table:
    """The live rows of one entity: each id once, with its newest row.

    ``with_shard`` adds a ``shard`` column (the partition each row came from),
    which compaction needs to write rows back where they were. ``id_range``
    skips files whose id bounds exclude it: the result is exact for ids in the
    range and may omit others, which is all a commit needs to check its ids.
    ``shard`` reads one partition's rows files (and every deletes file): an id
    stays in its shard from version to version, so two snapshots can be
    compared one shard at a time.
    """
    check_entity(entity)
    names = ["id", *(c for c in columns if c != "id")]

    def read(entry: DataFile) -> pa.Table:
        table = read_data_file(
            store, manifest, entry, names if entry.kind == "rows" else ["id"], verify
        )
        if with_shard and entry.kind == "rows":
            table = table.append_column("shard", pa.repeat(pa.scalar(entry.shard), table.num_rows))
        return with_sequence(table, entry.sequence)

    def wanted(kind: str) -> list[DataFile]:
        files = manifest.data_files(entity, kind)
        if shard is not None and kind == "rows":
            files = [f for f in files if f.shard == shard]
        return files if id_range is None else [f for f in files if f.may_contain(*id_range)]

    # Object stores are latency-bound: files are fetched in parallel.
    with ThreadPoolExecutor(READ_THREADS) as pool:
        rows = list(pool.map(read, wanted("rows")))
        deletes = list(pool.map(read, wanted("deletes")))
    if not rows:
        empty = row_schema(manifest.k, manifest.dtype).empty_table().select(names)
        return empty.append_column("shard", pa.array([], pa.int64())) if with_shard else empty
    return merge(rows, deletes)


def live_pieces(
    store: Store, manifest: Manifest, entity: str, columns: Sequence[str] = ("id",)
) -> Iterator[pa.Table]:
    """The live rows of one entity, one data file at a time (the same rows as :func:`merged_table`).

    Files are read from the newest sequence down: a row is live unless a
    newer rows file or a deletes file of its sequence or newer names its id.
    So memory holds one file plus the ids of the layers above it, which a
    full or compacted snapshot does not have at all.
    """
    check_entity(entity)
    names = ["id", *(c for c in columns if c != "id")]

    def stacked(ids: list[pa.ChunkedArray]) -> pa.Array:
        return pa.chunked_array([c for i in ids for c in i.chunks], pa.string()).combine_chunks()

    above: list[pa.ChunkedArray] = []
    sequences = sorted({f.sequence for f in manifest.files if f.entity == entity}, reverse=True)
    for sequence in sequences:
        above += [
            read_data_file(store, manifest, entry, ["id"], False)["id"]
            for entry in manifest.data_files(entity, "deletes")
            if entry.sequence == sequence
        ]
        hidden, level = stacked(above), []
        for entry in manifest.data_files(entity):
            if entry.sequence == sequence:
                table = read_data_file(store, manifest, entry, names, False)
                if sequence != sequences[-1]:  # the oldest layer hides nothing below it
                    level.append(table["id"])
                yield table.filter(pc.invert(pc.is_in(table["id"], value_set=hidden)))
        above += level


def embedding_matrix(table: pa.Table, k: int) -> np.ndarray:
    """The ``embedding`` column of a one-chunk table as an [n, k] view of its Arrow buffer."""
    column = table["embedding"]
    if column.num_chunks != 1:
        column = pa.chunked_array([column.combine_chunks()])
    values = column.chunk(0).flatten()
    return values.to_numpy(zero_copy_only=True).reshape(table.num_rows, k)
