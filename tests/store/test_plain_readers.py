"""The reading recipes in docs/store.md work with DuckDB, pyarrow and pandas alone."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from marc_batch.config import StoreConfig
from marc_batch.store import Store, Transaction, open_snapshot
from tests.publishing import committed

DOC = Path(__file__).parents[2] / "docs" / "store.md"
RECIPES = re.findall(r"```python plain-reader\n(.*?)```", DOC.read_text(), re.DOTALL)
HIDE_MARC_BATCH = "import sys\nsys.modules['marc_batch'] = None\n"
DUMP = """
import json
import pyarrow as pa
records = items.to_pylist() if isinstance(items, pa.Table) else items.to_dict("records")
with open("out.json", "w") as out:
    json.dump({r["id"]: [float(x) for x in r["embedding"]] for r in records}, out)
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose latest snapshot has three layers: rows, updates, deletes."""
    directory = tmp_path_factory.mktemp("reader")
    store = Store(StoreConfig(root=str(directory / "marc-store")))
    rng = np.random.default_rng(3)
    txn = Transaction(store, model_version="m1", k=8)
    txn.write("item", [str(i) for i in range(100)], rng.standard_normal((100, 8)), ["h"] * 100)
    committed(txn)
    for batch in range(2):
        txn = Transaction(store, model_version="m1", k=8, mode="incremental")
        changed = [str(i) for i in range(batch * 10, batch * 10 + 5)] + [f"new{batch}"]
        txn.write("item", changed, rng.standard_normal((6, 8)), ["h2"] * 6)
        txn.delete("item", [str(90 + batch)])
        committed(txn)
    return directory


def test_recipes_are_present() -> None:
    assert len(RECIPES) == 2


@pytest.mark.parametrize("recipe", RECIPES, ids=["pandas", "duckdb"])
def test_recipe_reads_the_snapshot_without_marc_batch(workdir: Path, recipe: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", HIDE_MARC_BATCH + recipe + DUMP],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads((workdir / "out.json").read_text())
    ids, matrix = open_snapshot(str(workdir / "marc-store")).matrix("item")
    assert sorted(seen) == sorted(ids.tolist())
    for i, vector in zip(ids.tolist(), matrix, strict=True):
        assert np.allclose(seen[i], vector)
