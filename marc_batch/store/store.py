"""A store root and its version log: which versions exist and what each one is.

The log is the set of manifest files ``_manifests/v<version>.json``. A version
exists exactly when its manifest does, and a manifest is only ever created
whole (put-if-absent) and never modified, so listing the log and reading a
manifest need no locks and never see a partial commit.
"""

import re

from marc_batch.config.store import StoreConfig
from marc_batch.errors import ManifestError, SnapshotNotFound
from marc_batch.store.backends import Backend, open_backend
from marc_batch.store.channels import read_channel
from marc_batch.store.manifest import Manifest, parse_manifest
from marc_batch.store.paths import MANIFESTS, manifest_path, manifest_version


class Store:
    def __init__(self, config: StoreConfig, backend: Backend | None = None) -> None:
        self.config = config
        self.backend = backend or open_backend(config)
        self._manifests: dict[int, Manifest] = {}

    def versions(self) -> list[int]:
        """Committed versions, oldest first."""
        found = (manifest_version(info.path) for info in self.backend.list(MANIFESTS))
        return sorted(v for v in found if v is not None)

    def manifest(self, version: int) -> Manifest:
        """The manifest of ``version``; cached, since a committed manifest never changes."""
        if version not in self._manifests:
            path = manifest_path(version)
            try:
                data = self.backend.read_bytes(path)
            except FileNotFoundError:
                raise SnapshotNotFound(f"no version {version} in {self.backend.uri}") from None
            manifest = parse_manifest(data, path)
            if manifest.version != version:
                raise ManifestError(f"{path}: says it is version {manifest.version}")
            self._manifests[version] = manifest
        return self._manifests[version]

    def head(self) -> Manifest | None:
        versions = self.versions()
        return self.manifest(versions[-1]) if versions else None

    def resolve(self, ref: str | int) -> Manifest:
        """A version number, a snapshot id (32 hex digits) or a channel name."""
        if isinstance(ref, int) or re.fullmatch(r"v?\d+", ref):
            return self.manifest(int(str(ref).lstrip("v")))
        if re.fullmatch(r"[0-9a-f]{32}", ref):
            for version in reversed(self.versions()):
                if self.manifest(version).snapshot_id == ref:
                    return self.manifest(version)
            raise SnapshotNotFound(f"no retained snapshot with id {ref}")
        found = read_channel(self.backend, ref)
        if found is None:
            raise SnapshotNotFound(f"no channel {ref!r} in {self.backend.uri}")
        return self.manifest(found[0].version)
