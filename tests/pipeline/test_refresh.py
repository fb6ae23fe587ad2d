from pathlib import Path

import numpy as np
import pytest

from marc_batch.data.ingest import ingest
from marc_batch.errors import IndexRecallError
from marc_batch.model.registry import Registry
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store, open_snapshot
from marc_batch.store.channels import read_channel
from tests.tiny import ITEMS, USERS, config_for


def test_refresh_publishes_a_complete_indexed_snapshot(tmp_path: Path, registry: Path) -> None:
    config = config_for(tmp_path, registry)
    report = refresh(config)
    assert report.rows == {"item": ITEMS, "user": USERS} and report.quarantined == 0
    assert report.indexes["item"].kind == "flat" and report.indexes["item"].recall == 1.0

    store = Store(config.store)
    manifest = store.resolve("latest")
    assert (manifest.version, manifest.snapshot_id) == (report.version, report.snapshot_id)
    assert manifest.model.version == Registry(registry).current()
    assert manifest.quality["item.recall@10"] == 1.0
    assert {f.shard for f in manifest.data_files("item")} == {0, 1, 2}
    assert [index.entity for index in manifest.indexes] == ["item"]

    # What the snapshot holds is what the registered encoder produces, L2-normalised.
    snapshot = open_snapshot(store, "latest", verify=True)
    ids, matrix = snapshot.matrix("item")
    assert sorted(ids.tolist()) == sorted(str(i) for i in range(ITEMS))
    encoder, _ = Registry(registry).load()
    texts = ingest(config)[0].item_texts
    direct = encoder.encode(texts["text"].to_pylist(), "item")
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    order = {identifier: row for row, identifier in enumerate(texts["id"].to_pylist())}
    np.testing.assert_allclose(matrix, direct[[order[i] for i in ids.tolist()]], atol=1e-4)


def test_an_index_below_its_recall_target_publishes_nothing(
    tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(tmp_path, registry)
    first = refresh(config)

    def missed(*_: object, **__: object) -> None:
        # The gate itself is proven in tests/index; here only its outcome matters.
        raise IndexRecallError("ivf-flat index reaches recall@10 0.900 at nprobe 512")

    monkeypatch.setattr("marc_batch.pipeline.indexes.build_from_pieces", missed)
    with pytest.raises(IndexRecallError):
        refresh(config)
    store = Store(config.store)
    assert store.versions() == [first.version]
    assert read_channel(store.backend, "latest")[0].version == first.version
