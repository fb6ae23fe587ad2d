"""Shard jobs: the unit of encoding work that a thread, a Dask worker or a Ray actor runs.

The driver splits an entity's texts by a stable hash of the id, stages each
shard's texts in the store and describes it by a small JSON-able
:class:`ShardJob`; :func:`encode_job` is all a worker runs. Results come back
through the store too (see :mod:`marc_batch.pipeline.checkpoints`), so what
travels through the scheduler is a few strings, not the catalogue, and the
driver assembles shards in shard order whatever order they finished in.
"""

import functools
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from marc_batch.clock import utc_now
from marc_batch.config import Config
from marc_batch.data.sharded import ShardedCatalogue
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.encode.shards import shard_of
from marc_batch.encode.stats import EncodeStats
from marc_batch.entities import ENTITIES, Entity
from marc_batch.errors import StoreError
from marc_batch.index.vectors import Piece, Vectors, normalised
from marc_batch.pipeline.behaviours import encode_bahe_users
from marc_batch.pipeline.checkpoints import Checkpoints, shard_key
from marc_batch.pipeline.encoders import entity_runtime, loaded_encoder
from marc_batch.store import Transaction
from marc_batch.store.backends import open_backend
from marc_batch.store.failpoints import SHARD_ENCODED, failpoint
from marc_batch.store.reader import embedding_matrix
from marc_batch.tracing import traced


class ShardJob(BaseModel):
    entity: Entity
    shard: int
    key: str
    rows: int
    done: bool = False


ShardRunner = Callable[[Config, str, list[ShardJob]], list[EncodeStats]]
"""Runs shard jobs somewhere (``encode_serially`` here, Prefect tasks in the flows)."""


def _stage(
    checkpoints: Checkpoints,
    model_version: str,
    entity: Entity,
    shard: int,
    parts: Callable[[], Iterator[pa.Table]],
    rows: int,
) -> ShardJob:
    """Stage one shard's ``rows`` texts (read twice, part by part), unless its rows are saved."""
    key = shard_key(model_version, entity, shard, parts())
    done = checkpoints.finished(key)
    if not done:
        checkpoints.stage(key, parts())
    return ShardJob(entity=entity, shard=shard, key=key, rows=rows, done=done)


@traced("stage_shards")
def stage_shards(
    checkpoints: Checkpoints, model_version: str, entity: Entity, texts: pa.Table, shards: int
) -> list[ShardJob]:
    """One job per non-empty shard of ``texts``, cut by the stable hash of the id."""
    assignment = pa.array(shard_of(texts["id"], shards))
    parts = ((shard, texts.filter(pc.equal(assignment, shard))) for shard in range(shards))
    return [
        _stage(checkpoints, model_version, entity, shard, lambda p=part: iter([p]), part.num_rows)
        for shard, part in parts
        if part.num_rows
    ]


@traced("stage_shards")
def stage_catalogue(
    checkpoints: Checkpoints, model_version: str, catalogue: ShardedCatalogue
) -> dict[Entity, list[ShardJob]]:
    """One job per non-empty shard of an ingestion by shard; the driver holds one part at a time."""
    jobs: dict[Entity, list[ShardJob]] = {entity: [] for entity in ENTITIES}
    for entity, entity_jobs in jobs.items():
        for shard in range(catalogue.shards):
            if rows := catalogue.rows(entity, shard):
                parts = functools.partial(catalogue.parts, entity, shard)
                job = _stage(checkpoints, model_version, entity, shard, parts, rows)
                entity_jobs.append(job)
    return jobs


@traced("encode_rows")
def encode_rows(runtime: EncoderRuntime, part: pa.Table) -> tuple[pa.Table, EncodeStats]:
    """The rows of one shard encoded from its texts (see :func:`rows_of`)."""
    z, stats = runtime.encode(part["text"].to_pylist())
    return rows_of(part, z), stats


def rows_of(part: pa.Table, z: np.ndarray) -> pa.Table:
    """The rows of one shard: ids, unit-length embeddings, text hashes, when they were made."""
    z = normalised(z)
    rows = pa.table(
        {
            "id": part["id"],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1)), z.shape[1]),
            "text_hash": part["text_hash"],
            "updated_at": pa.repeat(pa.scalar(utc_now(), pa.timestamp("us", tz="UTC")), len(z)),
            "title": part["title"]
            if "title" in part.column_names
            else pa.nulls(len(z), pa.string()),
        }
    )
    return rows


def encode_job(config: Config, model_version: str, job: ShardJob) -> EncodeStats:
    """Encode one staged shard and save its rows; a shard already saved costs nothing."""
    checkpoints = Checkpoints(open_backend(config.store))
    if checkpoints.finished(job.key):
        return EncodeStats()
    encoder, _ = loaded_encoder(config, model_version)
    if job.entity == Entity.USER and encoder.config.user_encoder == "bahe":
        part = checkpoints.texts(job.key)
        z, stats = encode_bahe_users(config, model_version, checkpoints, job.key, part)
        rows = rows_of(part, z)
    else:
        runtime = entity_runtime(config, model_version, job.entity)
        rows, stats = encode_rows(runtime, checkpoints.texts(job.key))
    failpoint(SHARD_ENCODED)
    checkpoints.save(job.key, rows)
    return stats


def encode_serially(config: Config, model_version: str, jobs: list[ShardJob]) -> list[EncodeStats]:
    return [encode_job(config, model_version, job) for job in jobs]


def stage_all(
    checkpoints: Checkpoints, model_version: str, texts: dict[Entity, pa.Table], shards: int
) -> dict[Entity, list[ShardJob]]:
    """Every entity's shards staged; the scheduler then sees only the small jobs."""
    return {
        entity: stage_shards(checkpoints, model_version, entity, table, shards)
        for entity, table in texts.items()
    }


@traced("run_jobs")
def run_jobs(
    encode: ShardRunner, config: Config, model_version: str, jobs: dict[Entity, list[ShardJob]]
) -> dict[Entity, EncodeStats]:
    """Run every entity's jobs in one go (one cluster session), and total the stats per entity."""
    flat = [job for entity_jobs in jobs.values() for job in entity_jobs if not job.done]
    stats = {entity: EncodeStats() for entity in jobs}
    for job, result in zip(flat, encode(config, model_version, flat) if flat else [], strict=True):
        stats[job.entity] = stats[job.entity] + result
    return stats


def _saved_rows(checkpoints: Checkpoints, job: ShardJob) -> pa.Table:
    rows = checkpoints.load(job.key)
    if rows is None:
        raise StoreError(f"shard {job.shard} of {job.entity} has no saved rows")
    if rows.num_rows > job.rows:  # fewer is caught by the conservation check
        raise StoreError(f"shard {job.shard} of {job.entity} saved more rows than it was given")
    return rows


@traced("collect_shards")
def collect_shards(txn: Transaction, checkpoints: Checkpoints, jobs: list[ShardJob]) -> int:
    """Write every job's saved rows into ``txn`` in shard order; return how many.

    One shard's rows are held at a time: the snapshot's files grow shard by
    shard, and the index reads the shards again (:func:`shard_vectors`).
    """
    written = 0
    for job in sorted(jobs, key=lambda j: j.shard):
        rows = _saved_rows(checkpoints, job)
        written += rows.num_rows
        txn.write(
            job.entity,
            rows["id"],
            embedding_matrix(rows, txn.k),
            rows["text_hash"],
            updated_at=rows["updated_at"].to_numpy().astype("datetime64[us]"),
            shard=job.shard,
            titles=rows["title"] if "title" in rows.column_names else None,
        )
        txn.close_partition(job.entity, job.shard)
    return written


def shard_vectors(checkpoints: Checkpoints, jobs: list[ShardJob], k: int) -> Vectors:
    """The saved shards' ids and vectors, in shard order, read one shard per piece."""
    ordered = sorted(jobs, key=lambda j: j.shard)

    def pieces() -> Iterator[Piece]:
        for job in ordered:
            rows = _saved_rows(checkpoints, job)
            yield rows["id"], embedding_matrix(rows, k)

    return Vectors(sum(job.rows for job in jobs), k, pieces)
