"""Stable shard assignment: an id lands in the same shard on every run and every machine.

Python's ``hash`` is salted per process and DuckDB's ``hash`` may change
between releases, so the shard is the first 8 bytes of the id's BLAKE2b
digest modulo the shard count. Equal inputs give equal shards, which is
what lets a re-run skip the shards a crashed run already wrote.
"""

import hashlib

import numpy as np
import pyarrow as pa


def key_digests(ids: pa.Array | pa.ChunkedArray | list[str]) -> np.ndarray:
    """The first 8 bytes of each id's BLAKE2b digest: the shard and part hash."""
    values = ids.to_pylist() if isinstance(ids, pa.Array | pa.ChunkedArray) else ids
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little")
            for value in values
        ),
        dtype=np.uint64,
        count=len(values),
    )


def shard_of(ids: pa.Array | pa.ChunkedArray | list[str], shards: int) -> np.ndarray:
    """Shard number in ``[0, shards)`` of every id."""
    return (key_digests(ids) % np.uint64(shards)).astype(np.int32)
