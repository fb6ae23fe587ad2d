"""A local registry of encoder versions and the pointer to the ``current`` one.

Versions are directories named by their content hash, so registering the
same artifact twice is a no-op and a version can never change under a
reader. ``current.json`` is replaced atomically.
"""

import json
import os
import re
import shutil
from pathlib import Path

from pydantic import BaseModel, ValidationError

from marc_batch.errors import ArtifactError
from marc_batch.model.artifact import (
    ArtifactConfig,
    load_artifact,
    save_artifact,
    staging_dir,
    verify_artifact,
)
from marc_batch.model.marc import MarcEncoder

CURRENT = "current.json"
VERSION = re.compile(r"^[0-9a-f]{16}$")  # a content hash (see artifact.content_version)


class RegistryEntry(BaseModel):
    version: str
    current: bool
    k: int
    metrics: dict[str, float]


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, version: str) -> Path:
        """The directory of ``version``; anything but a version id (a path) is refused."""
        if not isinstance(version, str) or not VERSION.match(version):
            raise ArtifactError(f"{version!r} is not a model version (16 hex digits, or 'current')")
        return self.root / version

    def register(self, staged: Path, make_current: bool = True) -> str:
        """Move a saved artifact into the registry (verified first) and return its version."""
        version = verify_artifact(staged).version
        target = self.path(version)
        if target.exists():
            shutil.rmtree(staged.parent)
        else:
            os.replace(staged, target)
            shutil.rmtree(staged.parent, ignore_errors=True)
        if make_current:
            self.set_current(version)
        return version

    def add(
        self,
        encoder: MarcEncoder,
        backbone: str,
        backbone_sha256: str,
        metrics: dict[str, float],
        make_current: bool = True,
    ) -> str:
        """Save ``encoder`` as an artifact and register it; return its version.

        Staged under the registry (same filesystem, so registering is a
        rename), verified, moved into place; the staging directory is gone
        afterwards whatever happened, so a failed save leaves no debris.
        ``backbone`` and ``backbone_sha256`` name and pin the base the
        encoder was adapted from.
        """
        staged = staging_dir(self.root)
        try:
            save_artifact(encoder, staged, backbone, backbone_sha256, metrics)
            return self.register(staged, make_current=make_current)
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)

    def set_current(self, version: str) -> None:
        if not (self.path(version) / "manifest.json").is_file():
            raise ArtifactError(f"no model version {version} in {self.root}")
        temporary = self.root / f".{CURRENT}.tmp"
        temporary.write_text(json.dumps({"version": version}) + "\n", encoding="utf-8")
        os.replace(temporary, self.root / CURRENT)

    def find_current(self) -> str | None:
        """The current version, or None before the first one is registered."""
        pointer = self.root / CURRENT
        if not pointer.is_file():
            return None
        try:
            version = json.loads(pointer.read_text(encoding="utf-8"))["version"]
        except (ValueError, TypeError, KeyError):
            raise ArtifactError(f"{pointer}: unreadable; register a model again") from None
        self.path(version)
        return version

    def current(self) -> str:
        found = self.find_current()
        if found is None:
            raise ArtifactError(f"no current model in {self.root}; run 'marc-batch train' first")
        return found

    def versions(self) -> list[RegistryEntry]:
        current = self.find_current()
        entries = []
        for directory in sorted(self.root.glob("*/manifest.json")):
            version = directory.parent.name
            config = self.config(version)
            entries.append(
                RegistryEntry(
                    version=version,
                    current=version == current,
                    k=config.model.k,
                    metrics=config.metrics,
                )
            )
        return entries

    def config(self, version: str = "current") -> ArtifactConfig:
        """A version's recorded settings and metrics, without loading (or verifying) weights."""
        path = self.path(self.resolve(version)) / "config.json"
        if not path.is_file():
            raise ArtifactError(f"no model version {version} in {self.root}")
        try:
            return ArtifactConfig.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, UnicodeDecodeError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise ArtifactError(f"{path}: unreadable: {detail}") from None

    def resolve(self, version: str = "current") -> str:
        """The version id that ``version`` ('current' or an id) names."""
        return self.current() if version == "current" else version

    def load(self, version: str = "current") -> tuple[MarcEncoder, ArtifactConfig]:
        """The verified encoder; its files must hash to the version that names them."""
        resolved = self.resolve(version)
        return load_artifact(self.path(resolved), resolved)
