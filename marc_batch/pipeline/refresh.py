"""The full refresh: ingest, encode every item and user, write a snapshot, index it, publish.

Each entity is encoded shard by shard (shard = stable hash of the id), so
memory holds one shard's texts at a time, and each shard becomes its own
Parquet partition. Finished shards are checkpointed, so a re-run after a
crash encodes only the shards that were not finished. The index is built
and recall-checked before the commit: if it misses its target, the
transaction is aborted and the channel keeps pointing at the previous
snapshot. Conservation is checked before anything is published: rows in
= rows embedded + rows quarantined.
"""

from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.data.ingest import IngestReport, ingest
from marc_batch.encode.marc import EntityEmbedder, prepare
from marc_batch.encode.runtime import EncoderRuntime, resolve_device
from marc_batch.encode.shards import shard_of
from marc_batch.encode.stats import EncodeStats
from marc_batch.errors import MarcBatchError
from marc_batch.index import IndexReport, build_index
from marc_batch.index.build import normalised
from marc_batch.model.artifact import MANIFEST, file_sha256
from marc_batch.model.registry import Registry
from marc_batch.pipeline.checkpoints import Checkpoints, shard_key
from marc_batch.store import Store, Transaction
from marc_batch.store.reader import embedding_matrix

ENTITY_TEXTS = {"item": "item_texts", "user": "user_texts"}


class RefreshReport(BaseModel):
    """What a refresh published; ``marc-batch refresh --json`` prints it."""

    run_id: str
    version: int
    snapshot_id: str
    channel: str
    model_version: str
    rows: dict[str, int]
    quarantined: int
    encode: dict[str, dict[str, float]]
    indexes: dict[str, IndexReport]


def utc_now() -> datetime:
    return datetime.now(UTC)


def encode_shard(runtime: EncoderRuntime, part: pa.Table) -> tuple[pa.Table, EncodeStats]:
    """The rows of one shard: ids, unit-length embeddings, text hashes, when they were made."""
    z, stats = runtime.encode(part["text"].to_pylist())
    z = normalised(z)
    rows = pa.table(
        {
            "id": part["id"],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1)), z.shape[1]),
            "text_hash": part["text_hash"],
            "updated_at": pa.repeat(pa.scalar(utc_now(), pa.timestamp("us", tz="UTC")), len(z)),
        }
    )
    return rows, stats


def encode_entity(
    runtime: EncoderRuntime,
    texts: pa.Table,
    txn: Transaction,
    entity: str,
    checkpoints: Checkpoints,
) -> tuple[pa.ChunkedArray, np.ndarray, EncodeStats]:
    """Encode and write one entity shard by shard; return its ids and unit vectors.

    A shard whose checkpoint exists (same model, ids and texts) is read back,
    not re-encoded.
    """
    shards = txn.store.config.shards
    assignment = pa.array(shard_of(texts["id"], shards))
    stats = EncodeStats()
    ids, vectors = [], []
    for shard in range(shards):
        part = texts.filter(pc.equal(assignment, shard))
        if part.num_rows == 0:
            continue
        key = shard_key(txn.model.version, entity, shard, part)
        rows = checkpoints.load(key)
        if rows is None:
            rows, shard_stats = encode_shard(runtime, part)
            checkpoints.save(key, rows)
            stats = stats + shard_stats
        z = embedding_matrix(rows, txn.k)
        stamps = rows["updated_at"].to_numpy().astype("datetime64[us]")
        txn.write(entity, rows["id"], z, rows["text_hash"], updated_at=stamps, shard=shard)
        ids.append(rows["id"])
        vectors.append(z)
    matrix = np.vstack(vectors) if vectors else np.empty((0, txn.k), np.float32)
    return pa.chunked_array([c for a in ids for c in a.chunks], pa.string()), matrix, stats


def check_conservation(report: IngestReport, embedded: dict[str, int]) -> None:
    """Rows in = rows embedded + rows quarantined, for items and users, or nothing is published."""
    for entity, table in (("item", "items"), ("user", "users")):
        counts = report.tables[table]
        if counts.rows_in != embedded[entity] + counts.quarantined:
            raise MarcBatchError(
                f"{table}: {counts.rows_in} rows in but {embedded[entity]} embedded and "
                f"{counts.quarantined} quarantined; refusing to publish"
            )


def refresh(
    config: Config, model_version: str = "current", run_id: str | None = None
) -> RefreshReport:
    """Re-encode everything with ``model_version`` and publish a full snapshot."""
    catalogue, ingested = ingest(config, run_id=run_id)
    registry = Registry(Path(config.model.registry))
    encoder, artifact = registry.load(model_version)
    version = registry.resolve(model_version)
    device = resolve_device(config.encode.device)
    if config.encode.threads:
        torch.set_num_threads(config.encode.threads)
    encoder = prepare(encoder, device)
    txn = Transaction(
        Store(config.store),
        model_version=version,
        model_sha256=file_sha256(registry.path(version) / MANIFEST),
        k=artifact.model.k,
        normalization="l2",
        run_id=ingested.run_id,
    )
    txn.quarantine = {
        f"{table}.{reason}": count
        for table, entry in ingested.tables.items()
        for reason, count in entry.reasons.items()
    }
    checkpoints = Checkpoints(txn.store.backend)
    encoded, indexes, rows = {}, {}, {}
    try:
        for entity, attribute in ENTITY_TEXTS.items():
            embedder = EntityEmbedder(encoder, entity)
            runtime = EncoderRuntime(
                embedder,
                device,
                max_length=min(config.encode.max_length, embedder.max_length),
                token_budget=config.encode.token_budget,
            )
            texts = getattr(catalogue, attribute)
            ids, vectors, stats = encode_entity(runtime, texts, txn, entity, checkpoints)
            rows[entity] = len(ids)
            encoded[entity] = stats.summary()
            txn.quality.update(
                {
                    f"{entity}.texts_per_second": stats.texts_per_second,
                    f"{entity}.padding_ratio": stats.padding_ratio,
                }
            )
            if entity == "item" or config.index.users:
                built = build_index(vectors, ids, config.index)
                report = built.report
                txn.write_index(
                    entity,
                    faiss.serialize_index(built.index).tobytes(),
                    index_type=report.factory,
                    metric=report.metric,
                    rows=report.rows,
                )
                txn.quality.update(index_quality(entity, report))
                indexes[entity] = report
        check_conservation(ingested, rows)
        manifest = txn.commit([config.flows.channel])
    except BaseException:
        txn.abort()
        raise
    checkpoints.clear()
    return RefreshReport(
        run_id=ingested.run_id,
        version=manifest.version,
        snapshot_id=manifest.snapshot_id,
        channel=config.flows.channel,
        model_version=version,
        rows=rows,
        quarantined=ingested.quarantined,
        encode=encoded,
        indexes=indexes,
    )


def index_quality(entity: str, report: IndexReport) -> dict[str, float]:
    """The index's proof of quality, as manifest quality metrics."""
    figures = {
        f"{entity}.recall@{report.recall_k}": report.recall,
        f"{entity}.recall_target": report.recall_target,
        f"{entity}.index_build_seconds": report.build_seconds,
    }
    if report.nprobe is not None:
        figures[f"{entity}.nprobe"] = float(report.nprobe)
        figures[f"{entity}.nlist"] = float(report.nlist or 0)
    return figures
