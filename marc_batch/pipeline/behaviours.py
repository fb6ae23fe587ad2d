"""BAHE users in a run: behaviours new to the model encoded once, then users shard by shard.

Before the shard tasks run, the driver reads the behaviour vectors the
store already holds for this model (verified against the newest snapshot's
manifest), then goes through the staged user shards one at a time: it
encodes with the frozen lower layers only the distinct behaviours of the
shard's users that neither the store nor an earlier shard holds, and writes
those into the transaction (a file per shard; compaction merges them), so
the next run of the same model finds them too. Each user shard is handed
exactly the vectors its users' sequences hold (a ``.vectors`` checkpoint
next to its texts), and its task runs only the upper layers per user. A
behaviour shared by many users, shards or nights is encoded once per model.
A backfill reaches here with only the users whose text (and so history)
changed, so it re-runs the upper layers for those alone.
"""

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from pydantic import BaseModel

from marc_batch.config import Config
from marc_batch.encode.batching import batches_of
from marc_batch.encode.stats import EncodeStats
from marc_batch.errors import ConfigError
from marc_batch.model.bahe import UserBehaviours, behaviour_keys, encode_users, users_from_table
from marc_batch.model.registry import Registry
from marc_batch.pipeline.checkpoints import Checkpoints
from marc_batch.pipeline.encoders import loaded_bahe
from marc_batch.store import Transaction
from marc_batch.store.behaviours import read_behaviours
from marc_batch.tracing import traced


class BehaviourCounts(BaseModel):
    """Distinct behaviours the run's users hold: how many came from the store, how many were new."""

    distinct: int = 0
    reused: int = 0
    encoded: int = 0


def _users(part: pa.Table) -> list[UserBehaviours]:
    if "behaviours" not in part.column_names:
        raise ConfigError(
            "the user texts carry no behaviours; a BAHE model needs model.user_encoder = 'bahe'"
        )
    return users_from_table(part)


def _matrix(table: pa.Table) -> dict[str, np.ndarray]:
    """(key, vector) rows as key -> float32 vector."""
    if not table.num_rows:
        return {}
    values = table["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    rows = np.array(values.reshape(table.num_rows, -1), dtype=np.float32)  # writable
    return dict(zip(table["key"].to_pylist(), rows, strict=True))


def _table(keys: list[str], vectors: np.ndarray) -> pa.Table:
    """(key, vector) rows of ``vectors`` ((len(keys), dim) float32)."""
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1)), vectors.shape[1]
            ),
        }
    )


def stage_run_behaviours(
    config: Config, txn: Transaction, checkpoints: Checkpoints, keys: list[str]
) -> BehaviourCounts | None:
    """:func:`stage_behaviours` for a BAHE model's run; None for a text model's."""
    artifact = Registry(Path(config.model.registry)).config(txn.model.version)
    if artifact.model.user_encoder != "bahe":
        return None
    return stage_behaviours(config, txn, checkpoints, keys)


@traced("stage_behaviours")
def stage_behaviours(
    config: Config, txn: Transaction, checkpoints: Checkpoints, keys: list[str]
) -> BehaviourCounts:
    """Shard by shard, encode the behaviours of the staged user shards ``keys`` that neither
    the store nor an earlier shard holds, write them into ``txn`` and stage each shard's vectors.

    The driver holds one shard's users at a time; the vectors it holds are the model's
    distinct behaviours as one Arrow table, which grows with the catalogue, not with users.
    """
    if not keys:
        return BehaviourCounts()
    runner = loaded_bahe(config, txn.model.version)
    stored = read_behaviours(txn.store, txn.base, txn.model.version).combine_chunks()
    held = stored
    reused = np.zeros(stored.num_rows, dtype=bool)
    encoded = 0
    for key in keys:
        with runner.lock:
            texts = runner.bahe.needed(_users(checkpoints.texts(key)))
        wanted = pa.array(behaviour_keys(texts), pa.string())
        found = pc.is_in(wanted, value_set=held["key"]).to_numpy(zero_copy_only=False)
        fresh = [text for text, hit in zip(texts, found, strict=True) if not hit]
        if fresh:
            with runner.lock:
                computed = runner.bahe.encode_behaviours(fresh, config.encode.token_budget)
            vectors = torch.stack(list(computed.values())).float().cpu().numpy()
            txn.write_behaviours(list(computed), vectors)
            new = _table(list(computed), vectors)
            held = pa.concat_tables([held, new.cast(held.schema)]) if held.num_rows else new
            held = held.combine_chunks()
            encoded += len(fresh)
        from_store = pc.index_in(wanted, value_set=stored["key"]).drop_null()
        reused[from_store.to_numpy(zero_copy_only=False)] = True
        checkpoints.stage_vectors(key, held.take(pc.index_in(wanted, value_set=held["key"])))
    return BehaviourCounts(
        distinct=int(reused.sum()) + encoded, reused=int(reused.sum()), encoded=encoded
    )


@traced("encode_bahe_users")
def encode_bahe_users(
    config: Config, model_version: str, checkpoints: Checkpoints, key: str, part: pa.Table
) -> tuple[np.ndarray, EncodeStats]:
    """z of one staged user shard: its staged behaviour vectors, then the upper layers per user.

    A behaviour missing from the staged vectors (none was staged) is encoded here.
    """
    runner = loaded_bahe(config, model_version)
    users = _users(part)
    staged = checkpoints.vectors(key)
    known = {k: torch.from_numpy(v) for k, v in _matrix(staged).items()} if staged else {}
    budget = config.encode.token_budget
    started = time.perf_counter()
    with runner.lock:
        z, _ = encode_users(runner.marc, runner.bahe, users, known, budget)
        lengths = runner.bahe.sequence_lengths(users)
    batches = batches_of(lengths, budget)
    stats = EncodeStats(
        texts=len(users),
        tokens=sum(lengths),
        padded_tokens=sum(len(batch) * max(lengths[i] for i in batch) for batch in batches),
        batches=len(batches),
        seconds=time.perf_counter() - started,
    )
    return z, stats
