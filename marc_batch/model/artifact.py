"""The versioned encoder artifact: safetensors and JSON only, verified on every load.

Layout of a version directory::

    manifest.json       version id + sha256 and size of every other file
    config.json         ArtifactConfig: the model config, base backbone and its sha256, metrics
    backbone/           the backbone with LoRA merged (config + model.safetensors) and tokenizer
    heads.safetensors   the compression heads

The version id is a hash of the file list with their digests, so two
artifacts with the same id are byte-identical. A file that is missing,
added, or changed makes loading fail with one line naming it.
"""

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_file, save_file

from marc_batch.config import ModelConfig
from marc_batch.errors import ArtifactError, ConfigError
from marc_batch.model.backbone import Backbone
from marc_batch.model.marc import MarcEncoder

FORMAT = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
HEADS = "heads.safetensors"
BACKBONE = "backbone"


class ArtifactConfig(BaseModel):
    """What an encoder version is: enough to rebuild it and to know where it came from."""

    model_config = ConfigDict(extra="forbid")

    format: int = FORMAT
    model: ModelConfig
    base_backbone: str
    base_sha256: str
    model_type: str
    pooling: str
    hidden_size: int
    num_layers: int
    first_adapted: int
    metrics: dict[str, float]


def check_user_encoder(config: ModelConfig, artifact: ArtifactConfig, version: str) -> None:
    """Refuse to run a model with a config that names the other user encoder.

    A BAHE model's users read through the text path (or the reverse) would give
    vectors from a path the model was never trained on; the artifact records
    which one it was trained with (``model.user_encoder`` and ``model.bahe``).
    """
    trained = artifact.model.user_encoder
    if config.user_encoder != trained:
        raise ConfigError(
            f"model {version} was trained with model.user_encoder = {trained!r} but the config "
            f"says {config.user_encoder!r}; set it to {trained!r} or use a model trained for "
            f"{config.user_encoder!r}"
        )


class FileEntry(BaseModel):
    sha256: str
    size: int


class ArtifactManifest(BaseModel):
    """The integrity record of an artifact; ``version`` is the content hash of ``files``."""

    model_config = ConfigDict(extra="forbid")

    format: int = FORMAT
    version: str
    files: dict[str, FileEntry]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_version(files: dict[str, FileEntry]) -> str:
    lines = "".join(f"{name}\t{entry.sha256}\n" for name, entry in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def _listing(directory: Path) -> dict[str, FileEntry]:
    return {
        path.relative_to(directory).as_posix(): FileEntry(
            sha256=file_sha256(path), size=path.stat().st_size
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def save_artifact(
    encoder: MarcEncoder, directory: Path, base_backbone: str, base_sha256: str, metrics: dict
) -> ArtifactManifest:
    """Write the encoder to a new directory (merging LoRA into a copy of the backbone)."""
    directory.mkdir(parents=True, exist_ok=False)
    backbone = encoder.backbone
    backbone.merged().save_pretrained(directory / BACKBONE)
    backbone.tokenizer.save_pretrained(directory / BACKBONE)
    heads = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in encoder.heads.state_dict().items()
    }
    save_file(heads, str(directory / HEADS))
    config = ArtifactConfig(
        model=encoder.config,
        base_backbone=base_backbone,
        base_sha256=base_sha256,
        model_type=backbone.base.config.model_type,
        pooling=backbone.pooling,
        hidden_size=backbone.hidden_size,
        num_layers=backbone.num_layers,
        first_adapted=backbone.first_adapted,
        metrics=metrics,
    )
    (directory / CONFIG).write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
    files = _listing(directory)
    manifest = ArtifactManifest(version=content_version(files), files=files)
    (directory / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return manifest


def _read_json(path: Path, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ArtifactError(f"{path}: unreadable: {detail}") from None


def verify_artifact(directory: Path) -> ArtifactManifest:
    """Check every file against the manifest and the version against the files."""
    if not (directory / MANIFEST).is_file():
        raise ArtifactError(f"{directory}: not a model artifact (no {MANIFEST})")
    manifest: ArtifactManifest = _read_json(directory / MANIFEST, ArtifactManifest)
    actual = _listing(directory)
    for name in sorted(set(manifest.files) | set(actual)):
        if name not in actual:
            raise ArtifactError(f"{directory}: file {name} is missing")
        if name not in manifest.files:
            raise ArtifactError(f"{directory}: file {name} is not in the manifest")
        if actual[name].sha256 != manifest.files[name].sha256:
            raise ArtifactError(f"{directory}: file {name} does not match its sha256; refusing")
    if content_version(actual) != manifest.version:
        raise ArtifactError(f"{directory}: version {manifest.version} does not match its files")
    return manifest


def load_artifact(
    directory: Path, version: str | None = None
) -> tuple[MarcEncoder, ArtifactConfig]:
    """Verify, then rebuild the encoder; safetensors only, nothing executes from the files.

    With ``version`` (the registry's name for the directory), the files must
    hash to it: files replaced together with a manifest rewritten to match
    them are still refused.
    """
    manifest = verify_artifact(directory)
    if version is not None and manifest.version != version:
        raise ArtifactError(
            f"{directory}: its files hash to version {manifest.version}, not {version}; refusing"
        )
    config: ArtifactConfig = _read_json(directory / CONFIG, ArtifactConfig)
    backbone = Backbone.load(directory / BACKBONE, pooling=config.pooling)
    backbone.first_adapted = config.first_adapted
    encoder = MarcEncoder(backbone, config.model)
    encoder.heads.load_state_dict(load_file(str(directory / HEADS)))
    encoder.eval()
    return encoder, config


def staging_dir(root: Path) -> Path:
    """A fresh directory path under ``root`` (same filesystem, so registering is a rename)."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=root)) / "artifact"
