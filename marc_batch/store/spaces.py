"""The one check every combination of vectors goes through: are they in the same space?

A user vector of one model version scored against item vectors of another
gives numbers that look like scores and mean nothing. Snapshots, the
tables they return (schema metadata ``marc_batch.space``), tables read
without marc-batch (their ``model_version`` column) and tagged query
vectors all name their space; :func:`same_space` refuses to combine two
spaces with one line that says how to ask for an aligned view instead.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.errors import SpaceMismatch
from marc_batch.store.snapshot import SPACE_KEY, Snapshot


@dataclass(frozen=True)
class Vectors:
    """Vectors that are not from a snapshot (an encoded query), labelled with their space."""

    matrix: np.ndarray
    space: str


Part = Snapshot | pa.Table | Vectors


def space_of(part: Part) -> str:
    """The model version whose space ``part``'s vectors are in."""
    if isinstance(part, Snapshot | Vectors):
        return part.space
    metadata = part.schema.metadata or {}
    if SPACE_KEY in metadata:
        return metadata[SPACE_KEY].decode()
    if "model_version" not in part.column_names:
        raise SpaceMismatch("a table without a model_version column cannot be combined safely")
    versions = pc.unique(part["model_version"]).to_pylist()
    if len(versions) != 1:
        raise SpaceMismatch(f"one table holds vectors of several model versions: {versions}")
    return versions[0]


def same_space(*parts: Part) -> str:
    """The space all ``parts`` share; :class:`SpaceMismatch` if they do not share one."""
    spaces = [space_of(part) for part in parts]
    if len(set(spaces)) > 1:
        raise SpaceMismatch(
            f"vectors of model versions {' and '.join(map(repr, dict.fromkeys(spaces)))} cannot "
            f"be combined; open the newer snapshot aligned to the older one "
            f"(open_snapshot(..., space={spaces[0]!r}) or snapshot.aligned({spaces[0]!r}))"
        )
    return spaces[0]


def scores(queries: Part, targets: Part, entity: str = "item") -> np.ndarray:
    """Inner products of every query with every target, once both are proved to share a space.

    A snapshot or table contributes its ``entity`` vectors (a table its
    ``embedding`` column).
    """
    same_space(queries, targets)
    return _matrix(queries, entity) @ _matrix(targets, entity).T


def _matrix(part: Part, entity: str) -> np.ndarray:
    if isinstance(part, Vectors):
        return np.atleast_2d(part.matrix)
    if isinstance(part, Snapshot):
        return part.matrix(entity)[1]
    column = part["embedding"].combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)
