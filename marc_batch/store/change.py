"""What one transaction changes, and the checks that need it: row counts and rebase overlaps.

A commit turns the rows a transaction wrote and deleted into a
:class:`Change`, once: its ids are checked (no id written or deleted twice,
none both), the snapshot's live row counts are derived from it, and if
another publisher committed first, it tells whether the two changes touch
the same ids (which forbids re-applying this one on top).
"""

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.entities import ENTITIES, Entity
from marc_batch.errors import StoreError
from marc_batch.store.manifest import DataFile, Manifest
from marc_batch.store.reader import merged_table, read_data_file
from marc_batch.store.store import Store

EMPTY = pa.array([], pa.string())


def bounds(ids: pa.Array) -> tuple[str, str]:
    """The smallest and largest id, to skip files whose id range cannot hold any of them."""
    found = pc.min_max(ids)
    return found["min"].as_py(), found["max"].as_py()


@dataclass
class Change:
    """One transaction's files and the ids it wrote or deleted, per entity."""

    files: list[DataFile] = field(default_factory=list)
    written: dict[Entity, pa.Array] = field(default_factory=dict)
    deleted: dict[Entity, pa.Array] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        files: list[DataFile],
        written: dict[str, list[pa.Array]],
        deleted: dict[str, list[pa.Array]],
    ) -> "Change":
        """The change of these files and id batches; an id may be written or deleted once."""
        change = cls(files=files)
        for entity in ENTITIES:
            for name, source, target in (
                ("written", written, change.written),
                ("deleted", deleted, change.deleted),
            ):
                if entity not in source:
                    continue
                ids = pa.concat_arrays(source[entity])
                if len(pc.unique(ids)) != len(ids):
                    raise StoreError(f"{entity}: an id is {name} twice in one snapshot")
                target[entity] = ids
            both = pc.is_in(
                change.deleted.get(entity, EMPTY), value_set=change.written.get(entity, EMPTY)
            )
            if pc.any(both).as_py():
                raise StoreError(f"{entity}: an id is both written and deleted in one snapshot")
        return change

    def touched(self, entity: Entity) -> pa.Array:
        parts = [a for a in (self.written.get(entity), self.deleted.get(entity)) if a is not None]
        return pa.concat_arrays(parts) if parts else EMPTY

    def row_counts(self, store: Store, mode: str, base: Manifest | None) -> dict[Entity, int]:
        """Live rows per entity after the change; an incremental one reads only its parent's ids."""
        counts = {}
        for entity in ENTITIES:
            written = self.written.get(entity, EMPTY)
            if mode != "incremental":
                counts[entity] = len(written)
                continue
            assert base is not None
            deleted = self.deleted.get(entity, EMPTY)
            touched = self.touched(entity)
            if not len(touched):
                counts[entity] = base.rows.get(entity, 0)
                continue
            parent_ids = merged_table(store, base, entity, id_range=bounds(touched))["id"]
            unknown = pc.invert(pc.is_in(deleted, value_set=parent_ids))
            if pc.any(unknown).as_py():
                example = deleted.filter(unknown)[0].as_py()
                raise StoreError(f"{entity}: cannot delete {example!r}: not in the parent")
            new = pc.sum(pc.invert(pc.is_in(written, value_set=parent_ids))).as_py() or 0
            counts[entity] = base.rows.get(entity, 0) + new - len(deleted)
        return counts

    def overlap(self, store: Store, other: Manifest) -> Entity | None:
        """The first entity whose ids both this change and version ``other`` touched."""
        for entity in ENTITIES:
            mine = self.touched(entity)
            if not len(mine):
                continue
            theirs = [
                read_data_file(store, other, f, ["id"], verify=False)["id"]
                for f in other.files
                if f.entity == entity
                and f.sequence == other.version
                and f.may_contain(*bounds(mine))
            ]
            if not theirs:
                continue
            found = pc.is_in(mine, value_set=pa.chunked_array(theirs).combine_chunks())
            if pc.any(found).as_py():
                return entity
        return None
