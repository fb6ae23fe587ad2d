from datetime import UTC, datetime
from pathlib import Path

import pytest

import marc_batch.pipeline.shards as shards_module
from marc_batch.pipeline.refresh import refresh
from marc_batch.store import Store
from tests.tiny import config_for


def file_digests(config) -> list[tuple[str, int, int, str]]:
    manifest = Store(config.store).resolve("latest")
    return sorted((f.entity, f.shard, f.rows, f.sha256) for f in manifest.files)


def test_a_rerun_after_a_crash_encodes_only_unfinished_shards_and_writes_identical_files(
    tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shards_module, "utc_now", lambda: datetime(2026, 1, 1, tzinfo=UTC))
    reference = config_for(tmp_path / "reference", registry)
    refresh(reference)

    encoded: list[int] = []
    real = shards_module.encode_rows

    def encoder_dying_on_third_shard(runtime, part):
        encoded.append(part.num_rows)
        if len(encoded) == 3:
            raise RuntimeError("worker killed mid-shard")
        return real(runtime, part)

    crashed = config_for(tmp_path / "crashed", registry)
    monkeypatch.setattr(shards_module, "encode_rows", encoder_dying_on_third_shard)
    with pytest.raises(RuntimeError, match="worker killed"):
        refresh(crashed)
    store = Store(crashed.store)
    assert store.versions() == []
    saved = [f.path for f in store.backend.list("_checkpoints") if f.path.endswith(".rows.parquet")]
    assert len(saved) == 2

    encoded.clear()
    monkeypatch.setattr(
        shards_module,
        "encode_rows",
        lambda runtime, part: encoded.append(1) or real(runtime, part),
    )
    refresh(crashed)
    shards_written = len(Store(crashed.store).resolve("latest").files)
    assert len(encoded) == shards_written - 2
    assert file_digests(crashed) == file_digests(reference)
    assert list(store.backend.list("_checkpoints")) == []
