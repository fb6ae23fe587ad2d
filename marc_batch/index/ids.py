"""Catalogue ids as FAISS ids.

FAISS labels vectors with int64. When every catalogue id is a canonical
decimal int64 (as in MovieLens), the index uses the catalogue's own ids, so
``faiss.read_index`` alone answers in catalogue terms. Otherwise every id is
labelled with the first 63 bits of its BLAKE2b digest: stable across runs
and snapshots, so anyone holding the ids (the snapshot's ``id`` column) can
rebuild the mapping, and a collision, vanishingly unlikely, is refused
rather than silently merging two items.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.errors import IndexBuildError

ID_MAP_SCHEMA = pa.schema([("faiss_id", pa.int64()), ("id", pa.string())])


@dataclass(frozen=True)
class IdMap:
    """A bijection between catalogue ids (strings) and FAISS ids (int64)."""

    table: pa.Table
    native: bool

    @classmethod
    def for_ids(cls, ids: pa.Array | pa.ChunkedArray, native: bool | None = None) -> "IdMap":
        """The map of ``ids``; ``native`` imposes the scheme of the index they belong to.

        An index built piece by piece labels every piece under the scheme of
        all its ids, which one piece alone cannot tell.
        """
        ids = pa.chunked_array([ids]) if isinstance(ids, pa.Array) else ids
        ids = ids.cast(pa.string())
        native = is_canonical(ids) if native is None else native
        faiss_ids = ids.cast(pa.int64()) if native else pa.array(_hash63(ids.to_pylist()))
        if not native and len(pc.unique(faiss_ids)) != len(pc.unique(ids)):
            raise IndexBuildError("two catalogue ids share a 63-bit hash; rename one of them")
        return cls(pa.table({"faiss_id": faiss_ids, "id": ids}, schema=ID_MAP_SCHEMA), native)

    @property
    def faiss_ids(self) -> np.ndarray:
        return self.table["faiss_id"].to_numpy()

    def to_faiss(self, ids: list[str]) -> np.ndarray:
        """FAISS ids of catalogue ids; -1 for an id not in the map."""
        index = pc.index_in(pa.array(ids, pa.string()), value_set=self.table["id"].combine_chunks())
        positions = index.fill_null(-1).to_numpy(zero_copy_only=False)
        return np.where(positions >= 0, self.faiss_ids[np.maximum(positions, 0)], -1)

    def to_catalogue(self, faiss_ids: np.ndarray) -> list[str | None]:
        """Catalogue ids of FAISS ids; None for -1 (FAISS's "no result")."""
        lookup = pc.index_in(
            pa.array(faiss_ids.ravel(), pa.int64()),
            value_set=self.table["faiss_id"].combine_chunks(),
        )
        return pc.take(self.table["id"], lookup).to_pylist()


def _hash63(ids: list[str]) -> np.ndarray:
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") >> 1
            for i in ids
        ),
        dtype=np.int64,
        count=len(ids),
    )


def removable_ids(ids: pa.Array, native: bool) -> np.ndarray:
    """FAISS ids under which ``ids`` may be held in an index of the ``native`` scheme.

    Under the native scheme an id that does not round-trip through int64
    cannot be in the index at all, so it has no FAISS id to remove.
    """
    if native:
        ids = ids.filter(pa.array([_round_trips(i) for i in ids.to_pylist()], pa.bool_()))
    return IdMap.for_ids(ids, native).faiss_ids


def is_canonical(ids: pa.Array | pa.ChunkedArray) -> bool:
    """True if every id round-trips through int64 unchanged ('7' yes; '007', '+7', '7.0' no)."""
    if ids.null_count or len(ids) == 0:
        return False
    if not pc.all(pc.match_substring_regex(ids, r"^(0|-?[1-9][0-9]{0,18})$")).as_py():
        return False
    try:
        as_int = ids.cast(pa.int64())
    except pa.ArrowInvalid:
        return False
    return pc.all(pc.equal(as_int.cast(pa.string()), ids)).as_py()


def _round_trips(identifier: str | None) -> bool:
    return identifier is not None and is_canonical(pa.array([identifier], pa.string()))
