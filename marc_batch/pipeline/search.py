"""Neighbours from a published snapshot, the way a ranking team would query it.

The index is the one committed with the snapshot (checked against its
sha256 before use); the query is either an item already in the snapshot or
a text encoded by the very model version that produced the snapshot, so
query and catalogue live in the same space, which :func:`same_space`
checks before the index is searched.
"""

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.entities import Entity
from marc_batch.errors import MarcBatchError
from marc_batch.index import IdMap
from marc_batch.index.vectors import normalised
from marc_batch.pipeline.encoders import entity_runtime
from marc_batch.store import Snapshot, Store, open_snapshot
from marc_batch.store.spaces import Vectors, same_space


class Neighbour(BaseModel):
    id: str
    score: float
    title: str | None


class SearchResult(BaseModel):
    version: int
    snapshot_id: str
    query: str
    neighbours: list[Neighbour]


def _query_vector(
    config: Config, snapshot: Snapshot, item_id: str | None, text: str | None
) -> Vectors:
    """The query, labelled with the space of the model that made it."""
    if item_id is not None:
        found, vectors = snapshot.lookup("item", [item_id])
        if not found[0]:
            raise MarcBatchError(f"item {item_id!r} is not in snapshot version {snapshot.version}")
        return Vectors(normalised(vectors), snapshot.space)
    model_version = snapshot.manifest.model.version
    runtime = entity_runtime(config, model_version, "item")
    return Vectors(normalised(runtime.encode([text or ""])[0]), model_version)


def titles(snapshot: Snapshot, ids: list[str]) -> list[str | None]:
    """The titles the snapshot stored with ``ids`` (None where it has none), for people."""
    table = snapshot.table(Entity.ITEM)
    positions = pc.index_in(pa.array(ids, pa.string()), value_set=table["id"]).to_pylist()
    stored = table["title"]
    return [None if p is None else stored[p].as_py() for p in positions]


def search(
    config: Config, ref: str, k: int, item_id: str | None = None, text: str | None = None
) -> SearchResult:
    """The ``k`` nearest items to an item id or to a text, by cosine similarity."""
    if (item_id is None) == (text is None):
        raise MarcBatchError("give exactly one of an item id or a text")
    snapshot = open_snapshot(Store(config.store), ref)
    index = snapshot.index(Entity.ITEM)
    query = _query_vector(config, snapshot, item_id, text)
    same_space(query, snapshot)
    scores, labels = index.search(query.matrix, k + (item_id is not None))
    ids, _ = snapshot.matrix("item")
    id_map = IdMap.for_ids(pa.array(ids.tolist(), pa.string()))
    found = [
        (hit, float(score))
        for hit, score in zip(id_map.to_catalogue(labels[0]), scores[0], strict=True)
        if hit is not None and hit != item_id
    ][:k]
    names = titles(snapshot, [identifier for identifier, _ in found])
    neighbours = [
        Neighbour(id=identifier, score=score, title=name)
        for (identifier, score), name in zip(found, names, strict=True)
    ]
    return SearchResult(
        version=snapshot.version,
        snapshot_id=snapshot.manifest.snapshot_id,
        query=item_id if item_id is not None else text,
        neighbours=neighbours,
    )
