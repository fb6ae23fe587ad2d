"""A publisher process for the crash and concurrency tests (run as a script).

``replace`` writes the "new" snapshot of the crash tests over the "old" one;
``append`` commits one-row incremental snapshots, one per line of output.
"""

import argparse

import numpy as np

from marc_batch.config import S3Config, StoreConfig
from marc_batch.store import Store, Transaction
from tests.publishing import committed

K = 16
ROWS = 1000


def batch(prefix: str, n: int, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Deterministic rows, so a test can tell exactly which snapshot it reads."""
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}{i}" for i in range(n)]
    return ids, rng.standard_normal((n, K)).astype(np.float32), [f"{prefix}h{i}" for i in ids]


def small_files_store(root: str, endpoint: str | None) -> Store:
    """Tiny row groups and files, so that a crash can land between them."""
    config = StoreConfig(
        root=root,
        row_group_bytes=2**16,
        file_bytes=2**16,
        shards=2,
        s3=S3Config(endpoint_url=endpoint),
    )
    return Store(config)


def publish(store: Store, prefix: str, seed: int) -> int:
    ids, vectors, hashes = batch(prefix, ROWS, seed)
    txn = Transaction(store, model_version="m1", k=K)
    half = ROWS // 2
    txn.write("item", ids[:half], vectors[:half], hashes[:half], shard=0)
    txn.write("item", ids[half:], vectors[half:], hashes[half:], shard=1)
    return committed(txn).version


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--endpoint")
    parser.add_argument("mode", choices=("replace", "append"))
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--commits", type=int, default=1)
    args = parser.parse_args()
    store = small_files_store(args.root, args.endpoint)
    if args.mode == "replace":
        print(publish(store, "new", 2))
        return
    rng = np.random.default_rng(args.worker)
    for i in range(args.commits):
        txn = Transaction(store, model_version="m1", k=K, mode="incremental")
        txn.write("item", [f"w{args.worker}-{i}"], rng.standard_normal((1, K)), [f"{i}"])
        print(committed(txn).version, flush=True)


if __name__ == "__main__":
    main()
