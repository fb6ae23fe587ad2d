"""Writing a snapshot: data files first, the manifest last, then the channels.

The commit point is the creation of ``_manifests/v<N>.json`` with
put-if-absent: of all publishers that try version N exactly one succeeds,
and until it does no reader can see any of its files. A publisher that loses
re-reads the log and rebases: an incremental change whose ids do not overlap
the ids changed by the versions committed meanwhile (and whose model and k
match) is re-applied on top of the new head and retried. Otherwise (an
overlap, an overwrite committed meanwhile, a different model) the publisher
gets :class:`SnapshotConflict` and nothing it wrote is visible.
Channels are moved only after the manifest is committed, so a channel never
points at a version that does not exist.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.errors import ConservationError, SnapshotConflict, StoreError
from marc_batch.store import channels
from marc_batch.store.backends import PreconditionFailed
from marc_batch.store.failpoints import failpoint
from marc_batch.store.manifest import (
    Conservation,
    DataFile,
    Dtype,
    IndexFile,
    Manifest,
    ModelArtifact,
    new_snapshot_id,
    utc_now,
)
from marc_batch.store.paths import ENTITIES, check_entity, manifest_path, new_index_path
from marc_batch.store.reader import merged_table, read_data_file
from marc_batch.store.store import Store
from marc_batch.store.writer import (
    DELETES_SCHEMA,
    HashingSink,
    PartitionWriter,
    build_rows,
    row_schema,
)

Mode = Literal["overwrite", "incremental", "compaction"]
MAX_REBASES = 1000


@dataclass
class Change:
    """What one transaction adds: its files and the ids it wrote or deleted, per entity."""

    files: list[DataFile] = field(default_factory=list)
    written: dict[str, pa.Array] = field(default_factory=dict)
    deleted: dict[str, pa.Array] = field(default_factory=dict)

    def touched(self, entity: str) -> pa.Array:
        parts = [a for a in (self.written.get(entity), self.deleted.get(entity)) if a is not None]
        return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


class Transaction:
    """Collects one snapshot's rows, then commits them atomically (or not at all).

    ``mode='overwrite'`` writes a complete snapshot; ``'incremental'`` adds
    rows and deletes to the current head, referencing its files;
    ``'compaction'`` rewrites the head's live rows into fresh files. An
    overwrite or compaction fails with :class:`SnapshotConflict` if another
    version is committed while it runs, since it would silently undo it.
    """

    def __init__(
        self,
        store: Store,
        *,
        model_version: str,
        k: int,
        model_sha256: str | None = None,
        dtype: Dtype | None = None,
        normalization: Literal["none", "l2"] = "l2",
        mode: Mode = "overwrite",
        run_id: str | None = None,
    ) -> None:
        self.store = store
        self.mode = mode
        self.base = store.head()
        self.model = ModelArtifact(version=model_version, sha256=model_sha256)
        self.k = k
        self.dtype: Dtype = dtype or store.config.dtype
        self.normalization = normalization
        self.run_id = run_id
        self.schema = row_schema(k, self.dtype)
        self.writers: dict[tuple[str, str, int], PartitionWriter] = {}
        self.written: dict[str, list[pa.Array]] = {}
        self.deleted: dict[str, list[pa.Array]] = {}
        self.indexes: list[IndexFile] = []
        self.quarantine: dict[str, int] = {}
        self.quality: dict[str, float] = {}
        self.conservation: dict[str, Conservation] = {}
        if mode == "incremental":
            self._check_compatible(self.base)

    def _check_compatible(self, other: Manifest | None) -> None:
        if other is None:
            raise StoreError("an incremental snapshot needs a parent; the store is empty")
        mine = (self.model, self.k, self.dtype, self.normalization)
        theirs = (other.model, other.k, other.dtype, other.normalization)
        if mine != theirs:
            raise SnapshotConflict(
                f"version {other.version} has model {other.model.version!r}, k={other.k}, "
                f"dtype={other.dtype}, normalization={other.normalization}; an incremental "
                "snapshot must match its parent (write a full snapshot instead)"
            )

    def _writer(self, kind: str, entity: str, shard: int) -> PartitionWriter:
        key = (kind, check_entity(entity), shard)
        if key not in self.writers:
            schema = self.schema if kind == "rows" else DELETES_SCHEMA
            config = self.store.config
            self.writers[key] = PartitionWriter(
                self.store.backend, schema, entity, shard, config.row_group_bytes, config.file_bytes
            )
        return self.writers[key]

    def write(
        self,
        entity: str,
        ids: Iterable[str] | pa.Array,
        embeddings: np.ndarray,
        text_hash: Iterable[str] | pa.Array,
        updated_at: datetime | np.ndarray | None = None,
        shard: int = 0,
    ) -> None:
        """Add a batch of embedded rows; any batch size, any number of calls."""
        if not 0 <= shard < self.store.config.shards:
            raise StoreError(f"shard {shard} is outside 0..{self.store.config.shards - 1}")
        table = build_rows(self.schema, ids, embeddings, text_hash, self.model.version, updated_at)
        self.write_table(entity, table, shard)

    def write_table(self, entity: str, table: pa.Table, shard: int = 0) -> None:
        """Add rows that already have the row schema (compaction copies them as they are)."""
        self._writer("rows", entity, shard).write(table.cast(self.schema))
        self.written.setdefault(entity, []).append(table["id"].combine_chunks())
        self._bound_memory()

    def _bound_memory(self) -> None:
        """Keep all partitions' buffered rows within one row group's worth of bytes.

        Each partition buffers up to a row group; with many shards open at once
        that would multiply, so the largest buffer is flushed early instead.
        """
        budget = self.store.config.row_group_bytes
        writers = list(self.writers.values())
        while sum(w.pending_bytes for w in writers) > budget:
            max(writers, key=lambda w: w.pending_bytes).flush()

    def delete(self, entity: str, ids: Iterable[str] | pa.Array) -> None:
        """Remove ids from the parent snapshot (incremental mode only)."""
        if self.mode != "incremental":
            raise StoreError("deletes only make sense in an incremental snapshot")
        table = pa.table({"id": pa.array(ids, pa.string())}, schema=DELETES_SCHEMA)
        self._writer("deletes", entity, 0).write(table)
        self.deleted.setdefault(entity, []).append(table["id"].combine_chunks())
        self._bound_memory()

    def write_index(
        self,
        entity: str,
        write: Callable[[BinaryIO], object],
        index_type: str,
        metric: str,
        rows: int,
    ) -> IndexFile:
        """Store a FAISS index with this snapshot; ``write`` serialises it into the given stream.

        The index is streamed, hashed and counted on its way to the store, so
        no serialised copy of it is ever held in memory.
        """
        path = new_index_path(entity)
        with self.store.backend.writing(path) as handle:
            sink = HashingSink(handle)
            write(sink)
        index = IndexFile(
            path=path,
            entity=entity,
            index_type=index_type,
            metric=metric,
            rows=rows,
            size=sink.size,
            sha256=sink.digest.hexdigest(),
        )
        self.indexes.append(index)
        return index

    def keep_index(self, index: IndexFile) -> None:
        """List the parent's index of an entity this incremental change leaves untouched."""
        if self.mode != "incremental":
            raise StoreError("only an incremental snapshot inherits its parent's indexes")
        self.indexes.append(index)

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()

    def _finish_files(self) -> Change:
        change = Change()
        for writer in self.writers.values():
            change.files.extend(writer.close())
        for entity in ENTITIES:
            for name, source, target in (
                ("written", self.written, change.written),
                ("deleted", self.deleted, change.deleted),
            ):
                if entity not in source:
                    continue
                ids = pa.concat_arrays(source[entity])
                if len(pc.unique(ids)) != len(ids):
                    raise StoreError(f"{entity}: an id is {name} twice in one snapshot")
                target[entity] = ids
            both = pc.is_in(
                change.deleted.get(entity, pa.array([], pa.string())),
                value_set=change.written.get(entity, pa.array([], pa.string())),
            )
            if pc.any(both).as_py():
                raise StoreError(f"{entity}: an id is both written and deleted in one snapshot")
        failpoint("data.done")
        return change

    def _row_counts(self, change: Change) -> dict[str, int]:
        """Live rows per entity; an incremental change only reads its parent's ids."""
        counts = {}
        for entity in ENTITIES:
            written = change.written.get(entity, pa.array([], pa.string()))
            if self.mode != "incremental":
                counts[entity] = len(written)
                continue
            assert self.base is not None
            deleted = change.deleted.get(entity, pa.array([], pa.string()))
            touched = change.touched(entity)
            if not len(touched):
                counts[entity] = self.base.rows.get(entity, 0)
                continue
            parent_ids = merged_table(self.store, self.base, entity, id_range=_bounds(touched))[
                "id"
            ]
            unknown = pc.invert(pc.is_in(deleted, value_set=parent_ids))
            if pc.any(unknown).as_py():
                example = deleted.filter(unknown)[0].as_py()
                raise StoreError(f"{entity}: cannot delete {example!r}: not in the parent")
            new = pc.sum(pc.invert(pc.is_in(written, value_set=parent_ids))).as_py() or 0
            counts[entity] = self.base.rows.get(entity, 0) + new - len(deleted)
        return counts

    def commit(self, channel_names: Iterable[str] = ("latest",)) -> Manifest:
        """Publish the snapshot and move the channels to it; returns its manifest."""
        try:
            change = self._finish_files()
            counts = self._row_counts(change)
            self._check_conservation(counts)
        except BaseException:
            self.abort()
            raise
        expected = self.base
        for _ in range(MAX_REBASES):
            manifest = self._manifest(expected, change, counts)
            try:
                self.store.backend.put_if_absent(
                    manifest_path(manifest.version), manifest.to_json()
                )
                break
            except PreconditionFailed:
                if self._landed(manifest):
                    break
                head = self.store.head()
                assert head is not None
                self._check_rebase(expected, head, change)
                counts = {
                    e: n + head.rows.get(e, 0) - _rows(expected, e) for e, n in counts.items()
                }
                expected = head
        else:
            raise SnapshotConflict(f"gave up after {MAX_REBASES} concurrent commits")
        failpoint("manifest.committed")
        for name in channel_names:
            channels.advance(self.store.backend, name, manifest)
        failpoint("channel.swapped")
        return manifest

    def _landed(self, manifest: Manifest) -> bool:
        """Whether ``manifest`` itself is committed: a retried put whose first try landed.

        On an object store a conditional PUT whose response was lost is retried
        and then refused, because the first attempt created the object.
        """
        try:
            data = self.store.backend.read_bytes(manifest_path(manifest.version))
        except FileNotFoundError:
            return False
        return data == manifest.to_json()

    def _check_conservation(self, counts: dict[str, int]) -> None:
        """A full snapshot holds exactly the rows its run says it embedded."""
        if self.mode != "overwrite":
            return
        for entity, figures in self.conservation.items():
            if counts.get(entity, 0) != figures.embedded:
                raise ConservationError(
                    f"{entity}s: the snapshot would hold {counts.get(entity, 0)} rows but the "
                    f"run embedded {figures.embedded}; refusing to publish"
                )

    def _manifest(
        self, parent: Manifest | None, change: Change, counts: dict[str, int]
    ) -> Manifest:
        version = 1 if parent is None else parent.version + 1
        inherited = parent.files if parent is not None and self.mode == "incremental" else []
        mine = [f.model_copy(update={"sequence": version}) for f in change.files]
        return Manifest(
            snapshot_id=new_snapshot_id(),
            version=version,
            parent_version=parent.version if parent else None,
            parent_snapshot_id=parent.snapshot_id if parent else None,
            created_at=utc_now(),
            run_id=self.run_id,
            model=self.model,
            k=self.k,
            dtype=self.dtype,
            normalization=self.normalization,
            rows=counts,
            files=[*inherited, *mine],
            indexes=self.indexes,
            quarantine=self.quarantine,
            quality=self.quality,
            conservation=self.conservation,
            operation=self.mode,
        )

    def _check_rebase(self, base: Manifest | None, head: Manifest, change: Change) -> None:
        """Raise unless this change can be re-applied on ``head`` without undoing anything."""
        if self.mode != "incremental" or base is None:
            raise SnapshotConflict(
                f"version {head.version} was committed while this {self.mode} snapshot was "
                "written; it would undo that version, so it was not committed"
            )
        for version in range(base.version + 1, head.version + 1):
            other = self.store.manifest(version)
            self._check_compatible(other)
            if other.operation == "compaction":
                continue
            if other.operation == "overwrite":
                raise SnapshotConflict(
                    f"version {version} replaced every row while this change was written; "
                    "re-run it against that version"
                )
            for entity in ENTITIES:
                mine = change.touched(entity)
                if not len(mine):
                    continue
                theirs = [
                    read_data_file(self.store, other, f, ["id"], verify=False)["id"]
                    for f in other.files
                    if f.entity == entity
                    and f.sequence == version
                    and f.may_contain(*_bounds(mine))
                ]
                if not theirs:
                    continue
                overlap = pc.is_in(mine, value_set=pa.chunked_array(theirs).combine_chunks())
                if pc.any(overlap).as_py():
                    raise SnapshotConflict(
                        f"version {version} changed some of the same {entity} ids; "
                        "re-run this change on top of it"
                    )


def _bounds(ids: pa.Array) -> tuple[str, str]:
    bounds = pc.min_max(ids)
    return bounds["min"].as_py(), bounds["max"].as_py()


def _rows(manifest: Manifest | None, entity: str) -> int:
    return 0 if manifest is None else manifest.rows.get(entity, 0)
