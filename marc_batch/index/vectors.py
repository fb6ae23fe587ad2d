"""Vectors to index, read piece by piece: a shard, a data file, never the whole catalogue.

An index is built, changed and proved over its vectors in several passes
(sample, add, exact search), each reading one piece at a time, so memory
holds one piece plus what the index keeps, whatever the catalogue's size.
A refresh reads its shards' saved rows; a backfill reads its parent's live
rows and the re-encoded ones. :func:`survey` is the first pass: it counts
nothing (the row count is known up front) but decides the FAISS id scheme,
which depends on every id, and draws the uniform sample that trains the
coarse quantizer and queries the recall proof.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import faiss
import numpy as np
import pyarrow as pa

from marc_batch.index.ids import IdMap, is_canonical

Piece = tuple[pa.Array | pa.ChunkedArray, np.ndarray]
"""Catalogue ids and their vectors (one row each)."""


@dataclass(frozen=True)
class Vectors:
    """``rows`` vectors of width ``dim``, as ``pieces()`` yields them on every call."""

    rows: int
    dim: int
    pieces: Callable[[], Iterator[Piece]]

    def labelled(self, native: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each piece as (FAISS ids under the ``native`` scheme, unit float32 vectors)."""
        for ids, vectors in self.pieces():
            yield IdMap.for_ids(ids, native).faiss_ids, normalised(vectors)


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Unit rows as C-ordered float32, so inner product is cosine similarity.

    Vectors that already are (a snapshot's embeddings) come back as they are;
    a copy of a million of them would be the largest allocation of a build.
    Others are normalised in a copy: the caller's array is never modified.
    """
    if vectors.dtype == np.float32 and vectors.flags.c_contiguous and len(vectors):
        norms = np.einsum("ij,ij->i", vectors, vectors)
        if np.allclose(norms, 1.0, atol=1e-5):
            return vectors
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(out)
    return out


def in_one_piece(vectors: np.ndarray, ids: pa.Array | pa.ChunkedArray) -> Vectors:
    """A matrix already in memory, as a single piece."""
    return Vectors(len(vectors), vectors.shape[1], lambda: iter([(ids, vectors)]))


@dataclass
class Survey:
    """What one pass over every piece tells: the id scheme and a uniform sample."""

    native: bool
    sample: np.ndarray  # unit vectors in random order, at most the size asked for


def survey(vectors: Vectors, size: int, seed: int) -> Survey:
    """Decide the id scheme and draw ``size`` rows uniformly at random, one piece at a time.

    Every row gets a seeded random key and the ``size`` smallest keys are
    kept (a reservoir), so the sample is the same whatever the pieces'
    boundaries and holds at most ``size`` rows besides the current piece.
    """
    rng = np.random.default_rng(seed)
    keys = np.empty(0)
    kept = np.empty((0, vectors.dim), np.float32)
    native, seen = True, 0
    for ids, piece in vectors.pieces():
        seen += len(ids)
        native = native and (len(ids) == 0 or is_canonical(ids))
        drawn = rng.random(len(ids))
        if size == 0:
            continue
        full = len(keys) == size
        chosen = np.flatnonzero(drawn < keys[-1]) if full else np.arange(len(ids))
        keys = np.concatenate([keys, drawn[chosen]])
        kept = np.concatenate([kept, normalised(piece[chosen])])
        order = np.argsort(keys, kind="stable")[:size]
        keys, kept = keys[order], kept[order]
    return Survey(native=native and seen > 0, sample=kept)
