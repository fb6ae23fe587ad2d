"""BAHE users in a run: behaviours new to the model encoded once, then users shard by shard.

Before the shard tasks run, the driver reads the behaviour vectors the
store already holds for this model (verified against the newest snapshot's
manifest), encodes with the frozen lower layers only the distinct behaviours
of the run's users that are not among them, and writes those into the
transaction, so the next run of the same model finds them too. Each user
shard is then handed exactly the vectors its users' sequences hold (a
``.vectors`` checkpoint next to its texts), and its task runs only the upper
layers per user. A behaviour shared by many users, shards or nights is
encoded once per model. A backfill reaches here with only the users whose
text (and so history) changed, so it re-runs the upper layers for those alone.
"""

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
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


def _table(keys: list[str], vectors: Mapping[str, np.ndarray], dim: int) -> pa.Table:
    flat = np.stack([vectors[key] for key in keys]) if keys else np.zeros((0, dim), np.float32)
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), dim),
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
    """Encode the behaviours of the staged user shards ``keys`` new to this model; stage each
    shard's vectors; write the new ones into ``txn``."""
    if not keys:
        return BehaviourCounts()
    runner = loaded_bahe(config, txn.model.version)
    users = {key: _users(checkpoints.texts(key)) for key in keys}
    known = _matrix(read_behaviours(txn.store, txn.base, txn.model.version))
    dim = runner.marc.backbone.hidden_size
    with runner.lock:
        everyone = [user for shard in users.values() for user in shard]
        wanted = runner.bahe.needed(everyone)
        fresh = runner.bahe.needed(everyone, known)
        computed = runner.bahe.encode_behaviours(fresh, config.encode.token_budget)
        per_shard = {key: behaviour_keys(runner.bahe.needed(users[key])) for key in keys}
    encoded = {key: vector.float().cpu().numpy() for key, vector in computed.items()}
    if encoded:
        txn.write_behaviours(list(encoded), np.stack(list(encoded.values())))
    vectors = {**known, **encoded}
    for key in keys:
        checkpoints.stage_vectors(key, _table(per_shard[key], vectors, dim))
    return BehaviourCounts(
        distinct=len(wanted), reused=len(wanted) - len(fresh), encoded=len(fresh)
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
