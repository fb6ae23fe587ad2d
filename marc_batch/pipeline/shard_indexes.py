"""Shard indexes: each shard's vectors added to the index by a shard task, merged by the driver.

Assigning a vector to its inverted list is the costly part of building an
IVF index (a walk of the coarse quantizer's graph), so it runs where the
shards run: once the driver has trained the quantizer on a sample, it saves
the trained empty index under ``_checkpoints/``, and one task per shard
reads it with the shard's saved rows, adds the vectors and saves the
shard's index next to them. The driver then merges the shard indexes in
shard order with FAISS's ``merge_from`` (:mod:`marc_batch.index.build`), so
the result is the index one process would have built. What travels through
the scheduler is an :class:`IndexJob` of a few strings.
"""

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.entities import Entity
from marc_batch.errors import StoreError
from marc_batch.index.build import Parts
from marc_batch.index.ids import IdMap
from marc_batch.index.vectors import normalised
from marc_batch.pipeline.checkpoints import Checkpoints
from marc_batch.pipeline.shards import ShardJob
from marc_batch.store.backends import open_backend
from marc_batch.store.reader import embedding_matrix


class IndexJob(BaseModel):
    entity: Entity
    shard: int
    rows: str  # the checkpoint key of the shard's saved rows
    trained: str  # the checkpoint name of the trained empty index
    native: bool  # the id scheme of the whole index

    @property
    def part(self) -> str:
        """Where the shard's index is saved."""
        return f"{self.rows}.{self.trained}"


IndexRunner = Callable[[Config, list[IndexJob]], None]
"""Runs index jobs somewhere (``index_serially`` here, Prefect tasks in the flows)."""


def index_job(config: Config, job: IndexJob) -> None:
    """Add one shard's saved vectors to a copy of the trained empty index and save it."""
    checkpoints = Checkpoints(open_backend(config.store))
    rows = checkpoints.load(job.rows)
    if rows is None:
        raise StoreError(f"shard {job.shard} of {job.entity} has no saved rows to index")
    index = checkpoints.load_index(job.trained)
    k = rows.schema.field("embedding").type.list_size
    labels = IdMap.for_ids(rows["id"], job.native).faiss_ids
    index.add_with_ids(normalised(embedding_matrix(rows, k)), labels)
    checkpoints.save_index(job.part, index)


def index_serially(config: Config, jobs: list[IndexJob]) -> None:
    for job in jobs:
        index_job(config, job)


def shard_parts(
    config: Config, checkpoints: Checkpoints, jobs: list[ShardJob], run: IndexRunner
) -> Parts:
    """Shard indexes made by ``run`` from the shards' saved rows, in shard order."""

    def parts(empty: faiss.Index, native: bool, directory: Path) -> Iterator[Path]:
        data = faiss.serialize_index(empty).tobytes()
        trained = "trained-" + hashlib.sha256(data).hexdigest()[:32]
        checkpoints.save_index(trained, empty)
        ordered = sorted(jobs, key=lambda j: j.shard)
        index_jobs = [
            IndexJob(entity=j.entity, shard=j.shard, rows=j.key, trained=trained, native=native)
            for j in ordered
        ]
        run(config, index_jobs)
        for job in index_jobs:
            path = directory / f"{job.entity}-{job.shard}.faiss"
            checkpoints.copy_index(job.part, path)
            checkpoints.drop_index(job.part)
            yield path
        checkpoints.drop_index(trained)

    return parts
