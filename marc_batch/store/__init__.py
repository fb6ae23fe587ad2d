"""The snapshot store: immutable, checksummed embedding snapshots with atomic commits.

See ``docs/store.md`` for the guarantees and the on-disk format.
"""

from marc_batch.store.commit import Transaction
from marc_batch.store.manifest import (
    Conservation,
    DataFile,
    IndexFile,
    Manifest,
    ModelArtifact,
)
from marc_batch.store.snapshot import Snapshot, open_snapshot
from marc_batch.store.store import Store

__all__ = [
    "Conservation",
    "DataFile",
    "IndexFile",
    "Manifest",
    "ModelArtifact",
    "Snapshot",
    "Store",
    "Transaction",
    "open_snapshot",
]
