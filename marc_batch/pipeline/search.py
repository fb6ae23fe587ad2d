"""Neighbours from a published snapshot, the way a ranking team would query it.

The index is the one committed with the snapshot (checked against its
sha256 before use); the query is either an item already in the snapshot or
a text encoded by the very model version that produced the snapshot, so
query and catalogue live in the same space.
"""

import faiss
import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.data.ingest import read_raw
from marc_batch.data.validate import ITEMS, validate
from marc_batch.errors import MarcBatchError
from marc_batch.index import IdMap
from marc_batch.index.build import normalised
from marc_batch.pipeline.encoders import entity_runtime
from marc_batch.store import Snapshot, Store, open_snapshot


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
) -> np.ndarray:
    if item_id is not None:
        found, vectors = snapshot.lookup("item", [item_id])
        if not found[0]:
            raise MarcBatchError(f"item {item_id!r} is not in snapshot version {snapshot.version}")
        return normalised(vectors)
    runtime = entity_runtime(config, snapshot.manifest.model.version, "item")
    return normalised(runtime.encode([text or ""])[0])


def titles(config: Config) -> dict[str, str]:
    """Item titles from the configured catalogue, for humans reading the neighbours."""
    items = validate(read_raw(config)["items"].table, ITEMS, config.sources.max_text_bytes).accepted
    return dict(zip(items["id"].to_pylist(), items["title"].to_pylist(), strict=True))


def search(
    config: Config, ref: str, k: int, item_id: str | None = None, text: str | None = None
) -> SearchResult:
    """The ``k`` nearest items to an item id or to a text, by cosine similarity."""
    if (item_id is None) == (text is None):
        raise MarcBatchError("give exactly one of an item id or a text")
    snapshot = open_snapshot(Store(config.store), ref)
    index = faiss.deserialize_index(np.frombuffer(snapshot.index_bytes("item"), dtype=np.uint8))
    query = _query_vector(config, snapshot, item_id, text)
    scores, labels = index.search(query, k + (item_id is not None))
    ids, _ = snapshot.matrix("item")
    id_map = IdMap.for_ids(pa.array(ids.tolist(), pa.string()))
    names = titles(config)
    neighbours = [
        Neighbour(id=found, score=float(score), title=names.get(found))
        for found, score in zip(id_map.to_catalogue(labels[0]), scores[0], strict=True)
        if found is not None and found != item_id
    ][:k]
    return SearchResult(
        version=snapshot.version,
        snapshot_id=snapshot.manifest.snapshot_id,
        query=item_id if item_id is not None else text,
        neighbours=neighbours,
    )
