"""BAHE behaviour vectors in the store: the lower layers' output, kept per model version.

A behaviour vector depends only on the behaviour's text and the model's
frozen lower layers, so a nightly refresh of the same model needs to encode
only behaviours it has not seen. The vectors live in Parquet files of
(``key``, ``model_version``, ``vector``) rows, ``key`` being the behaviour's
text hash; a snapshot's manifest lists them (``Manifest.behaviours``) with
their size and sha256 like every other file, and carries them on to the next
snapshot of the same model. Every read checks the bytes against the
manifest first, so a tampered file is refused, never used; a file whose
vectors have another width, or were made by another model than the
snapshot's, is refused as well.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marc_batch.errors import CorruptFile
from marc_batch.store.backends import Backend
from marc_batch.store.manifest import BehaviourFile, Manifest
from marc_batch.store.paths import new_behaviours_path
from marc_batch.store.reader import read_verified
from marc_batch.store.store import Store
from marc_batch.store.writer import HashingSink


def behaviour_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.field("element", pa.float32()), dim), nullable=False),
        ]
    )


def write_behaviour_file(
    backend: Backend, model_version: str, keys: list[str], vectors: np.ndarray
) -> BehaviourFile:
    """Write one file of vectors ((len(keys), dim) float32), hashed as it streams out."""
    dim = vectors.shape[1]
    values = pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1))
    table = pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "model_version": pa.repeat(pa.scalar(model_version, pa.string()), len(keys)),
            "vector": pa.FixedSizeListArray.from_arrays(values, dim),
        },
        schema=behaviour_schema(dim),
    )
    path = new_behaviours_path()
    with backend.writing(path) as handle:
        sink = HashingSink(handle)
        pq.write_table(table, sink, compression="zstd", write_page_checksum=True)
    return BehaviourFile(
        path=path, rows=len(keys), dim=dim, size=sink.size, sha256=sink.digest.hexdigest()
    )


def read_behaviour_file(store: Store, manifest: Manifest, entry: BehaviourFile) -> pa.Table:
    """(key, vector) rows of one listed file, checked byte for byte against the manifest."""
    data = read_verified(store, manifest, entry)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
        if not parquet.schema_arrow.equals(behaviour_schema(entry.dim)):
            raise CorruptFile(
                f"{entry.path}: schema differs from the manifest's (dim={entry.dim}): "
                f"{parquet.schema_arrow}"
            )
        table = parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFile(f"{entry.path}: unreadable: {' '.join(str(exc).split())}") from None
    if table.num_rows != entry.rows:
        raise CorruptFile(f"{entry.path}: {table.num_rows} rows, manifest says {entry.rows}")
    versions = pc.unique(table["model_version"]).to_pylist()
    if table.num_rows and versions != [manifest.model.version]:
        raise CorruptFile(
            f"{entry.path}: vectors of model {versions}, the snapshot's is "
            f"{manifest.model.version!r}; behaviour vectors of two models cannot be mixed"
        )
    return table.select(["key", "vector"])


def read_behaviours(store: Store, manifest: Manifest | None, model_version: str) -> pa.Table:
    """Every behaviour vector ``manifest`` holds for ``model_version`` (key, vector), verified.

    Empty when there is no snapshot yet or its model is another one: a vector of
    another model's lower layers would be wrong for this one.
    """
    tables = (
        [read_behaviour_file(store, manifest, entry) for entry in manifest.behaviours]
        if manifest is not None and manifest.model.version == model_version
        else []
    )
    if not tables:
        return pa.table({"key": pa.array([], pa.string()), "vector": pa.array([], pa.float32())})
    return pa.concat_tables(tables)
