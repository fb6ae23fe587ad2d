import subprocess
import sys

import numpy as np
import pyarrow as pa

from marc_batch.encode.shards import shard_of


def test_shards_are_stable_across_processes_and_balanced() -> None:
    ids = [f"item-{i}" for i in range(20_000)]
    here = shard_of(pa.array(ids), 8)
    code = (
        "from marc_batch.encode.shards import shard_of;print(shard_of(['item-7', 'x'], 8).tolist())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str([int(here[7]), int(shard_of(["x"], 8)[0])])
    counts = np.bincount(here, minlength=8)
    assert counts.min() > 0.9 * 20_000 / 8 and counts.max() < 1.1 * 20_000 / 8


def test_a_single_shard_takes_everything() -> None:
    assert set(shard_of(["a", "b", "c"], 1).tolist()) == {0}
