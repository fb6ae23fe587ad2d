import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pytest

from marc_batch.config import IndexConfig
from marc_batch.errors import IndexRecallError
from marc_batch.index import IdMap, build_index, read_index, write_index
from marc_batch.index.build import nlist_for
from marc_batch.index.recall import exact_neighbours, recall_at_k


def clustered(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Vectors around a few hundred centres, like embeddings of a catalogue with genres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((100, dim))
    noise = rng.standard_normal((rows, dim))
    return (centres[rng.integers(0, 100, rows)] + 0.6 * noise).astype(np.float32)


def test_small_catalogues_get_an_exact_index_labelled_with_catalogue_ids() -> None:
    vectors = clustered(500)
    built = build_index(vectors, pa.array([str(10 * i) for i in range(500)]), IndexConfig())
    assert built.report.kind == "flat" and built.report.recall == 1.0 and built.report.native_ids
    scores, labels = built.index.search(
        vectors[:3] / np.linalg.norm(vectors[:3], axis=1, keepdims=True), 1
    )
    assert labels[:, 0].tolist() == [0, 10, 20]
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)


def test_large_catalogues_get_a_tuned_ivf_index_meeting_the_target() -> None:
    vectors = clustered(20_000)
    config = IndexConfig(flat_max_rows=1_000, recall_target=0.97, tuning_queries=300)
    ids = pa.array([f"sku-{i}" for i in range(20_000)])
    built = build_index(vectors, ids, config)
    report = built.report
    assert report.kind == "ivf-flat" and report.nlist == nlist_for(20_000, 64)
    assert report.recall >= 0.97 and report.nprobe >= 1 and not report.native_ids
    # The stored nprobe reproduces the recall on fresh queries.
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = unit[np.random.default_rng(1).choice(20_000, 200, replace=False)]
    truth = exact_neighbours(unit, queries, 10)
    assert (
        recall_at_k(built.index.search(queries, 10)[1], IdMap.for_ids(ids).faiss_ids[truth]) >= 0.9
    )


def test_an_index_that_cannot_meet_its_target_is_refused() -> None:
    vectors = clustered(20_000, seed=3)
    config = IndexConfig(flat_max_rows=1_000, recall_target=0.999, max_nprobe=1, tuning_queries=200)
    with pytest.raises(IndexRecallError, match=r"below the target 0\.999; it is not published"):
        build_index(vectors, pa.array([str(i) for i in range(20_000)]), config)


@pytest.mark.parametrize(
    ("ids", "native"),
    [
        (["1", "2", "-3"], True),
        (["1", "007"], False),
        (["1", "x"], False),
        (["9223372036854775808"], False),
    ],
)
def test_ids_are_native_only_when_they_round_trip(ids: list[str], native: bool) -> None:
    id_map = IdMap.for_ids(pa.array(ids))
    assert id_map.native is native
    assert id_map.to_catalogue(id_map.to_faiss(ids)) == ids
    assert id_map.to_faiss(["missing"]).tolist() == [-1]


def test_index_files_memory_map_in_another_process(tmp_path: Path) -> None:
    vectors = clustered(5_000)
    built = build_index(
        vectors, pa.array([str(i) for i in range(5_000)]), IndexConfig(flat_max_rows=100)
    )
    path = tmp_path / "items.faiss"
    with path.open("wb") as stream:
        write_index(built.index, stream)
    np.save(tmp_path / "q.npy", vectors[:5])
    code = (
        "import faiss, numpy as np, sys;"
        "i = faiss.read_index(sys.argv[1], faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY);"
        "q = np.load(sys.argv[2]); faiss.normalize_L2(q); print(i.search(q, 1)[1][:, 0].tolist())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "q.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[0, 1, 2, 3, 4]"
    assert faiss.extract_index_ivf(read_index(path)).nprobe == built.report.nprobe
