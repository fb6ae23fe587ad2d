"""Partitioning a source by the stable hash of its key: one file per shard, then per part.

Ingestion never holds a table whole, and one shard of a large catalogue is
still too big to validate and render at once. So a source is first written
into one Parquet file per shard (the store's shard: the key's digest modulo
the shard count, see :mod:`marc_batch.encode.shards`), each row keeping its
row number in the source and its key's digest. A shard with more rows than
the configured ``part_rows`` is then cut into a power of two of parts by the
digest's next bits (``digest // shards % parts``). A duplicate id, and a
user with all their interactions, share a digest and so a part, which is
what lets each part be validated on its own.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from marc_batch.data.sources import BATCH_ROWS
from marc_batch.encode.shards import key_digests

SOURCE_ROW = "__marc_batch_source_row"
KEY_DIGEST = "__marc_batch_key_digest"
WORKING_COLUMNS = [SOURCE_ROW, KEY_DIGEST]


def _digests(key: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The digest of each raw key, computed on the id it will validate to.

    Text keys are hashed as the string they decode to and integer keys as
    their decimal string, so the shard is that of the accepted id; an
    undecodable or missing key (quarantined whatever its shard) hashes as
    whatever it decodes to with replacement characters, or as "".
    """
    return key_digests(
        [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else "" if v is None else str(v)
            for v in key.to_pylist()
        ]
    )


def _write_runs(batch: pa.RecordBatch, assignment: np.ndarray, writers: list) -> None:
    """Write each file's rows of ``batch``, keeping their order (a stable sort by file)."""
    order = np.argsort(assignment, kind="stable")
    bounds = np.searchsorted(assignment[order], np.arange(len(writers) + 1))
    ordered = batch.take(pa.array(order))
    for target, writer in enumerate(writers):
        if bounds[target + 1] > bounds[target]:
            writer.write_batch(ordered.slice(bounds[target], bounds[target + 1] - bounds[target]))


def partition(pieces: Iterator[pa.Table], key: str, shards: int, directory: Path) -> None:
    """Write the rows of ``pieces`` into ``directory/<shard>.parquet``, a batch at a time.

    Each row gains its source row number and its key's digest.
    """
    directory.mkdir(parents=True)
    writers: list[pq.ParquetWriter] = []
    seen = 0
    try:
        for piece in pieces:
            digests = (
                _digests(piece[key])
                if key in piece.schema.names
                else np.zeros(piece.num_rows, np.uint64)  # refused as a missing column anyway
            )
            table = piece.append_column(
                SOURCE_ROW, pa.array(np.arange(seen, seen + piece.num_rows, dtype=np.int64))
            ).append_column(KEY_DIGEST, pa.array(digests))
            seen += piece.num_rows
            if not writers:
                writers = [
                    pq.ParquetWriter(directory / f"{s}.parquet", table.schema)
                    for s in range(shards)
                ]
            for batch in table.to_batches(BATCH_ROWS):
                digest = batch[KEY_DIGEST].to_numpy()
                _write_runs(batch, (digest % np.uint64(shards)).astype(np.int64), writers)
    finally:
        for writer in writers:
            writer.close()


def shard_rows(directory: Path, shards: int) -> list[int]:
    """Rows in each shard file of ``directory``, from the Parquet footers."""
    return [pq.ParquetFile(directory / f"{s}.parquet").metadata.num_rows for s in range(shards)]


def parts_for(rows: int, part_rows: int) -> int:
    """The power of two of parts that leaves at most about ``part_rows`` rows in each."""
    return 1 << max(0, int(np.ceil(np.log2(max(rows, 1) / part_rows))))


def cut(directory: Path, shard: int, shards: int, parts: int) -> None:
    """Turn ``directory/<shard>.parquet`` into ``directory/<shard>/<part>.parquet``."""
    source = directory / f"{shard}.parquet"
    target = directory / str(shard)
    target.mkdir()
    if parts == 1:
        source.rename(target / "0.parquet")
        return
    file = pq.ParquetFile(source)
    writers = [pq.ParquetWriter(target / f"{p}.parquet", file.schema_arrow) for p in range(parts)]
    try:
        for batch in file.iter_batches(BATCH_ROWS):
            digest = batch[KEY_DIGEST].to_numpy()
            part = (digest // np.uint64(shards)) % np.uint64(parts)
            _write_runs(batch, part.astype(np.int64), writers)
    finally:
        for writer in writers:
            writer.close()
    source.unlink()


def read_part(directory: Path, shard: int, part: int) -> tuple[pa.Table, pa.ChunkedArray]:
    """One part's rows as the source had them, and each row's number in the source."""
    # Not read as a dataset: a source may repeat a column name, which validate() refuses.
    raw = pq.ParquetFile(directory / str(shard) / f"{part}.parquet").read()
    return raw.drop_columns(WORKING_COLUMNS), raw[SOURCE_ROW]
