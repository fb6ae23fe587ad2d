"""Moving a channel: only ever to a snapshot that has just been verified byte for byte.

Ranking teams read whatever a channel points at, so before ``prod`` moves
(forward to a new snapshot, or back to the one before) every file of the
target is re-read against its manifest. A corrupt target leaves the channel
where it was.
"""

from marc_batch.errors import CorruptFile, SnapshotNotFound
from marc_batch.store import Manifest, Store, channels
from marc_batch.store.validate import validate


def verified(store: Store, manifest: Manifest) -> Manifest:
    problems = validate(store, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CorruptFile(f"version {manifest.version}: {problems[0]}{more}")
    return manifest


def promote_new(store: Store, manifest: Manifest, channel: str) -> None:
    """Move ``channel`` forward to a just-committed version, once every byte is verified.

    Forward only: if a newer version reached the channel meanwhile, it stays.
    """
    channels.advance(store.backend, channel, verified(store, manifest))


def finish_publish(store: Store, channel: str) -> Manifest | None:
    """Publish the newest version if a run committed it but died before moving ``channel``.

    A run commits, then verifies and moves its channel; killed in between, it
    leaves the channel one version behind the store. That version is
    published here (verified first) and returned. A version the channel was
    rolled back from, or showed before, was withdrawn on purpose and stays
    unpublished (None), as does a version meant for another channel, and
    everything when the channel is up to date.
    """
    head = store.head()
    found = channels.read_channel(store.backend, channel)
    if head is None or found is None or found[0].version >= head.version:
        return None
    if head.channel != channel:
        return None
    pointer = found[0]
    skipped = range(pointer.version + 1, head.version + 1)
    if any(v in pointer.rolled_back or v in pointer.history for v in skipped):
        return None
    promote_new(store, head, channel)
    return head


def publish(store: Store, ref: str | int, channel: str, expected: int | None = None) -> Manifest:
    """Point ``channel`` at ``ref`` after verifying it; with ``expected``, compare-and-swap."""
    target = verified(store, store.resolve(ref))
    channels.move(store.backend, channel, target, expected=expected)
    return target


def rollback(store: Store, channel: str) -> Manifest:
    """Point ``channel`` back at its previous target, after verifying that target."""
    found = channels.read_channel(store.backend, channel)
    if found is None:
        raise SnapshotNotFound(f"no channel {channel!r}")
    pointer = found[0]
    earlier = [v for v in pointer.history if v != pointer.version]
    if not earlier:
        raise SnapshotNotFound(f"channel {channel!r} has no earlier target to roll back to")
    verified(store, store.manifest(earlier[0]))
    return channels.rollback(store.backend, channel, store.manifest)
