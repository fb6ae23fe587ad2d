"""Garbage collection: expire old versions, then delete files nothing retained refers to.

Retained versions are the newest ``keep`` plus every channel target. The
manifests of other versions are deleted first, then every data, deletes,
index or behaviour file that no retained manifest lists, every staging leftover of a
crashed commit, every statistics or alignment file no retained manifest
lists, and the shard checkpoints of runs that never committed
(a failed or conflicting run leaves them for its re-run), but only if it
is older than the grace period: a publisher still writing its data files
(which no manifest lists yet) is never robbed of them as long as it
finishes within the grace period.
"""

import time
from dataclasses import dataclass, field

from marc_batch.errors import ManifestError, StoreError
from marc_batch.store.channels import list_channels
from marc_batch.store.paths import (
    BEHAVIOURS,
    CHANNELS,
    CHECKPOINTS,
    DATA,
    DELETES,
    INDEXES,
    MANIFESTS,
    META,
    STAGING_MARK,
    check_relative,
    manifest_path,
)
from marc_batch.store.store import Store


@dataclass
class GcReport:
    kept_versions: list[int]
    expired_versions: list[int]
    deleted_files: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False


def _ours(path: str) -> bool:
    try:
        check_relative(path)
    except ManifestError:
        return False
    return True


def collect_garbage(
    store: Store, keep: int | None = None, grace_seconds: float | None = None, dry_run: bool = False
) -> GcReport:
    keep = store.config.keep_versions if keep is None else keep
    grace = store.config.gc_grace_seconds if grace_seconds is None else grace_seconds
    if keep < 1:
        raise StoreError("gc must keep at least one version")
    versions = store.versions()
    targets = {pointer.version for pointer in list_channels(store.backend).values()}
    kept = sorted(set(versions[-keep:]) | (targets & set(versions)))
    expired = [v for v in versions if v not in kept]
    referenced = {path for v in kept for path in store.manifest(v).all_paths()}
    cutoff = time.time() - grace
    report = GcReport(kept, expired, dry_run=dry_run)
    for prefix in (META, DATA, DELETES, INDEXES, BEHAVIOURS, MANIFESTS, CHANNELS, CHECKPOINTS):
        for info in store.backend.list(prefix):
            staged = STAGING_MARK in info.path or prefix == CHECKPOINTS
            unreferenced = (
                prefix in (META, DATA, DELETES, INDEXES, BEHAVIOURS) and info.path not in referenced
            )
            if (staged or unreferenced) and info.mtime < cutoff and _ours(info.path):
                report.deleted_files.append(info.path)
                report.freed_bytes += info.size
    if not dry_run:
        # Manifests go first: a crash midway must never leave a manifest whose files are gone.
        for version in expired:
            store.backend.delete(manifest_path(version))
        for path in report.deleted_files:
            store.backend.delete(path)
    return report
