"""Writing a snapshot: data files first, the manifest last, then the channels.

The commit point is the creation of ``_manifests/v<N>.json`` with
put-if-absent: of all publishers that try version N exactly one succeeds,
and until it does no reader can see any of its files. A publisher that loses
re-reads the log and rebases: an incremental change whose ids do not overlap
the ids changed by the versions committed meanwhile (and whose model and k
match) is re-applied on top of the new head and retried. Otherwise (an
overlap, an overwrite committed meanwhile, a different model) the publisher
gets :class:`SnapshotConflict` and nothing it wrote is visible.
A transaction never moves a channel: that is publishing, which verifies the
committed version first (:mod:`marc_batch.pipeline.publish`).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa

from marc_batch.clock import utc_now
from marc_batch.entities import Entity
from marc_batch.errors import ConservationError, SnapshotConflict, StoreError
from marc_batch.store.attachments import describe as describe_snapshot
from marc_batch.store.backends import PreconditionFailed
from marc_batch.store.behaviours import write_behaviour_file
from marc_batch.store.change import Change
from marc_batch.store.failpoints import failpoint
from marc_batch.store.manifest import (
    BehaviourFile,
    CompatibilityRecord,
    Conservation,
    Dtype,
    IndexFile,
    Manifest,
    ModelArtifact,
    new_snapshot_id,
)
from marc_batch.store.paths import check_entity, manifest_path, new_index_path
from marc_batch.store.store import Store
from marc_batch.store.writer import (
    DELETES_SCHEMA,
    HashingSink,
    PartitionWriter,
    build_rows,
    row_schema,
)
from marc_batch.tracing import traced

Mode = Literal["overwrite", "incremental", "compaction"]
MAX_REBASES = 1000
# Given a described manifest and its parent of another model version, what the manifest records
# of the ranking team's CTR model on its vectors (marc_batch.evaluate.compatibility).
Assessor = Callable[[Manifest, Manifest], CompatibilityRecord | None]


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
        self._indexes: list[IndexFile] = []
        self._behaviours: list[BehaviourFile] = []
        self._replaced_behaviours: set[str] = set()
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
        titles: Iterable[str | None] | pa.Array | None = None,
    ) -> None:
        """Add a batch of embedded rows; any batch size, any number of calls."""
        if not 0 <= shard < self.store.config.shards:
            raise StoreError(f"shard {shard} is outside 0..{self.store.config.shards - 1}")
        table = build_rows(
            self.schema, ids, embeddings, text_hash, self.model.version, updated_at, titles
        )
        self.write_table(entity, table, shard)

    def write_table(self, entity: str, table: pa.Table, shard: int = 0) -> None:
        """Add rows that already have the row schema (compaction copies them as they are)."""
        self._writer("rows", entity, shard).write(table.cast(self.schema))
        self.written.setdefault(entity, []).append(table["id"].combine_chunks())
        self._bound_memory()

    def close_partition(self, entity: str, shard: int) -> None:
        """Finish the rows of ``entity``'s ``shard`` written so far into complete files.

        An open Parquet file holds its last row group's pages in memory until
        it is closed, so a caller that writes shard by shard closes each one
        when it moves on; otherwise every shard's last row group stays in
        memory (tens of MB per shard at 64 MiB row groups). Later rows of the
        same partition go to a new file.
        """
        writer = self.writers.get(("rows", check_entity(entity), shard))
        if writer is not None:
            writer.close()

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
        self._indexes.append(index)
        return index

    def write_behaviours(self, keys: list[str], vectors: np.ndarray) -> BehaviourFile:
        """Store BAHE behaviour vectors of this model with the snapshot (see ``store.behaviours``).

        The snapshot lists them together with those of its parent, if the parent is
        of the same model: the cache grows run by run while the model stays.
        """
        entry = write_behaviour_file(self.store.backend, self.model.version, keys, vectors)
        self._behaviours.append(entry)
        return entry

    def replace_behaviours(self, replaced: Sequence[BehaviourFile]) -> None:
        """Stop carrying the parent's files ``replaced``: their vectors were written again
        into this transaction (a compaction merging many small files into few)."""
        self._replaced_behaviours.update(entry.path for entry in replaced)

    def _check_indexes(self, indexes: Sequence[IndexFile]) -> list[IndexFile]:
        """Indexes a manifest may list: written by this transaction, or inherited from its base.

        Only an incremental change or a compaction inherits (an entity it left
        untouched keeps its parent's index); a full snapshot indexes what it wrote.
        """
        inherited = self.base.indexes if self.base is not None and self.mode != "overwrite" else []
        for index in indexes:
            if index not in self._indexes and index not in inherited:
                raise StoreError(f"{index.path}: not written by this transaction nor inherited")
        entities = [index.entity for index in indexes]
        if len(set(entities)) != len(entities):
            raise StoreError(f"more than one index for an entity: {sorted(entities)}")
        return list(indexes)

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()

    def _finish_files(self) -> Change:
        files = [file for writer in self.writers.values() for file in writer.close()]
        change = Change.of(files, self.written, self.deleted)
        failpoint("data.done")
        return change

    @traced("commit")
    def commit(
        self,
        *,
        indexes: Sequence[IndexFile] = (),
        quality: Mapping[str, float] | None = None,
        quarantine: Mapping[str, int] | None = None,
        conservation: Mapping[Entity, Conservation] | None = None,
        channel: str | None = None,
        describe: bool = False,
        assess: Assessor | None = None,
    ) -> Manifest:
        """Commit the snapshot with what its manifest records; returns the manifest.

        ``indexes`` are the index files it lists (see :meth:`write_index`),
        ``quality`` its metrics, ``quarantine`` the refused rows per
        ``table.REASON`` and ``conservation`` each entity's rows in = embedded +
        quarantined, which a full snapshot's row counts must agree with;
        ``channel`` the channel the caller will publish it to.
        ``describe`` records the snapshot's statistics against its parent and, if
        the model changed, the alignment map into the parent's space
        (:mod:`marc_batch.store.attachments`), recomputed if the commit rebases.
        ``assess``, called with the described manifest and its parent when the
        model changed, returns the compatibility record the manifest keeps.
        No channel moves: publishing is a separate, verified step.
        """
        record = {
            "indexes": self._check_indexes(indexes),
            "quality": dict(quality or {}),
            "quarantine": dict(quarantine or {}),
            "conservation": dict(conservation or {}),
            "channel": channel,
        }
        try:
            change = self._finish_files()
            counts = change.row_counts(self.store, self.mode, self.base)
            self._check_conservation(counts, record["conservation"])
        except BaseException:
            self.abort()
            raise
        expected = self.base
        for _ in range(MAX_REBASES):
            manifest = self._manifest(expected, change, counts, record)
            if describe:
                manifest = describe_snapshot(self.store, manifest, expected)
            changed = expected is not None and expected.model.version != manifest.model.version
            if assess is not None and changed:
                assert expected is not None
                manifest = manifest.model_copy(update={"compatibility": assess(manifest, expected)})
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

    def _check_conservation(
        self, counts: dict[str, int], conservation: dict[Entity, Conservation]
    ) -> None:
        """A full snapshot holds exactly the rows its run says it embedded."""
        if self.mode != "overwrite":
            return
        for entity, figures in conservation.items():
            if counts.get(entity, 0) != figures.embedded:
                raise ConservationError(
                    f"{entity.table}: the snapshot would hold {counts.get(entity, 0)} rows but the "
                    f"run embedded {figures.embedded}; refusing to publish"
                )

    def _manifest(
        self, parent: Manifest | None, change: Change, counts: dict[str, int], record: dict
    ) -> Manifest:
        version = 1 if parent is None else parent.version + 1
        inherited = parent.files if parent is not None and self.mode == "incremental" else []
        mine = [f.model_copy(update={"sequence": version}) for f in change.files]
        same_model = parent is not None and parent.model.version == self.model.version
        carried = [
            entry
            for entry in (parent.behaviours if same_model else [])
            if entry.path not in self._replaced_behaviours
        ]
        behaviours = [*carried, *self._behaviours]
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
            operation=self.mode,
            behaviours=behaviours,
            **record,
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
            entity = change.overlap(self.store, other)
            if entity is not None:
                raise SnapshotConflict(
                    f"version {version} changed some of the same {entity} ids; "
                    "re-run this change on top of it"
                )


def _rows(manifest: Manifest | None, entity: str) -> int:
    return 0 if manifest is None else manifest.rows.get(entity, 0)
