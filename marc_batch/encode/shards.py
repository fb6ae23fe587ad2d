"""Stable shard assignment: an id lands in the same shard on every run and every machine.

Python's ``hash`` is salted per process and DuckDB's ``hash`` may change
between releases, so the shard is the first 8 bytes of the id's BLAKE2b
digest modulo the shard count. Equal inputs give equal shards, which is
what lets a re-run skip the shards a crashed run already wrote.
"""

import hashlib

import numpy as np
import pyarrow as pa


def shard_of(ids: pa.Array | pa.ChunkedArray | list[str], shards: int) -> np.ndarray:
    """Shard number in ``[0, shards)`` of every id."""
    values = ids.to_pylist() if isinstance(ids, pa.Array | pa.ChunkedArray) else ids
    digests = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little")
            for value in values
        ),
        dtype=np.uint64,
        count=len(values),
    )
    return (digests % np.uint64(shards)).astype(np.int32)
