"""Moving a channel: only ever to a snapshot that has just been verified byte for byte.

Ranking teams read whatever a channel points at, so before ``prod`` moves
(forward to a new snapshot, or back to the one before) every file of the
target is re-read against its manifest. A corrupt target leaves the channel
where it was. A re-run of a run that committed but died before moving its
channel publishes that commit the same way (:func:`finish_publish`).
"""

from collections.abc import Collection

from marc_batch.errors import CorruptFile, IncompatibleModel, SnapshotNotFound
from marc_batch.store import Manifest, Store, channels
from marc_batch.store.channels import ChannelPointer
from marc_batch.store.validate import validate


def verified(store: Store, manifest: Manifest) -> Manifest:
    """``manifest``, once every file it lists was re-read and matched; else one-line CorruptFile."""
    problems = validate(store, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CorruptFile(f"version {manifest.version}: {problems[0]}{more}")
    return manifest


def check_compatible(
    store: Store, target: Manifest, channel: str, protected: Collection[str]
) -> None:
    """Refuse to point a protected channel that serves one model at another model's vectors.

    Ranking teams train on what a protected channel serves; a snapshot of a
    new model version may replace it only if its compatibility record was
    measured against the model the channel serves now and kept enough of the
    CTR model's lift (docs/store.md). A channel's first snapshot, and any of
    the same model, pass; so does a rollback, which returns to what the
    channel served before.
    """
    found = channels.read_channel(store.backend, channel) if channel in protected else None
    if found is None:
        return
    served = store.manifest(found[0].version).model.version
    if served == target.model.version:
        return
    record = target.compatibility
    where = f"version {target.version} (model {target.model.version}) for channel {channel!r}"
    override = "; promote it with --allow-incompatible to publish it anyway"
    if record is None or record.previous_model != served:
        raise IncompatibleModel(
            f"{where}: no compatibility was measured against model {served}, which the "
            f"channel serves{override}"
        )
    if record.figures.get("compatible") is not True:
        kept = record.figures.get("valid_kept_lift_mapped")
        share = f"{kept:.1%} of its validation lift" if isinstance(kept, float) else "no lift"
        raise IncompatibleModel(
            f"{where}: the CTR model trained on model {served}'s vectors keeps {share} on the "
            f"mapped vectors, below evaluate.compatibility.min_kept_lift{override}"
        )


def promote_new(
    store: Store, manifest: Manifest, channel: str, protected: Collection[str] = ()
) -> bool:
    """Move ``channel`` forward to a just-committed version, once every byte is verified.

    Forward only: if a newer version reached the channel meanwhile, it stays
    (False), as it does if the channel was rolled back from this version.
    A protected channel also passes :func:`check_compatible` first.
    """
    check_compatible(store, manifest, channel, protected)
    return channels.advance(store.backend, channel, verified(store, manifest))


def withheld(pointer: ChannelPointer, head: Manifest) -> str | None:
    """Why ``head``, newer than ``pointer`` shows, is not for a re-run to publish; None if it is.

    Versions are linear, so publishing ``head`` also passes every version
    between: none of them may be one the channel was rolled back from, or
    showed and was moved back from (those were withdrawn on purpose), and
    ``head`` itself must have been committed by a run publishing to this
    channel (another channel's, or one from a compaction or an older release
    that names none, is someone else's decision).
    """
    skipped = range(pointer.version + 1, head.version + 1)
    rolled = [v for v in skipped if v in pointer.rolled_back]
    if rolled:
        return f"and it was rolled back from version {rolled[0]}"
    moved = [v for v in skipped if v in pointer.history]
    if moved:
        return f"and it was moved back from version {moved[0]}"
    if head.channel is None:
        return "which names no channel to publish to (a compaction, or an older release)"
    if head.channel != pointer.channel:
        return f"which was committed for channel {head.channel!r}"
    return None


def finish_publish(store: Store, channel: str, protected: Collection[str] = ()) -> Manifest | None:
    """Publish the store's head if a run committed it for ``channel`` but died before moving it.

    A run commits, then verifies and moves its channel; killed in between, it
    leaves the channel behind the store. The head is published here (verified
    byte for byte first) and returned, unless :func:`withheld` says it was
    withdrawn or is not this channel's. None too when the channel does not
    exist yet or is up to date. A protected channel also passes
    :func:`check_compatible`, as it would have for the run that died.
    """
    head = store.head()
    found = channels.read_channel(store.backend, channel)
    if head is None or found is None or found[0].version >= head.version:
        return None
    if withheld(found[0], head) is not None:
        return None
    return head if promote_new(store, head, channel, protected) else None


def publish(
    store: Store,
    ref: str | int,
    channel: str,
    expected: int | None = None,
    protected: Collection[str] = (),
) -> Manifest:
    """Point ``channel`` at ``ref`` after verifying it; with ``expected``, compare-and-swap.

    ``protected`` names the channels :func:`check_compatible` guards (none:
    the caller chose to publish an incompatible model).
    """
    target = store.resolve(ref)
    check_compatible(store, target, channel, protected)
    verified(store, target)
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
