"""Files recorded with a snapshot besides its rows: statistics and alignment maps.

Each is written under ``meta/`` before the manifest and listed in it with
its size and sha256, so it is committed, verified (``snapshots validate``,
publishing) and collected by ``gc`` exactly like a data file, and a reader
refuses one whose bytes differ from the manifest's with one line.

:func:`describe` is what refresh, backfill and compaction commit with: it
computes the snapshot's statistics against its parent and, when the model
version changed, fits and publishes the map from the new space into the
parent's. :func:`space_map` walks those maps back through the version log
so a reader can ask for any snapshot's vectors in the space of an earlier
model version.
"""

import json

from marc_batch.errors import SnapshotNotFound, SpaceMismatch, StoreError
from marc_batch.store import alignment
from marc_batch.store.alignment import AlignmentMap, Fitter
from marc_batch.store.manifest import AlignmentFiles, AttachedFile, Manifest
from marc_batch.store.paths import new_meta_path
from marc_batch.store.reader import read_verified
from marc_batch.store.statistics import statistics
from marc_batch.store.store import Store
from marc_batch.store.writer import HashingSink


def write_meta(store: Store, kind: str, extension: str, data: bytes) -> AttachedFile:
    """Write one file under ``meta/`` (a fresh name) and describe it for the manifest."""
    path = new_meta_path(kind, extension)
    with store.backend.writing(path) as handle:
        sink = HashingSink(handle)
        sink.write(data)
    return AttachedFile(path=path, size=sink.size, sha256=sink.digest.hexdigest())


def read_statistics(store: Store, manifest: Manifest) -> dict | None:
    """The statistics recorded with ``manifest`` (checked against its sha256), if any."""
    if manifest.statistics is None:
        return None
    data = read_verified(store, manifest, manifest.statistics)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise StoreError(f"{manifest.statistics.path}: not valid JSON: {exc}") from None


def load_alignment(
    store: Store, manifest: Manifest, kind: alignment.Kind | None = None
) -> AlignmentMap:
    """The map published with ``manifest`` from its model's space into its parent's, verified."""
    files = manifest.alignment
    if files is None:
        raise SpaceMismatch(f"version {manifest.version} publishes no alignment map")
    weights, metadata = (read_verified(store, manifest, f) for f in (files.weights, files.metadata))
    published = alignment.Published(weights, metadata)
    loaded = alignment.load(published, files.metadata.path, kind)
    if (loaded.from_model, loaded.to_model) != (files.from_model, files.to_model):
        raise SpaceMismatch(
            f"{files.metadata.path}: maps {loaded.from_model!r} -> {loaded.to_model!r}, the "
            f"manifest says {files.from_model!r} -> {files.to_model!r}"
        )
    return loaded


def space_map(store: Store, manifest: Manifest, space: str) -> AlignmentMap:
    """One map from ``manifest``'s model space into ``space``'s, through the version log.

    From the snapshot back: a published map is applied and its target
    snapshot visited next; a snapshot of the same model as its parent
    (a backfill, a compaction, a refresh with an unchanged model) passes to
    the parent as it is. Anything else (a model change without a map, an
    expired version, the start of the log) refuses with one line.
    """
    current = manifest
    chain = alignment.identity(manifest.model.version, manifest.k)
    while current.model.version != space:
        step = current.alignment
        target = step.to_version if step else current.parent_version
        try:
            parent = None if target is None else store.manifest(target)
        except SnapshotNotFound:
            parent = None
        if parent is None or (step is None and parent.model.version != current.model.version):
            raise SpaceMismatch(
                f"no chain of alignment maps leads from version {manifest.version} "
                f"(model {manifest.model.version!r}) to model {space!r}"
            )
        if step is not None:
            chain = chain.then(load_alignment(store, current))
        current = parent
    return chain


def describe(store: Store, manifest: Manifest, parent: Manifest | None) -> Manifest:
    """``manifest`` with its statistics (and, across a model change, its alignment map) recorded.

    Called by the commit before the manifest is published: the files it
    writes are unlisted until then, and garbage if the commit never lands.
    """
    fitter = None
    changed = parent is not None and parent.model.version != manifest.model.version
    if changed and manifest.operation == "overwrite":
        fitter = Fitter(manifest.k, parent.k)
    figures = statistics(store, manifest, parent, fitter)
    update: dict = {}
    if fitter is not None and fitter.n:
        assert parent is not None
        maps = {
            kind: fitter.fit(manifest.model.version, parent.model.version, kind)
            for kind in alignment.KINDS
        }
        published = alignment.dump(maps, from_version=manifest.version, to_version=parent.version)
        update["alignment"] = AlignmentFiles(
            from_model=manifest.model.version,
            to_model=parent.model.version,
            to_version=parent.version,
            weights=write_meta(store, "alignment", "safetensors", published.weights),
            metadata=write_meta(store, "alignment", "json", published.metadata),
        )
        figures["alignment"] = json.loads(published.metadata)
    encoded = json.dumps(figures, indent=2, sort_keys=True).encode() + b"\n"
    update["statistics"] = write_meta(store, "statistics", "json", encoded)
    return manifest.model_copy(update=update)


def statistics_between(store: Store, old: Manifest, new: Manifest) -> dict:
    """``new``'s statistics against ``old``: as recorded if ``old`` is its parent, else computed.

    Computing reads both snapshots once more, shard by shard; nothing is written.
    """
    if new.parent_version == old.version and new.statistics is not None:
        recorded = read_statistics(store, new)
        assert recorded is not None
        return {**recorded, "recorded": True}
    return {**statistics(store, new, old), "recorded": False}
