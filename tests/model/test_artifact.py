"""The artifact round-trips exactly, is refused when tampered with, and is registered."""

from pathlib import Path

import numpy as np
import pytest
import torch

from marc_batch.errors import ArtifactError
from marc_batch.model.artifact import (
    ArtifactManifest,
    _listing,
    content_version,
    load_artifact,
    save_artifact,
    staging_dir,
    verify_artifact,
)
from marc_batch.model.backbone import Backbone, weights_sha256
from marc_batch.model.marc import MarcEncoder
from marc_batch.model.registry import Registry
from tests.model.conftest import tiny_model_config

USERS = ["user likes red movie and comedy", "user likes blue drama", "user old"]


def adapted_encoder(backbone_dir: Path) -> MarcEncoder:
    torch.manual_seed(0)
    config = tiny_model_config(backbone_dir)
    backbone = Backbone.load(backbone_dir)
    backbone.add_lora(config.lora)
    with torch.no_grad():
        for name, parameter in backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.2)
    return MarcEncoder(backbone, config)


def save(encoder: MarcEncoder, directory: Path, backbone_dir: Path) -> str:
    manifest = save_artifact(
        encoder, directory, str(backbone_dir), weights_sha256(backbone_dir), {"valid_auc": 0.5}
    )
    return manifest.version


@pytest.mark.parametrize("family", ["bert", "qwen"])
def test_round_trip_reproduces_the_embeddings(
    family: str, bert_dir: Path, qwen_dir: Path, tmp_path: Path
) -> None:
    backbone_dir = bert_dir if family == "bert" else qwen_dir
    encoder = adapted_encoder(backbone_dir)
    expected = encoder.encode(USERS, "user")
    save(encoder, tmp_path / "artifact", backbone_dir)
    loaded, config = load_artifact(tmp_path / "artifact")
    np.testing.assert_allclose(loaded.encode(USERS, "user"), expected, atol=1e-5)
    assert config.first_adapted == encoder.backbone.num_layers - 1
    assert not list((tmp_path / "artifact").rglob("*.bin")), "weights must be safetensors"


def test_version_is_a_content_hash(bert_dir: Path, tmp_path: Path) -> None:
    first = save(adapted_encoder(bert_dir), tmp_path / "a", bert_dir)
    second = save(adapted_encoder(bert_dir), tmp_path / "b", bert_dir)
    assert first == second
    assert verify_artifact(tmp_path / "a").version == first


def test_a_tampered_artifact_is_refused(bert_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "artifact"
    save(adapted_encoder(bert_dir), directory, bert_dir)
    heads = directory / "heads.safetensors"
    data = bytearray(heads.read_bytes())
    data[-1] ^= 0xFF
    heads.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"heads\.safetensors does not match its sha256"):
        load_artifact(directory)


def test_an_added_file_is_refused(bert_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "artifact"
    save(adapted_encoder(bert_dir), directory, bert_dir)
    (directory / "backbone" / "pytorch_model.bin").write_bytes(b"not a weight file")
    with pytest.raises(ArtifactError, match="not in the manifest"):
        load_artifact(directory)


def test_registry_lists_versions_and_tracks_current(bert_dir: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    with pytest.raises(ArtifactError, match="no current model"):
        registry.current()
    staged = staging_dir(registry.root)
    version = save(adapted_encoder(bert_dir), staged, bert_dir)
    assert registry.register(staged) == version
    again = staging_dir(registry.root)
    save(adapted_encoder(bert_dir), again, bert_dir)
    assert registry.register(again) == version
    entries = registry.versions()
    assert [(e.version, e.current, e.k) for e in entries] == [(version, True, 8)]
    assert not list(registry.root.glob(".staging-*"))
    encoder, config = registry.load()
    assert config.metrics == {"valid_auc": 0.5}
    assert encoder.encode(USERS, "user").shape == (3, 8)


@pytest.mark.parametrize("version", ["../../etc", "/etc", "0123456789abcdef/..", "CURRENT", ""])
def test_registry_refuses_versions_that_are_not_ids(tmp_path: Path, version: str) -> None:
    registry = Registry(tmp_path / "models")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ArtifactError, match="is not a model version"):
        registry.config(version)
    with pytest.raises(ArtifactError, match="is not a model version"):
        registry.load(version)
    registry.root.mkdir()
    (registry.root / "current.json").write_text('{"version": "../../x"}')
    with pytest.raises(ArtifactError, match="is not a model version"):
        registry.current()
    (registry.root / "current.json").write_text("garbage")
    with pytest.raises(ArtifactError, match=r"current\.json: unreadable"):
        registry.current()


def test_files_replaced_with_a_matching_manifest_are_refused_by_the_registry(
    bert_dir: Path, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "models")
    staged = staging_dir(registry.root)
    version = save(adapted_encoder(bert_dir), staged, bert_dir)
    registry.register(staged)
    directory = registry.path(version)
    heads = directory / "heads.safetensors"
    data = bytearray(heads.read_bytes())
    data[-1] ^= 0xFF
    heads.write_bytes(bytes(data))
    files = _listing(directory)
    manifest = ArtifactManifest(version=content_version(files), files=files)
    (directory / "manifest.json").write_text(manifest.model_dump_json())
    assert verify_artifact(directory).version != version
    with pytest.raises(ArtifactError, match=f"hash to version .* not {version}; refusing"):
        registry.load(version)
