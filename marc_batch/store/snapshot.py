"""The reader API of ranking teams: open a pinned version or a channel, get embeddings.

A :class:`Snapshot` reads exactly the files its manifest lists (through
:mod:`marc_batch.store.reader`), so files of other snapshots and leftovers
of crashed runs are invisible to it. Its vectors are labelled with the
model version whose space they are in, and it can serve them in the space
of an earlier model version through the published alignment maps.
"""

from collections.abc import Sequence

import duckdb
import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.config.store import StoreConfig
from marc_batch.entities import ENTITIES
from marc_batch.errors import SpaceMismatch, StoreError
from marc_batch.index.io import index_from_bytes
from marc_batch.store.alignment import AlignmentMap
from marc_batch.store.attachments import space_map
from marc_batch.store.manifest import Manifest
from marc_batch.store.paths import check_entity
from marc_batch.store.reader import embedding_matrix, merged_table, read_index_file
from marc_batch.store.store import Store
from marc_batch.store.writer import row_schema

SPACE_KEY = b"marc_batch.space"  # schema metadata: the model version whose space the vectors are in
MODEL_KEY = b"marc_batch.model_version"  # schema metadata: the model version that encoded them


def _mapped(table: pa.Table, space_map: AlignmentMap, k: int) -> pa.Table:
    """``table`` with its embeddings taken through ``space_map`` (float32, the target's width)."""
    mapped = space_map.apply(embedding_matrix(table, k)) if table.num_rows else None
    width = space_map.weights.shape[1]
    values = pa.array(mapped.reshape(-1) if mapped is not None else [], pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, width)
    position = table.schema.get_field_index("embedding")
    return table.set_column(position, pa.field("embedding", column.type, nullable=False), column)


class Snapshot:
    """One committed version, read-only; tables are read once and kept.

    Its vectors are in the space of ``space``: the model version that encoded
    them, or, for a view from :meth:`aligned`, an earlier model version they
    were mapped into by the alignment maps published in the version log.
    Every table carries both versions in its schema metadata, and the
    DuckDB views carry them as columns, so vectors of two spaces are never
    combined by accident (:mod:`marc_batch.store.spaces`).
    """

    def __init__(
        self,
        store: Store,
        manifest: Manifest,
        verify: bool = False,
        space_map: AlignmentMap | None = None,
    ) -> None:
        self.store = store
        self.manifest = manifest
        self.verify = verify
        self.space_map = space_map
        self.space = space_map.to_model if space_map else manifest.model.version
        self.k = space_map.weights.shape[1] if space_map else manifest.k
        self._tables: dict[str, pa.Table] = {}

    @property
    def version(self) -> int:
        return self.manifest.version

    def aligned(self, space: str) -> "Snapshot":
        """This snapshot's vectors in the space of model version ``space``.

        Refused with :class:`SpaceMismatch` when no chain of published maps
        leads there (see :func:`marc_batch.store.attachments.space_map`).
        """
        if space == self.space:
            return self
        return Snapshot(
            self.store, self.manifest, self.verify, space_map(self.store, self.manifest, space)
        )

    def table(self, entity: str) -> pa.Table:
        """Every column of the live rows, one chunk, ids sorted when layers were merged.

        The schema metadata names the space (``marc_batch.space``) and the
        model version that encoded the rows (``marc_batch.model_version``).
        """
        if entity not in self._tables:
            columns = row_schema(self.manifest.k, self.manifest.dtype).names
            table = merged_table(self.store, self.manifest, entity, columns, self.verify)
            table = table.combine_chunks()
            if self.space_map is not None:
                table = _mapped(table, self.space_map, self.manifest.k)
            metadata = {
                SPACE_KEY: self.space.encode(),
                MODEL_KEY: self.manifest.model.version.encode(),
            }
            self._tables[entity] = table.replace_schema_metadata(metadata)
        return self._tables[entity]

    def matrix(self, entity: str, space: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, embeddings [n, k]); the matrix is a view of the Arrow buffer, not a copy.

        ``space`` asks for the vectors in that model version's space (see :meth:`aligned`).
        """
        if space is not None:
            return self.aligned(space).matrix(entity)
        table = self.table(entity)
        embedding = table["embedding"]
        values = (
            embedding.chunk(0).flatten() if embedding.num_chunks else pa.array([], pa.float32())
        )
        matrix = values.to_numpy(zero_copy_only=True).reshape(table.num_rows, self.k)
        return table["id"].to_numpy(), matrix

    def lookup(
        self, entity: str, ids: Sequence[str], space: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, embeddings [len(ids), k]) in the order asked; missing ids get NaN rows."""
        if space is not None:
            return self.aligned(space).lookup(entity, ids)
        table = self.table(entity)
        positions = pc.index_in(pa.array(ids, pa.string()), value_set=table["id"])
        found = positions.is_valid().to_numpy(zero_copy_only=False)
        _, matrix = self.matrix(entity)
        out = np.full((len(found), self.k), np.nan, dtype=matrix.dtype)
        out[found] = matrix[positions.drop_null().to_numpy()]
        return found, out

    def index_bytes(self, entity: str) -> bytes:
        """The serialised FAISS index, always checked against its sha256 first."""
        entries = [i for i in self.manifest.indexes if i.entity == check_entity(entity)]
        if not entries:
            raise StoreError(f"version {self.version} has no {entity} index")
        return read_index_file(self.store, self.manifest, entries[0])

    def index(self, entity: str) -> faiss.Index:
        """The entity's FAISS index, searchable as published (checked against its sha256).

        An index holds the vectors as the snapshot's model encoded them, so an
        aligned view has none.
        """
        if self.space_map is not None:
            raise SpaceMismatch(
                f"the index of version {self.version} is in the space of "
                f"{self.manifest.model.version!r}, not {self.space!r}; search the snapshot itself"
            )
        return index_from_bytes(self.index_bytes(entity))

    def duckdb(
        self, connection: duckdb.DuckDBPyConnection | None = None, prefix: str = ""
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per entity, ``embedding`` typed ``FLOAT[k]``.

        Views are named ``<prefix>item`` and ``<prefix>user`` and carry the
        ``model_version`` that encoded each row and the ``space`` its
        embedding is in. A connection holds views of one space only: adding
        a snapshot of another space to it is refused (ask for
        :meth:`aligned` to add it in the connection's space). DuckDB has no
        half-precision type, so float16 snapshots are widened here.
        """
        con = connection or duckdb.connect()
        claim_space(con, self.space, f"version {self.version}")
        widened = pa.list_(pa.float32(), self.k)
        for entity in ENTITIES:
            table = self.table(entity)
            position = table.schema.get_field_index("embedding")
            table = table.set_column(position, "embedding", table["embedding"].cast(widened))
            con.register(f"_{prefix}{entity}_arrow", table)
            con.execute(
                f"CREATE OR REPLACE VIEW {prefix}{entity} AS SELECT id, "
                f"embedding::FLOAT[{self.k}] AS embedding, text_hash, model_version, "
                f"'{self.space}' AS space, updated_at, title FROM _{prefix}{entity}_arrow"
            )
        return con


def claim_space(con: duckdb.DuckDBPyConnection, space: str, what: str) -> None:
    """Record that ``con`` holds vectors of ``space``; refuse if it holds another space's."""
    con.execute("CREATE TABLE IF NOT EXISTS _marc_batch_space (space VARCHAR)")
    held = con.execute("SELECT space FROM _marc_batch_space").fetchall()
    if held and held[0][0] != space:
        raise SpaceMismatch(
            f"this DuckDB connection holds vectors of model {held[0][0]!r}; {what} is in the space "
            f"of {space!r}: open it aligned to {held[0][0]!r} or use another connection"
        )
    if not held:
        con.execute("INSERT INTO _marc_batch_space VALUES (?)", [space])


def open_snapshot(
    store: Store | StoreConfig | str,
    ref: str | int = "latest",
    verify: bool = False,
    space: str | None = None,
) -> Snapshot:
    """Open a version number, a snapshot id or a channel name (default ``latest``).

    ``space`` opens it aligned to that model version's space (:meth:`Snapshot.aligned`).
    """
    if isinstance(store, str):
        store = StoreConfig(root=store)
    if isinstance(store, StoreConfig):
        store = Store(store)
    snapshot = Snapshot(store, store.resolve(ref), verify)
    return snapshot if space is None else snapshot.aligned(space)
