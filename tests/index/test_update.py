"""A backfill's index: the parent's index changed, not rebuilt, held to the same recall gate."""

from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pytest

from marc_batch.config import IndexConfig
from marc_batch.errors import IndexBuildError
from marc_batch.index import build_index
from marc_batch.index.update import ParentIndex, update_index
from marc_batch.index.vectors import Vectors, in_one_piece, normalised
from tests.index.test_index import clustered

IVF = IndexConfig(flat_max_rows=1_000, tuning_queries=300)


def change(
    rows: int, dropped: int, added: int
) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """Ids before; vectors and ids after dropping ``dropped`` rows and adding ``added``; touched."""
    before = [str(i) for i in range(rows)]
    after = [*before[dropped:], *(str(rows + i) for i in range(added))]
    vectors = np.vstack([clustered(rows)[dropped:], clustered(added, seed=7)])
    return before, vectors, after, [*before[:dropped], *after[rows - dropped :]]


def pieces(vectors: np.ndarray, ids: list[str], added: int) -> tuple[Vectors, Vectors]:
    """Every live vector in pieces of 1,000 rows, and the last ``added`` of them on their own."""
    live = Vectors(
        len(ids),
        vectors.shape[1],
        lambda: (
            (pa.array(ids[i : i + 1000]), vectors[i : i + 1000]) for i in range(0, len(ids), 1000)
        ),
    )
    return live, in_one_piece(vectors[len(ids) - added :], pa.array(ids[len(ids) - added :]))


def centroids(index: faiss.Index) -> np.ndarray:
    quantizer = faiss.extract_index_ivf(index).quantizer
    return quantizer.reconstruct_n(0, quantizer.ntotal)


@pytest.mark.parametrize("config", [IVF, IndexConfig()], ids=["ivf", "flat"])
def test_an_update_removes_and_adds_without_rebuilding_and_proves_recall(
    config: IndexConfig, tmp_path: Path
) -> None:
    before, vectors, after, touched = change(6_000, 100, 150)
    parent = build_index(clustered(6_000), pa.array(before), config).index
    lists = centroids(parent) if config is IVF else None

    built = update_index(
        ParentIndex(parent, True, pa.array(touched)), *pieces(vectors, after, 150), config, tmp_path
    )

    assert built is not None and built.report.updated
    assert built.index.ntotal == len(after) == built.report.rows
    assert built.report.recall >= config.recall_target
    if lists is not None:  # proved near the change and across the catalogue
        assert built.report.tuning_queries == config.tuning_queries
    assert built.report.factory == build_index(vectors, pa.array(after), config).report.factory
    if lists is not None:  # the trained lists were kept, not retrained
        np.testing.assert_array_equal(centroids(built.index), lists)
        faiss.extract_index_ivf(built.index).nprobe = 64  # near-exact, to check labels
    # Every new vector is found under its own id; no removed id is ever returned.
    labels = built.index.search(normalised(vectors), 1)[1][:, 0]
    assert (labels[-150:] == np.arange(6_000, 6_150)).all()
    assert not np.isin(labels, np.arange(100)).any()


def test_a_new_id_scheme_cannot_be_updated(tmp_path: Path) -> None:
    before, vectors, after, touched = change(2_000, 0, 1)
    after[-1] = touched[-1] = "sku-new"  # no longer all int64: every FAISS id changes
    parent = build_index(clustered(2_000), pa.array(before), IVF).index
    update = ParentIndex(parent, True, pa.array(touched))
    assert update_index(update, *pieces(vectors, after, 1), IVF, tmp_path) is None


def test_lists_that_miss_the_target_give_way_to_a_fresh_build(tmp_path: Path) -> None:
    before, vectors, after, touched = change(6_000, 10, 10)
    parent = build_index(clustered(6_000), pa.array(before), IVF).index
    strict = IVF.model_copy(update={"recall_target": 0.999, "max_nprobe": 1})
    update = ParentIndex(parent, True, pa.array(touched))
    assert update_index(update, *pieces(vectors, after, 10), strict, tmp_path) is None


def test_an_index_that_disagrees_with_its_snapshot_is_refused(tmp_path: Path) -> None:
    before, vectors, after, _ = change(2_000, 10, 0)
    parent = build_index(clustered(2_000), pa.array(before), IVF).index
    untold = ParentIndex(parent, True, pa.array([], pa.string()))
    with pytest.raises(IndexBuildError, match="holds 2000 untouched vectors, its snapshot 1990"):
        update_index(untold, *pieces(vectors, after, 0), IVF, tmp_path)
