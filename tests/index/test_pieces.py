"""An index built from pieces (shards) is the index built from the whole matrix."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from marc_batch.config import IndexConfig
from marc_batch.index import IdMap, build_index
from marc_batch.index.build import build_from_pieces
from marc_batch.index.recall import exact_labels, exact_neighbours
from marc_batch.index.vectors import Vectors, in_one_piece, normalised, survey
from tests.index.test_index import clustered
from tests.index.test_ondisk import written


def in_pieces(vectors: np.ndarray, ids: pa.Array, size: int) -> Vectors:
    """``vectors`` cut into pieces of ``size`` rows (the last one shorter, one of them empty)."""

    def pieces():
        yield ids.slice(0, 0), vectors[:0]
        for start in range(0, len(vectors), size):
            yield ids.slice(start, size), vectors[start : start + size]

    return Vectors(len(vectors), vectors.shape[1], pieces)


@pytest.mark.parametrize(
    "config",
    [IndexConfig(flat_max_rows=1_000, tuning_queries=300), IndexConfig()],
    ids=["ivf", "flat"],
)
def test_pieces_merge_into_the_index_of_the_whole(config: IndexConfig, tmp_path: Path) -> None:
    vectors = clustered(12_000)
    ids = pa.array([f"sku-{i}" for i in range(12_000)])
    whole = build_index(vectors, ids, config)
    merged = build_from_pieces(in_pieces(vectors, ids, 1_700), config, tmp_path)

    assert merged.index.ntotal == whole.index.ntotal == 12_000
    assert merged.report.model_dump(exclude={"build_seconds"}) == whole.report.model_dump(
        exclude={"build_seconds"}
    )
    queries = normalised(vectors[:200])
    np.testing.assert_array_equal(
        merged.index.search(queries, 10)[1], whole.index.search(queries, 10)[1]
    )
    assert written(merged.index) == written(whole.index)
    assert [p.name for p in tmp_path.iterdir()] == (
        ["lists.ivfdata"] if config.flat_max_rows < 12_000 else []
    )


def test_exact_search_over_pieces_is_exact_search_over_the_whole() -> None:
    vectors = normalised(clustered(5_000))
    ids = pa.array([str(7 * i) for i in range(5_000)])
    queries = vectors[::50]
    truth = IdMap.for_ids(ids).faiss_ids[exact_neighbours(vectors, queries, 10)]
    np.testing.assert_array_equal(
        exact_labels(in_pieces(vectors, ids, 333), True, queries, 10), truth
    )


def test_the_sample_and_the_id_scheme_do_not_depend_on_piece_boundaries() -> None:
    vectors = normalised(clustered(3_000))
    ids = pa.array([str(i) for i in range(3_000)])
    one = survey(in_one_piece(vectors, ids), 500, seed=4)
    many = survey(in_pieces(vectors, ids, 128), 500, seed=4)
    np.testing.assert_array_equal(one.sample, many.sample)
    assert one.native and many.native and len(one.sample) == 500
    mixed = pa.array([*ids.to_pylist()[:-1], "sku-last"])
    assert not survey(in_pieces(vectors, mixed, 128), 0, seed=4).native
