"""Lists on disk: merged, changed and written exactly as FAISS would in memory."""

import io
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pytest

from marc_batch.index import build_index, write_index
from marc_batch.index.ids import removable_ids
from marc_batch.index.ondisk import changed, merge_on_disk, open_stored
from marc_batch.index.vectors import normalised
from tests.index.test_index import clustered
from tests.index.test_update import IVF, change


def written(index: faiss.Index) -> bytes:
    stream = io.BytesIO()
    write_index(index, stream)
    return stream.getvalue()


@pytest.mark.parametrize("codec", ["Flat", "SQ8"])
@pytest.mark.parametrize("rows", [40, 6_000], ids=["sparse-lists", "full-lists"])
def test_lists_merged_on_disk_are_written_as_faiss_writes_them_in_memory(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], codec: str, rows: int
) -> None:
    vectors = normalised(clustered(6_000))
    trained = faiss.index_factory(32, f"IVF64_HNSW32,{codec}", faiss.METRIC_INNER_PRODUCT)
    trained.train(vectors)
    in_memory, files = faiss.clone_index(trained), []
    for number, start in enumerate(range(0, rows, rows // 3 + 1)):
        part = faiss.clone_index(trained)
        piece = slice(start, min(start + rows // 3 + 1, rows))
        part.add_with_ids(vectors[piece], 5 * np.arange(piece.start, piece.stop))
        files.append(tmp_path / f"part-{number}.faiss")
        faiss.write_index(part, str(files[-1]))
        in_memory.merge_from(part, 0)

    on_disk = merge_on_disk(trained, files, tmp_path / "lists.ivfdata")

    assert on_disk.ntotal == rows
    assert written(on_disk) == faiss.serialize_index(in_memory).tobytes()
    out, err = capfd.readouterr()
    assert out == "" and "resizing" in err  # FAISS's note never reaches a command's stdout


@pytest.mark.parametrize("chunk_bytes", [64 * 2**20, 20_000], ids=["one-chunk", "many-chunks"])
def test_a_stored_index_changes_as_faiss_changes_it_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr("marc_batch.index.ondisk.CHUNK_BYTES", chunk_bytes)
    before, vectors, after, touched = change(6_000, 100, 150)
    in_memory = build_index(clustered(6_000), pa.array(before), IVF).index
    stored = tmp_path / "parent.faiss"
    stored.write_bytes(written(in_memory))
    parent = open_stored(stored)
    removed = removable_ids(pa.array(touched), True)
    added = [(np.arange(6_000, 6_150), normalised(vectors[-150:]))]

    result = changed(parent, removed, added, tmp_path)

    in_memory.remove_ids(removed)
    in_memory.add_with_ids(added[0][1], added[0][0])
    assert result.ntotal == in_memory.ntotal == len(after) and parent.ntotal == 6_000
    assert written(result) == written(in_memory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changed.ivfdata", "parent.faiss"]
